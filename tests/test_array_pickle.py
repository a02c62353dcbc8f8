"""A pickled ``Dataset`` carries what reopens it, never the data it cached (issue 11, defect 1).

After one slice, a read-only handle's ``Dataset`` keeps a pinned view of its
array.  It used to pickle that view: 10,000,481 bytes for a 10 MB array, and
in the receiving process the copy served slices through a handle that had
not been reopened (``AttributeError: 'Cartridge' object has no attribute
'_pager'``).  dask ships the ``Dataset`` with its tasks, so this is the path
``dask.array.from_array(ds)`` takes with the processes scheduler.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle

import numpy as np
import pytest

import cartridge
from cartridge.arrays import ViewPins

N = 1_250_000  # float64: 10 MB


def _big() -> np.ndarray:
    return np.arange(N, dtype="<f8")


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "big.cart"
    with cartridge.create(p) as w:
        w.write_array("/big", _big())
        w.create_dataset("/chunked", (1000, 50), "<i4", chunks=(128, 16))[...] = \
            np.arange(50_000, dtype="<i4").reshape(1000, 50)
    return p


def _slice(ds, lo: int, hi: int) -> np.ndarray:
    return ds[lo:hi]


def test_pickle_after_slicing_is_small_and_reads_the_same(path):
    with cartridge.open(path, "r") as ro:
        ds = ro.array("/big")
        before = len(pickle.dumps(ds))
        assert (ds[10:20] == _big()[10:20]).all()
        assert (ds[N - 5:] == _big()[N - 5:]).all()  # served from the kept view
        raw = pickle.dumps(ds)
        assert len(raw) < 1024 and len(raw) == before, len(raw)
        assert len(pickle.dumps(ro)) < 1024  # the handle's own caches stay behind too
        handle, clone = pickle.loads(pickle.dumps((ro, ds)))
        assert clone.path == "/big" and clone.shape == (N,)
        assert (clone[123_456:123_999] == _big()[123_456:123_999]).all()
        handle.close()


def test_pickled_view_pins_start_empty(path):
    with cartridge.open(path, "r") as ro:
        gen = ro.generation
    pins = ViewPins(str(path), True)
    pins.add(gen)
    try:
        raw = pickle.dumps(pins)
        assert len(raw) < 1024
        copy = pickle.loads(raw)  # the receiving process holds none of these views
        assert isinstance(copy, ViewPins) and copy.live() == 0 and copy.generations() == []
        assert pins.live() == 1 and pins.generations() == [gen]
    finally:
        pins.drop(gen)


def test_spawned_workers_read_pickled_datasets(path):
    """Plain read-only handle and read transaction, each sliced before it is sent."""
    with cartridge.open(path, "r+") as w, cartridge.open(path, "r") as ro, w.reader() as txn:
        plain = ro.array("/big")
        chunked = ro.array("/chunked")
        old = txn.array("/big")
        for ds in (plain, chunked, old):
            ds[0:3]  # fill each one's cache before pickling
        w.write_array("/big", -_big())  # the transaction keeps reading what it pinned
        w.commit()
        jobs = [(plain, 0, 1000), (plain, N - 7_000, N), (chunked, 100, 300),
                (old, 500_000, 501_000)]
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
            got = list(pool.map(_slice, *zip(*jobs)))
    chunked_all = np.arange(50_000, dtype="<i4").reshape(1000, 50)
    assert np.array_equal(got[0], -_big()[0:1000])  # the newest commit, as in the parent
    assert np.array_equal(got[1], -_big()[N - 7_000:])
    assert np.array_equal(got[2], chunked_all[100:300])
    assert np.array_equal(got[3], _big()[500_000:501_000])  # the transaction's generation


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_does_not_read_through_the_parents_view(path):
    """The view a Dataset keeps is pinned by the parent; the child must pin its own."""
    with cartridge.open(path, "r") as ro:
        ds = ro.array("/big")
        ds[0:3]
        gen = ro.generation
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 1
            try:
                out = ds[5:50]
                mine = [s for s in ro.readers()
                        if s.pid == os.getpid() and s.alive and s.generation == gen]
                code = 0 if np.array_equal(out, _big()[5:50]) and mine else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def test_dask_processes_scheduler_sums_a_dataset(path):
    da = pytest.importorskip("dask.array")
    cloudpickle = pytest.importorskip("cloudpickle")
    with cartridge.open(path, "r") as ro:
        ds = ro.array("/big")
        ds[0:1]
        arr = da.from_array(ds, chunks=N // 4)
        # The whole graph, with the Dataset in it, ships in a few KiB (was 10 MB per task).
        assert len(cloudpickle.dumps(dict(arr.__dask_graph__()))) < 64 * 1024
        total = arr.sum().compute(scheduler="processes", num_workers=2)
    assert total == _big().sum()
