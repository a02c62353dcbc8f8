"""MVCC: read transactions, snapshots, restore, diff, compaction, copy, pickling, fork."""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import cartridge


def _blob(i: int, size: int) -> bytes:
    return np.random.default_rng(i).bytes(size)


def _fill(cart, n: int = 30, size: int = 40_000) -> dict:
    model = {}
    for i in range(n):
        model[f"/d{i % 3}/f{i}"] = _blob(i, size + 997 * i)
        cart.write(f"/d{i % 3}/f{i}", model[f"/d{i % 3}/f{i}"])
    cart.commit()
    return model


def _contents(cart) -> dict:
    return {p: cart.read(p) for p, info in cart.walk("/") if info.kind == "file"}


# ------------------------------------------------------------------ snapshots
def test_snapshot_restore_delete_roundtrip(tmp_path):
    path = tmp_path / "s.cart"
    with cartridge.create(path) as c:
        model = _fill(c)
        info = c.snapshot("v1")
        assert info.name == "v1" and info.generation < c.generation
        c.delete("/d0/f0")
        c.write("/d1/f1", b"changed")
        c.write("/extra", _blob(99, 200_000))
        c.commit()
        c.snapshot("v2")
        d = c.diff("v1", "v2")
        assert d.added == ["/extra"] and d.removed == ["/d0/f0"] and d.changed == ["/d1/f1"]
        assert c.diff("v2") == cartridge.DiffResult()
        c.write("/later", b"x")
        c.restore("v1")
        assert _contents(c) == model
        assert [s.name for s in c.snapshots()] == ["v1", "v2"]  # later snapshots stay
        assert c.verify().ok
        c.restore("v2")
        assert c.read("/d1/f1") == b"changed" and not c.exists("/later")
        assert c.verify().ok
    with cartridge.open(path, "r", snapshot="v1") as snap:  # survives reopen
        assert _contents(snap) == model
        assert snap.verify().ok
        with pytest.raises(cartridge.ReadOnlyError):
            snap.write("/x", b"")
    with cartridge.open(path) as c:
        c.delete_snapshot("v1")
        assert [s.name for s in c.snapshots()] == ["v2"]
        assert c.verify().ok
        with pytest.raises(cartridge.SnapshotNotFoundError):
            c.restore("v1")
        with pytest.raises(cartridge.SnapshotNotFoundError):
            cartridge.open(path, "r", snapshot="v1")
        with pytest.raises(cartridge.SnapshotExistsError):
            c.snapshot("v2")
        with pytest.raises(cartridge.InvalidPathError):
            c.snapshot("")
        with pytest.raises(TypeError):
            c.snapshot(3)


def test_snapshot_is_constant_time_and_shares_pages(tmp_path):
    path = tmp_path / "s.cart"
    with cartridge.create(path) as c:
        _fill(c, 40, 100_000)
        size = os.path.getsize(path)
        used = c.info().used_pages
        c.snapshot("a")
        assert c.info().used_pages - used < 10  # a leaf path, not a copy
        assert os.path.getsize(path) == size
        assert c.snapshots()[0].exclusive_bytes < 10 * 4096  # the replaced leaf path


def test_snapshot_holds_only_what_it_can_reach(tmp_path):
    """With a snapshot alive, rewriting a file repeatedly must not grow the file."""
    path = tmp_path / "s.cart"
    with cartridge.create(path) as c:
        c.write("/keep", _blob(1, 500_000))
        c.write("/hot", _blob(2, 300_000))
        c.commit()
        c.snapshot("s")
        for i in range(5):
            c.write("/hot", _blob(10 + i, 300_000))
            c.commit()
        size = os.path.getsize(path)
        for i in range(60):
            c.write("/hot", _blob(100 + i, 300_000))
            c.commit()
        assert os.path.getsize(path) == size
        held = c.snapshots()[0].exclusive_bytes
        assert 300_000 <= held < 400_000  # the old /hot plus a few tree pages
        assert any("snapshot 's'" in h for h in c.info().holders)
        c.delete_snapshot("s")
        c.write("/x", b"1")
        c.commit()
        assert c.info().holders == []
        assert c.verify().ok


def test_snapshot_handle_keeps_its_pages_while_snapshot_deleted(tmp_path):
    path = tmp_path / "s.cart"
    with cartridge.create(path) as c:
        model = _fill(c, 10)
        c.snapshot("s")
        with cartridge.open(path, "r", snapshot="s") as snap:
            for p in model:
                c.delete(p)
            c.delete_snapshot("s")
            for i in range(20):
                c.write(f"/n{i}", _blob(500 + i, 50_000))
                c.commit()
            assert _contents(snap) == model  # its own pin keeps the pages
        assert c.verify().ok


