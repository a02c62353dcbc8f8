"""Deterministic workloads for crash tests: a batch generator, a model it also
runs on, and a worker ``main`` speaking the phase protocol of
:mod:`cartridge.testing.crash`.

* :mod:`~cartridge.testing.workloads.files` -- files and directories that age
  (:class:`~cartridge.testing.workloads.files.Ageing` runs the kill loop).
* :mod:`~cartridge.testing.workloads.arrays` -- arrays and a growing dataset,
  with zero-copy views checked across commits.
* :mod:`~cartridge.testing.workloads.snapshots` -- snapshots, restores and
  compaction steps.
* :mod:`~cartridge.testing.workloads.sqlite` -- SQLite transactions through the
  cartridge VFS.
* :mod:`~cartridge.testing.workloads.rekey` -- one rekey.
"""
