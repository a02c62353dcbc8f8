"""The choke point: every public operation passes one dispatch, with its action
and paths, before it changes anything (cartridge/dispatch.py).

The tables below name one call for every public method of ``Cartridge`` and
``Dataset``; a test fails when a public method exists that no table names, so a
new method cannot bypass the hooks unnoticed.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import cartridge
from cartridge.dispatch import ACTIONS, Operation

# Accessors that run no operation: they return handle state already in memory.
NOT_OPERATIONS = {"chunk_size", "closed", "env", "generation", "hooks", "max_size", "reader_slot",
                  "txn"}


def _populate(c: cartridge.Cartridge) -> None:
    c.write("/a", b"x" * 3000)
    c.write("/small", b"tiny")
    c.mkdir("/dir")
    c.write_array("/arr", np.arange(4096, dtype=np.int32))
    c.create_dataset("/ds", (8, 8), np.float64, chunks=(4, 4), maxshape=(None, 8))
    c.commit()
    c.snapshot("s0")


class Recorder:
    def __init__(self) -> None:
        self.ops: list[Operation] = []

    def __call__(self, op: Operation) -> None:
        self.ops.append(op)


# method -> (call, expected first (action, paths))
WRITER_CALLS = {
    "append": (lambda c: c.append("/a", b"y"), ("file.append", ("/a",))),
    "array": (lambda c: c.array("/arr"), ("array.open", ("/arr",))),
    "clear_stale_readers": (lambda c: c.clear_stale_readers(),
                            ("container.clear_stale_readers", ())),
    "close": (lambda c: (c.write("/z", b"1"), c.close()), ("file.write", ("/z",))),
    "commit": (lambda c: c.commit(), ("container.commit", ())),
    "compact": (lambda c: c.compact(), ("container.compact", ())),
    "copy": (lambda c: c.copy(c.path + ".copy"), ("container.copy", None)),
    "create_dataset": (lambda c: c.create_dataset("/new", (3,)), ("array.create", ("/new",))),
    "delete": (lambda c: c.delete("/a"), ("file.delete", ("/a",))),
    "delete_snapshot": (lambda c: c.delete_snapshot("s0"), ("snapshot.delete", ("s0",))),
    "diff": (lambda c: c.diff("s0"), ("snapshot.diff", ("s0",))),
    "exists": (lambda c: c.exists("/a"), ("path.exists", ("/a",))),
    "file_version": (lambda c: c.file_version("/a"), ("path.stat", ("/a",))),
    "info": (lambda c: c.info(), ("container.info", ())),
    "is_raw": (lambda c: c.is_raw("/a"), ("path.stat", ("/a",))),
    "list": (lambda c: c.list("/dir"), ("dir.list", ("/dir",))),
    "mapping": (lambda c: c.mapping, ("container.mapping", ())),
    "mkdir": (lambda c: c.mkdir("/m/n"), ("dir.create", ("/m/n",))),
    "open_file": (lambda c: c.open_file("/a").read(), ("file.open", ("/a",))),
    "read": (lambda c: c.read("/a", 1, 2), ("file.read", ("/a",))),
    "reader": (lambda c: c.reader().close(), ("container.reader", ())),
    "readers": (lambda c: c.readers(), ("container.readers", ())),
    "refresh": (lambda c: c.refresh(), ("container.refresh", ())),
    "rename": (lambda c: c.rename("/a", "/dir/b"), ("path.rename", ("/a", "/dir/b"))),
    "require_raw": (lambda c: c.require_raw("/a"), ("path.stat", ("/a",))),
    "restore": (lambda c: c.restore("s0"), ("snapshot.restore", ("s0",))),
    "rmdir": (lambda c: c.rmdir("/dir"), ("dir.delete", ("/dir",))),
    "rollback": (lambda c: c.rollback(), ("container.rollback", ())),
    "set_metadata": (lambda c: c.set_metadata("/a", {"k": 1}), ("path.set_metadata", ("/a",))),
    "snapshot": (lambda c: c.snapshot("s1"), ("snapshot.create", ("s1",))),
    "snapshots": (lambda c: c.snapshots(), ("snapshot.list", ())),
    "stat": (lambda c: c.stat("/a"), ("path.stat", ("/a",))),
    "truncate": (lambda c: c.truncate("/a", 10), ("file.truncate", ("/a",))),
    "verify": (lambda c: c.verify(), ("container.verify", ())),
    "view": (lambda c: c.view("/arr"), ("array.view", ("/arr",))),
    "walk": (lambda c: list(c.walk("/")), ("dir.list", ("/",))),
    "write": (lambda c: c.write("/w/x", b"1"), ("file.write", ("/w/x",))),
    "write_array": (lambda c: c.write_array("/w/arr", np.ones(3)), ("array.write", ("/w/arr",))),
    "write_at": (lambda c: c.write_at("/a", 5, b"zz"), ("file.write_at", ("/a",))),
    "describe_array": (lambda c: c.describe_array("/ds"), ("array.read", ("/ds",))),
    "read_array": (lambda c: c.read_array("/arr", slice(2, 5)), ("array.read", ("/arr",))),
    "array_attrs": (lambda c: c.array_attrs("/ds"), ("array.read", ("/ds",))),
    "update_array": (lambda c: c.update_array("/arr", 0, 7), ("array.update", ("/arr",))),
    "resize_array": (lambda c: c.resize_array("/ds", (9, 8)), ("array.resize", ("/ds",))),
    "append_array": (lambda c: c.append_array("/ds", np.ones(8)), ("array.resize", ("/ds",))),
    "set_array_attrs": (lambda c: c.set_array_attrs("/ds", {"a": 1}),
                        ("array.set_attrs", ("/ds",))),
}

# Methods only an encrypted container can run (tested below).
ENCRYPTED_CALLS = {"rekey"}

DATASET_CALLS = {
    "__getitem__": (lambda d: d[1:3], ("array.read", ("/ds",))),
    "__setitem__": (lambda d: d.__setitem__((0, 0), 5.0), ("array.update", ("/ds",))),
    "__array__": (lambda d: np.asarray(d), ("array.read", ("/ds",))),
    "__iter__": (lambda d: next(iter(d)), ("array.read", ("/ds",))),
    "__len__": (lambda d: len(d), ("array.read", ("/ds",))),
    "append": (lambda d: d.append(np.zeros((2, 8))), ("array.resize", ("/ds",))),
    "resize": (lambda d: d.resize((10, 8)), ("array.resize", ("/ds",))),
    "attrs": (lambda d: d.attrs.__setitem__("u", 1), ("array.read", ("/ds",))),
}


@pytest.fixture
def writer(tmp_path):
    c = cartridge.create(tmp_path / "d.cart")
    _populate(c)
    yield c
    if not c.closed:
        c.rollback()
        c.close()


def test_every_public_method_is_in_a_table():
    public = {name for name, _ in inspect.getmembers(cartridge.Cartridge)
              if not name.startswith("_")}
    missing = public - set(WRITER_CALLS) - NOT_OPERATIONS - ENCRYPTED_CALLS
    assert not missing, f"public methods the choke-point test does not call: {missing}"
    dataset = {name for name, _ in inspect.getmembers(cartridge.Dataset)
               if not name.startswith("_")}
    dataset_ops = {"append", "resize", "attrs"}
    dataset_props = {"chunks", "dtype", "fillvalue", "maxshape", "nbytes", "ndim", "path",
                     "shape", "size"}
    assert dataset - dataset_ops - dataset_props == set()


@pytest.mark.parametrize("method", sorted(WRITER_CALLS))
def test_writer_method_is_dispatched(writer, method):
    call, (action, paths) = WRITER_CALLS[method]
    assert action in ACTIONS
    rec = Recorder()
    writer.hooks.add(rec)
    call(writer)
    assert rec.ops, f"{method} passed no hook"
    first = rec.ops[0]
    assert first.action == action
    if paths is not None:
        assert first.paths == paths
    assert first.container == writer.path
    assert all(op.action in ACTIONS for op in rec.ops)


READ_ONLY = ["array", "array_attrs", "describe_array", "read_array", "diff", "exists",
             "file_version", "info", "is_raw", "list", "mapping", "open_file", "read",
             "reader", "readers", "refresh", "require_raw", "snapshots", "stat", "verify",
             "view", "walk", "clear_stale_readers"]


@pytest.mark.parametrize("method", READ_ONLY)
def test_reader_method_is_dispatched(writer, method):
    writer.close()
    call, (action, paths) = WRITER_CALLS[method]
    with cartridge.open(writer.path, "r", principal="alice", context={"ip": "127.0.0.1"}) as r:
        rec = Recorder()
        r.hooks.add(rec)
        call(r)
        assert (rec.ops[0].action, rec.ops[0].principal) == (action, "alice")
        assert rec.ops[0].context == {"ip": "127.0.0.1"}
        if paths is not None:
            assert rec.ops[0].paths == paths


@pytest.mark.parametrize("method", sorted(DATASET_CALLS))
def test_dataset_method_is_dispatched(writer, method):
    call, (action, paths) = DATASET_CALLS[method]
    ds = writer.array("/ds")
    rec = Recorder()
    writer.hooks.add(rec)
    call(ds)
    assert (rec.ops[0].action, rec.ops[0].paths) == (action, paths)
    if method in ("__setitem__", "resize", "append", "attrs"):
        kinds = {op.action for op in rec.ops}
        assert kinds & {"array.update", "array.resize", "array.set_attrs"}


def test_rekey_is_dispatched(tmp_path):
    with cartridge.create(tmp_path / "e.cart", password="old") as c:
        c.write("/f", b"secret")
        rec = Recorder()
        c.hooks.add(rec)
        c.rekey(new_password="new")
        assert rec.ops[0].action == "container.rekey"


def test_a_refusing_hook_leaves_no_trace(writer):
    gen = writer.generation

    def deny(op: Operation) -> None:
        raise PermissionError(f"denied: {op.action}")

    writer.hooks.add(deny)
    for method, (call, _expected) in WRITER_CALLS.items():
        if method in ("close", "reader"):
            continue
        with pytest.raises(PermissionError):
            call(writer)
    writer.hooks.remove(deny)
    assert writer.generation == gen
    assert writer.read("/a") == b"x" * 3000
    assert not writer.exists("/w") and not writer.exists("/m") and not writer.exists("/new")
    assert [s.name for s in writer.snapshots()] == ["s0"]
    writer.commit()
    assert writer.generation == gen  # nothing was pending


def test_hooks_reach_thread_handles_and_read_transactions(writer):
    import threading

    writer.close()
    with cartridge.open(writer.path, "r") as r:
        rec = Recorder()
        r.hooks.add(rec)
        t = threading.Thread(target=lambda: r.read("/a"))
        t.start()
        t.join()
        with r.reader() as txn:
            txn.stat("/a")
        assert [op.action for op in rec.ops] == ["file.read", "container.reader", "path.stat"]


def test_hooks_validate_what_they_are_given():
    hooks = cartridge.dispatch.Hooks()
    with pytest.raises(TypeError):
        hooks.add("not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        hooks.remove(print)


def test_forked_child_keeps_the_hooks(writer):
    import os

    writer.close()
    with cartridge.open(writer.path, "r") as r:
        def deny_reads(op: Operation) -> None:
            if op.action == "file.read":
                raise PermissionError("no reads")

        r.hooks.add(deny_reads)
        pid = os.fork()
        if pid == 0:  # the child: its reopened handle must still refuse
            try:
                r.read("/a")
            except PermissionError:
                os._exit(0)
            os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def test_copy_is_one_operation(writer, tmp_path):
    rec = Recorder()
    writer.hooks.add(rec)

    def deny_reads(op: Operation) -> None:
        if op.action in ("file.read", "dir.list", "array.read", "array.view"):
            raise PermissionError(op.action)

    writer.hooks.add(deny_reads)
    dest = tmp_path / "copy.cart"
    writer.copy(dest)
    assert [op.action for op in rec.ops] == ["container.copy"]
    with cartridge.open(dest, "r") as out:
        assert out.read("/a") == b"x" * 3000


def test_copy_of_a_snapshot_handle_copies_the_snapshot(writer, tmp_path):
    writer.write("/later", b"after the snapshot")
    writer.commit()
    writer.close()
    with cartridge.open(writer.path, "r", snapshot="s0") as snap:
        snap.copy(tmp_path / "s.cart")
        with pytest.raises(ValueError, match="compact=True"):
            snap.copy(tmp_path / "raw.cart", compact=False)
    with cartridge.open(tmp_path / "s.cart", "r") as out:
        assert not out.exists("/later") and out.read("/small") == b"tiny"


def test_failed_append_keeps_the_shape(writer):
    ds = writer.array("/ds")
    shape = ds.shape
    with pytest.raises(ValueError):
        ds.append(np.array([["not a number"] * 8]))
    assert ds.shape == shape


def test_exit_on_exception_closes_even_if_a_hook_refuses(tmp_path):
    c = cartridge.create(tmp_path / "x.cart")

    def deny(op: Operation) -> None:
        raise PermissionError(op.action)

    with pytest.raises(KeyError):
        with c:
            c.hooks.add(deny)
            raise KeyError("the user's error")
    assert c.closed
    with cartridge.open(tmp_path / "x.cart") as again:  # the write lock was released
        assert again.list("/") == []