def test_diff_against_current_uncommitted(tmp_path):
    with cartridge.create(tmp_path / "d.cart") as c:
        c.write("/a", b"1")
        c.mkdir("/dir")
        c.commit()
        c.snapshot("s")
        c.write("/b", b"2")
        c.rmdir("/dir")
        d = c.diff("s")
        assert d.added == ["/b"] and d.removed == ["/dir"] and d.changed == []
        assert bool(d)


# ------------------------------------------------------------------ compaction
def _fragmented(path, n: int = 400, seed: int = 1):
    c = cartridge.create(path)
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        c.write(f"/f{i}", rng.bytes(4096 * int(rng.integers(2, 40))))
        names.append(f"/f{i}")
        if i % 25 == 0:
            c.commit()
    c.commit()
    rng.shuffle(names)
    cut = int(0.7 * len(names))
    for name in names[:cut]:
        c.delete(name)
    c.commit()
    return c, sorted(names[cut:])


def test_compact_shrinks_to_live_data(tmp_path):
    path = tmp_path / "c.cart"
    c, kept = _fragmented(path)
    before = {p: c.read(p) for p in kept}
    live = sum(len(v) for v in before.values())
    assert os.path.getsize(path) > 2 * live
    progress = []
    result = c.compact(callback=lambda done, total: progress.append((done, total)))
    assert result.done and result.moved_pages > 0 and progress
    assert os.path.getsize(path) <= 1.10 * live + 64 * 4096
    assert result.size_after == os.path.getsize(path) < result.size_before
    assert {p: c.read(p) for p in kept} == before and c.verify().ok
    c.close()
    with cartridge.open(path, "r") as r:
        assert {p: r.read(p) for p in kept} == before and r.verify().ok


def test_compact_in_bounded_steps(tmp_path):
    path = tmp_path / "c.cart"
    c, kept = _fragmented(path, 200)
    before = {p: c.read(p) for p in kept}
    steps = 0
    while True:
        result = c.compact(max_pages=50)
        steps += 1
        assert result.moved_pages <= 50 + 16 + 8  # one chunk and the tree path may overshoot
        c.write("/interleaved", str(steps).encode())  # the writer works in between
        c.commit()
        if result.done:
            break
    assert steps > 2
    assert {p: c.read(p) for p in kept} == before and c.verify().ok
    with pytest.raises(ValueError):
        c.compact(max_pages=0)
    c.close()


def test_compact_never_moves_pages_under_a_reader(tmp_path):
    path = tmp_path / "c.cart"
    c, kept = _fragmented(path, 150)
    before = {p: c.read(p) for p in kept}
    with c.reader() as r:
        gen = r.generation
        c.compact()
        for i in range(5):
            c.write(f"/new{i}", _blob(i, 100_000))
            c.commit()
        assert r.generation == gen
        assert {p: r.read(p) for p in kept} == before
    c.compact()
    assert c.verify().ok
    c.close()


def test_copy_compact_and_raw(tmp_path):
    path = tmp_path / "c.cart"
    c, kept = _fragmented(path, 150)
    c.set_metadata(kept[0], {"k": 1})
    c.mkdir("/empty/dir")
    c.snapshot("s")
    before = {p: c.read(p) for p in kept}
    stats = {p: c.stat(p) for p in c.list("/", recursive=True)}
    seen = []
    c.copy(tmp_path / "fresh.cart", compact=True, callback=lambda d, t: seen.append(d))
    c.copy(tmp_path / "raw.cart", compact=False)
    with pytest.raises(cartridge.FileExistsError):
        c.copy(tmp_path / "raw.cart", compact=False)
    c.close()
    live = sum(len(v) for v in before.values())
    assert os.path.getsize(tmp_path / "fresh.cart") <= 1.10 * live + 64 * 4096
    with cartridge.open(tmp_path / "fresh.cart", "r") as f:
        assert {p: f.read(p) for p in kept} == before
        assert {p: f.stat(p) for p in f.list("/", recursive=True)} == stats
        assert f.snapshots() == [] and f.verify().ok
    with cartridge.open(tmp_path / "raw.cart", "r") as f:
        assert {p: f.read(p) for p in kept} == before
        assert [s.name for s in f.snapshots()] == ["s"] and f.verify().ok
    assert seen and seen[-1] == live


