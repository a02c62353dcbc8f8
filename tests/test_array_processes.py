"""Arrays across processes: pickled handles and views, fork, a process pool,
and views taken in read transactions (issue 5's process rules applied to arrays)."""

from __future__ import annotations

import concurrent.futures
import gc
import multiprocessing
import os
import pickle

import numpy as np
import pytest

import cartridge

N = 200_000


def _expected() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "/raw": np.arange(N, dtype="<f8"),
        "/zstd": np.repeat(rng.integers(0, 9, N // 10), 10).astype("<i4"),
        "/ds": rng.standard_normal((300, 40)).astype("<f4"),
    }


def _fill(path) -> dict[str, np.ndarray]:
    exp = _expected()
    with cartridge.create(path) as w:
        w.write_array("/raw", exp["/raw"])
        w.write_array("/zstd", exp["/zstd"], compression="zstd")
        w.create_dataset("/ds", (300, 40), "<f4", chunks=(64, 16))[...] = exp["/ds"]
    return exp


def _slice_in_child(handle, path: str, lo: int, hi: int) -> np.ndarray:
    out = handle.array(path)[lo:hi]
    if path == "/raw":  # a view in the worker, too
        assert (handle.view(path)[lo:hi] == out).all()
    return out


def test_pickle_handles_datasets_and_views(tmp_path):
    path = tmp_path / "p.cart"
    exp = _fill(path)
    with cartridge.open(path, "r") as ro:
        clone = pickle.loads(pickle.dumps(ro))
        for p, a in exp.items():
            assert (clone.array(p)[...] == a).all()
        ds = pickle.loads(pickle.dumps(ro.array("/ds")))
        assert (ds[10:20, 3] == exp["/ds"][10:20, 3]).all()
        view = ro.view("/raw")
        copy = pickle.loads(pickle.dumps(view[5:100]))
        assert copy.dtype == view.dtype and (copy == exp["/raw"][5:100]).all()
        assert not np.shares_memory(copy, view)  # pickling copies the mapped bytes
        whole = pickle.loads(pickle.dumps(view))
        assert whole.shape == (N,) and whole.tobytes() == exp["/raw"].tobytes()
        clone.close()


def test_process_pool_reads_arrays(tmp_path):
    path = tmp_path / "pool.cart"
    exp = _fill(path)
    ro = cartridge.open(path, "r")
    jobs = [(p, lo, lo + 7_000) for p in ("/raw", "/zstd") for lo in (0, 50_000, 190_000)]
    jobs += [("/ds", 0, 64), ("/ds", 100, 300)]
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        got = list(pool.map(_slice_in_child, [ro] * len(jobs), *zip(*jobs)))
    for (p, lo, hi), out in zip(jobs, got):
        assert out.dtype == exp[p].dtype and np.array_equal(out, exp[p][lo:hi]), (p, lo)
    ro.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_views_survive_fork_and_child_collection(tmp_path):
    path = tmp_path / "f.cart"
    exp = _fill(path)
    w = cartridge.open(path, "r+")
    ro = cartridge.open(path, "r")
    wv, rv = w.view("/raw"), ro.view("/raw")
    gen = w.generation
    pid = os.fork()
    if pid == 0:  # child: read the inherited views, drop them, use views of its own
        code = 1
        try:
            ok = np.array_equal(wv, exp["/raw"]) and np.array_equal(rv, exp["/raw"])
            del wv, rv
            gc.collect()
            with cartridge.open(path, "r") as mine:
                own = mine.view("/raw")
                ok = ok and np.array_equal(own, exp["/raw"])
                del own
                gc.collect()
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's pins are intact: its views' generation is still published.
    assert gen in w.env.pinned_generations() and gen in ro.env.pinned_generations()
    with cartridge.open(path, "r") as other:
        assert gen in [s.generation for s in other.readers()]
    for k in range(3):  # rewrites would reuse the viewed pages if the pins were gone
        w.write_array("/raw", np.full(N, -k, "<f8"))
        w.commit()
    assert np.array_equal(wv, exp["/raw"]) and np.array_equal(rv, exp["/raw"])
    assert w.verify().ok
    ro.close()
    w.close()


def test_view_from_read_transaction_outlives_overwrite(tmp_path):
    path = tmp_path / "t.cart"
    exp = _fill(path)
    with cartridge.open(path, "r+") as w:
        with w.reader() as r:
            v = r.view("/raw")
            assert np.array_equal(v, exp["/raw"])
            w.write_array("/raw", np.zeros(N))
            w.commit()
            assert np.array_equal(r.view("/raw"), exp["/raw"])  # the pinned commit
        for _ in range(3):  # the transaction is closed; the view still pins its pages
            w.write_array("/raw", np.ones(N))
            w.commit()
        assert np.array_equal(v, exp["/raw"])
        assert (w.view("/raw") == 1).all()
        del v
        gc.collect()
        w.write_array("/raw", np.ones(N))
        w.commit()
        assert w.verify().ok
