"""The Cartridge testing kit: what our own suite uses, shipped for yours.

Modelled on ``zarr.testing`` and fsspec's ``tests/abstract``: code that tests
a container (or something built on one) should not have to rewrite fixtures,
crash harnesses and scale settings.  It uses only the public API of
:mod:`cartridge`.

* :mod:`cartridge.testing.scale` -- the one knob, ``CARTRIDGE_TEST_SCALE``
  (:func:`scaled`, :func:`scaled_down`, :func:`hypothesis_settings`).
* :mod:`cartridge.testing.fixtures` -- a pytest plugin with the shared
  fixtures (``cart``, ``module_cart``, ``cart_path``, ``make_cart``,
  ``encrypted_cart``); enable it with
  ``pytest_plugins = ["cartridge.testing.fixtures"]`` in a ``conftest.py``.
* :mod:`cartridge.testing.crash` -- the SIGKILL harness: workers announce
  phases, the parent kills them inside a chosen one.
* :mod:`cartridge.testing.stateful` -- hypothesis state machines against
  plain models (files and directories; growable datasets).
* :mod:`cartridge.testing.workloads` -- deterministic workloads with their
  models and worker programs (files, arrays, snapshots, SQLite, rekey).

Importing this package imports neither pytest nor hypothesis.
"""

from cartridge.testing.scale import SCALE_ENV, hypothesis_settings, scale, scaled, scaled_down

__all__ = ["SCALE_ENV", "hypothesis_settings", "scale", "scaled", "scaled_down"]