# ------------------------------------------------------------ read transactions
def test_reader_transaction_pins_one_generation(tmp_path):
    path = tmp_path / "r.cart"
    with cartridge.create(path) as w:
        w.write("/f", b"v1")
        w.commit()
        ro = cartridge.open(path, "r")
        with ro.reader() as r:
            w.write("/f", b"v2")
            w.write("/g", b"new")
            w.commit()
            assert r.read("/f") == b"v1" and not r.exists("/g")
            r.refresh()
            assert r.read("/f") == b"v1"
            assert ro.read("/f") == b"v2"  # plain calls follow the newest commit
            with r.open_file("/f") as fh:
                assert fh.read() == b"v1"
        with w.reader() as r2:
            assert r2.read("/g") == b"new"
        ro.close()


def test_threads_share_one_handle(tmp_path):
    path = tmp_path / "t.cart"
    with cartridge.create(path) as w:
        model = _fill(w, 12, 20_000)
        errors = []

        def work(k: int) -> None:
            try:
                for _ in range(20):
                    with w.reader() as r:
                        for p, data in model.items():
                            assert r.read(p) == data
                    assert w.read(f"/d{k % 3}/f{k}") == model[f"/d{k % 3}/f{k}"]
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for i in range(10):
            w.write(f"/w{i}", b"x" * i)
            w.commit()
        for t in threads:
            t.join()
        assert not errors


# ----------------------------------------------------------- pickling and fork
def _read_in_child(handle, path: str) -> str:
    return hashlib.sha256(handle.read(path)).hexdigest()


def test_pickle_handles(tmp_path):
    path = tmp_path / "p.cart"
    with cartridge.create(path) as w:
        w.write("/f", b"one")
        w.commit()
        w.snapshot("s")
        ro = cartridge.open(path, "r")
        clone = pickle.loads(pickle.dumps(ro))
        assert clone.read("/f") == b"one"
        snap = pickle.loads(pickle.dumps(cartridge.open(path, "r", snapshot="s")))
        with w.reader() as r:
            w.write("/f", b"two")
            w.commit()
            txn = pickle.loads(pickle.dumps(r))
            assert txn.read("/f") == b"one"  # the pinned generation travels
            txn.close()
        assert snap.read("/f") == b"one" and clone.read("/f") == b"two"
        txn = w.reader()
        stale = pickle.dumps(txn)
        txn.close()
        w.write("/f", b"three")
        w.commit()
        w.write("/f", b"four")
        w.commit()
        with pytest.raises(cartridge.StaleFileError):
            pickle.loads(stale).read("/f")
        for h in (ro, clone, snap):
            h.close()


def test_process_pool_reads_one_container(tmp_path):
    path = tmp_path / "p.cart"
    with cartridge.create(path) as w:
        model = _fill(w, 8, 30_000)
    ro = cartridge.open(path, "r")
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        got = list(pool.map(_read_in_child, [ro] * len(model), list(model)))
    assert got == [hashlib.sha256(v).hexdigest() for v in model.values()]
    ro.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_reopens_in_child(tmp_path):
    path = tmp_path / "f.cart"
    with cartridge.create(path) as w:
        w.write("/f", b"hello")
        w.commit()
    ro = cartridge.open(path, "r")
    assert ro.read("/f") == b"hello"
    parent_slot = ro.reader_slot
    pid = os.fork()
    if pid == 0:  # child: must not touch the parent's slot
        ok = ro.read("/f") == b"hello" and ro.reader_slot != parent_slot
        ro.close()
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    alive = [s for s in ro.readers() if s.slot == parent_slot]
    assert alive and alive[0].alive and alive[0].pid == os.getpid()
    assert ro.read("/f") == b"hello"
    ro.close()


# ---------------------------------------------------------------- locking modes
def test_locking_values(tmp_path):
    path = tmp_path / "l.cart"
    with cartridge.create(path, locking="best-effort") as c:
        c.write("/a", b"1")
    with pytest.raises(ValueError, match="best-effort"):
        cartridge.open(path, locking="yes")
    with cartridge.open(path, "r", locking="best-effort") as r:
        assert r.read("/a") == b"1"


def test_unsupported_locks_name_the_fix(tmp_path, monkeypatch):
    import fcntl

    path = tmp_path / "l.cart"
    with cartridge.create(path) as c:
        c.write("/a", b"1")

    def no_locks(*_a, **_k):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(cartridge.LockingUnsupportedError, match="best-effort"):
        cartridge.open(path)
    with pytest.warns(RuntimeWarning, match="without locks"):
        c = cartridge.open(path, locking="best-effort")
    c.write("/b", b"2")
    c.close()


# ------------------------------------------------------------- stale readers
HOLDER = textwrap.dedent("""
    import sys, time, cartridge
    r = cartridge.open(sys.argv[1], "r")
    t = r.reader()
    print("pinned", t.generation, flush=True)
    time.sleep(600)
""")


def test_killed_reader_is_reported_cleared_and_space_reused(tmp_path):
    path = tmp_path / "k.cart"
    w = cartridge.create(path)
    w.write("/f", _blob(0, 300_000))
    w.commit()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().split()[0] == "pinned"
    for i in range(1, 6):
        w.write("/f", _blob(i, 300_000))
        w.commit()
    assert any(f"reader pid {proc.pid}" in h for h in w.info().holders)
    grown = os.path.getsize(path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    stale = [s for s in w.readers() if s.pid == proc.pid and not s.alive]
    assert len(stale) == 2  # the plain handle and its read transaction
    cleared = w.clear_stale_readers()
    assert sorted(s.slot for s in cleared) == sorted(s.slot for s in stale)
    assert not [s for s in w.readers() if s.pid == proc.pid]
    for i in range(6, 40):
        w.write("/f", _blob(i, 300_000))
        w.commit()
    assert os.path.getsize(path) == grown  # space is reused
    assert w.info().holders == [] and w.verify().ok
    w.close()


def test_compact_leaves_snapshot_pages_in_place(tmp_path):
    path = tmp_path / "c.cart"
    c, kept = _fragmented(path, 150)
    c.snapshot("s")
    before = {p: c.read(p) for p in kept}
    size = os.path.getsize(path)
    result = c.compact()
    assert result.moved_pages < 10  # only pages born after the snapshot
    assert os.path.getsize(path) <= size
    assert {p: c.read(p) for p in kept} == before and c.verify().ok
    c.delete_snapshot("s")
    c.compact()
    live = sum(len(v) for v in before.values())
    assert os.path.getsize(path) <= 1.10 * live + 64 * 4096
    c.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_with_writer_and_closed_handles(tmp_path):
    path = tmp_path / "f.cart"
    w = cartridge.create(path)
    w.write("/f", b"parent")
    w.commit()
    done = cartridge.open(path, "r")
    done.close()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            done.close()  # closed before the fork: nothing to do
            w.write("/g", b"child")  # needs the writer lock the parent holds
            code = 1
        except cartridge.LockedError:
            pass
        finally:
            w.close()  # must not commit or unlock the parent's transaction
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    w.write("/h", b"still mine")
    w.commit()
    assert w.read("/f") == b"parent" and not w.exists("/g")
    w.close()


def test_result_objects_allow_dict_access(tmp_path):
    with cartridge.create(tmp_path / "d.cart") as c:
        c.write("/a", b"1")
        info = c.snapshot("s")
        assert info["name"] == "s" and info["generation"] == info.generation
        c.write("/b", b"2")
        d = c.diff("s")
        assert d["added"] == ["/b"] and d["removed"] == [] and d["changed"] == []
        with pytest.raises(KeyError):
            d["nope"]


JUNK = [None, True, -1, 0, 2**70, 1.5, float("nan"), "", "\x00", "x" * 300, b"s", [1], {}, object()]


@pytest.mark.parametrize("junk", JUNK, ids=repr)
def test_junk_arguments_to_new_calls(tmp_path, junk):
    with cartridge.create(tmp_path / "j.cart") as c:
        c.write("/keep", b"precious")
        c.commit()
        c.snapshot("s")
        calls = [lambda: c.snapshot(junk), lambda: c.restore(junk),
                 lambda: c.delete_snapshot(junk), lambda: c.diff(junk),
                 lambda: c.diff("s", junk), lambda: c.compact(max_pages=junk),
                 lambda: c.compact(callback=junk)]
        for call in calls:
            try:
                call()
            except (cartridge.CartridgeError, TypeError, ValueError):
                pass
        assert c.read("/keep") == b"precious" and c.verify().ok
        assert [s.name for s in c.snapshots()][:1] == ["s"]


def test_info_on_snapshot_handle_and_transaction(tmp_path):
    path = tmp_path / "i.cart"
    with cartridge.create(path) as c:
        _fill(c, 6)
        c.snapshot("s")
        c.write("/more", _blob(7, 100_000))
        c.commit()
        with cartridge.open(path, "r", snapshot="s") as snap:
            info = snap.info()
            assert info.file_count == 6 and info.generation < c.generation
            assert info.total_pages == c.info().total_pages  # space of the newest commit
            assert any("snapshot 's'" in h for h in info.holders)
        with c.reader() as r:
            assert r.info().file_count == 7 and r.verify().ok
