"""Hypothesis state machines against plain models (zarr's ``zarr.testing.stateful``).

* :class:`CartridgeMachine` -- files and directories: every rule applies the
  same operation to a container and to :class:`Model` (a dict of path ->
  bytes or None for a directory, committed and pending) and requires the same
  outcome, including the same exception type.  ``reopen`` closes the handle
  (which commits) and opens it again; ``crash`` drops the handle without
  committing (the pending changes must vanish); ``check`` compares everything
  and runs ``verify()`` on the last commit.
* :class:`DatasetMachine` -- a growable chunked dataset with writes, appends,
  resizes, commits, rollbacks, reopens and zero-copy views, against an ndarray.

Subclasses set ``create_kwargs``/``open_kwargs`` (or ``dataset_kwargs``) to run
the same rules on other setups (encryption, compression, small caches).  A
test module binds them to pytest with ``TestX = Machine.TestCase`` and sets
``TestX.settings`` (see :func:`cartridge.testing.hypothesis_settings`).
Requires hypothesis (a test dependency).
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import cartridge

__all__ = ["CartridgeMachine", "DatasetMachine", "Model"]

PAGE = 4096
CHUNK = 65536
SIZES = [0, 1, 100, 1535, 1536, 1537, PAGE - 1, PAGE, PAGE + 1, CHUNK - 1, CHUNK, CHUNK + 1,
         3 * CHUNK + 17, 2 * 1024 * 1024 + 5]
NAMES = st.sampled_from(["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/deep", "/c/d/e"])
SIZE = st.one_of(st.sampled_from(SIZES), st.integers(0, 3 * CHUNK))


def _payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _parents(path: str) -> list[str]:
    parts = path.split("/")[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


class Model:
    """The specification: a dict of path -> bytes (file) or None (directory)."""

    def __init__(self) -> None:
        self.tree: dict[str, bytes | None] = {}

    def copy(self) -> Model:
        m = Model()
        m.tree = dict(self.tree)
        return m

    def _need_file(self, path: str) -> bytes:
        if path not in self.tree:
            raise FileNotFoundError(path)
        data = self.tree[path]
        if data is None:
            raise IsADirectoryError(path)
        return data

    def _make_parents(self, path: str) -> None:
        for p in _parents(path):
            if p in self.tree and self.tree[p] is not None:
                raise NotADirectoryError(p)
        for p in _parents(path):
            self.tree.setdefault(p, None)

    def write(self, path: str, data: bytes) -> None:
        if path in self.tree and self.tree[path] is None:
            raise IsADirectoryError(path)
        self._make_parents(path)
        self.tree[path] = data

    def append(self, path: str, data: bytes) -> None:
        if path not in self.tree:
            self.write(path, data)
        else:
            self.tree[path] = self._need_file(path) + data

    def truncate(self, path: str, size: int) -> None:
        old = self._need_file(path)
        self.tree[path] = old[:size].ljust(size, b"\0")

    def write_at(self, path: str, offset: int, data: bytes) -> None:
        old = bytearray(self._need_file(path))
        if not data:
            return
        if len(old) < offset + len(data):
            old.extend(b"\0" * (offset + len(data) - len(old)))
        old[offset : offset + len(data)] = data
        self.tree[path] = bytes(old)

    def delete(self, path: str) -> None:
        self._need_file(path)
        del self.tree[path]

    def mkdir(self, path: str) -> None:
        if path in self.tree:
            raise FileExistsError(path)
        self._make_parents(path)
        self.tree[path] = None

    def rmdir(self, path: str) -> None:
        if path not in self.tree:
            raise FileNotFoundError(path)
        if self.tree[path] is not None:
            raise NotADirectoryError(path)
        if any(p.startswith(path + "/") for p in self.tree):
            raise OSError(path)
        del self.tree[path]

    def rename(self, src: str, dst: str) -> None:
        if src not in self.tree:
            raise FileNotFoundError(src)
        if src == dst:
            return
        if dst.startswith(src + "/"):
            raise ValueError(dst)
        is_dir = self.tree[src] is None
        if dst in self.tree:
            tdir = self.tree[dst] is None
            if tdir and not is_dir:
                raise IsADirectoryError(dst)
            if not tdir and is_dir:
                raise NotADirectoryError(dst)
            if tdir and any(p.startswith(dst + "/") for p in self.tree):
                raise OSError(dst)
        self._make_parents(dst)
        moved = {p: v for p, v in self.tree.items() if p == src or p.startswith(src + "/")}
        for p in moved:
            del self.tree[p]
        self.tree.pop(dst, None)
        for p, v in moved.items():
            self.tree[dst + p[len(src):]] = v


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, FileExistsError,
            ValueError) as exc:
        return ("err", _kind(exc))
    except OSError as exc:
        return ("err", _kind(exc))


def _kind(exc: BaseException) -> str:
    for kind in (FileNotFoundError, IsADirectoryError, NotADirectoryError, FileExistsError,
                 ValueError):
        if isinstance(exc, kind):
            return kind.__name__
    return "OSError"


class CartridgeMachine(RuleBasedStateMachine):
    #: Extra arguments of ``create`` and ``open`` (subclasses test other setups).
    create_kwargs: dict = {}
    open_kwargs: dict = {}

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="cart-stateful-")
        self.path = os.path.join(self.dir, "s.cart")
        self.cart = cartridge.create(self.path, **self.create_kwargs)
        self.model = Model()
        self.committed = Model()

    def teardown(self) -> None:
        if not self.cart.closed:
            self.cart.rollback()
            self.cart.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _both(self, name: str, *args) -> None:
        expected = _outcome(getattr(self.model, name), *args)
        got = _outcome(getattr(self.cart, name), *args)
        assert got[0] == expected[0], (name, args, got, expected)
        if got[0] == "err":
            assert got[1] == expected[1], (name, args, got, expected)

    @rule(path=NAMES, size=SIZE, seed=st.integers(0, 2**16))
    def write(self, path: str, size: int, seed: int) -> None:
        self._both("write", path, _payload(seed, size))

    @rule(path=NAMES, size=SIZE, seed=st.integers(0, 2**16))
    def append(self, path: str, size: int, seed: int) -> None:
        self._both("append", path, _payload(seed, size))

    @rule(path=NAMES, size=SIZE)
    def truncate(self, path: str, size: int) -> None:
        self._both("truncate", path, size)

    @rule(path=NAMES, offset=SIZE, size=st.sampled_from([0, 1, 100, PAGE, CHUNK + 3]),
          seed=st.integers(0, 2**16))
    def write_at(self, path: str, offset: int, size: int, seed: int) -> None:
        self._both("write_at", path, offset, _payload(seed, size))

    @rule(path=NAMES)
    def delete(self, path: str) -> None:
        self._both("delete", path)

    @rule(path=NAMES)
    def mkdir(self, path: str) -> None:
        self._both("mkdir", path)

    @rule(path=NAMES)
    def rmdir(self, path: str) -> None:
        self._both("rmdir", path)

    @rule(src=NAMES, dst=NAMES)
    def rename(self, src: str, dst: str) -> None:
        self._both("rename", src, dst)

    @rule(path=NAMES, offset=st.integers(0, 3 * CHUNK), size=st.integers(0, 3 * CHUNK))
    def read_range(self, path: str, offset: int, size: int) -> None:
        expected = _outcome(lambda p: self.model._need_file(p)[offset : offset + size], path)
        got = _outcome(lambda p: self.cart.read(p, offset, size), path)
        assert got == expected

    @rule()
    def commit(self) -> None:
        self.cart.commit()
        self.committed = self.model.copy()

    @rule()
    def rollback(self) -> None:
        self.cart.rollback()
        self.model = self.committed.copy()

    @rule()
    def reopen(self) -> None:
        self.cart.close()
        self.committed = self.model.copy()
        self.cart = cartridge.open(self.path, "r+", **self.open_kwargs)

    @rule()
    def crash(self) -> None:
        """Lose the handle without commit: the last commit must be what reopens."""
        self.cart.rollback()
        self.cart.close()
        self.model = self.committed.copy()
        self.cart = cartridge.open(self.path, "r+", **self.open_kwargs)

    @precondition(lambda self: True)
    @rule()
    def check(self) -> None:
        listed = self.cart.list("/", recursive=True)
        assert listed == sorted(self.model.tree)
        for path, data in self.model.tree.items():
            info = self.cart.stat(path)
            if data is None:
                assert info.kind == "dir"
            else:
                assert info.kind == "file" and info.size == len(data)
                assert self.cart.read(path) == data, path
        report = self.cart.verify()
        assert report.ok, report.problems

    @invariant()
    def children_listing(self) -> None:
        expected = sorted(p for p in self.model.tree if p.count("/") == 1)
        assert self.cart.list("/") == expected


class DatasetMachine(RuleBasedStateMachine):
    """A growable chunked dataset against a plain ndarray (committed and pending)."""

    #: Extra arguments of ``create`` and ``create_dataset`` (subclasses test other setups).
    create_kwargs: dict = {}
    dataset_kwargs: dict = {}

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "m.cart")
        self.cart = cartridge.create(self.path, chunk_size=4096, **self.create_kwargs)
        self.ds = self.cart.create_dataset("/d", (0, 3), "<i4", maxshape=(None, 3),
                                           chunks=(4, 2), fill_value=-7, **self.dataset_kwargs)
        self.cart.commit()
        self.model = np.zeros((0, 3), "<i4")
        self.durable = self.model.copy()
        self.views: list[tuple[np.ndarray, np.ndarray]] = []

    @rule(rows=st.integers(0, 6), seed=st.integers(0, 1 << 16))
    def append(self, rows, seed):
        values = np.random.default_rng(seed).integers(-100, 100, (rows, 3)).astype("<i4")
        self.ds.append(values)
        self.model = np.concatenate([self.model, values])

    @rule(n=st.integers(0, 30))
    def resize(self, n):
        self.ds.resize((n, 3))
        grown = np.full((n, 3), -7, "<i4")
        keep = min(n, len(self.model))
        grown[:keep] = self.model[:keep]
        self.model = grown

    @precondition(lambda self: len(self.model) > 0)
    @rule(data=st.data())
    def setitem(self, data):
        key = data.draw(hnp.basic_indices(self.model.shape, allow_newaxis=False))
        value = data.draw(st.integers(-1000, 1000))
        self.ds[key] = value
        self.model[key] = value

    @rule()
    def commit(self):
        self.cart.commit()
        self.durable = self.model.copy()

    @rule()
    def rollback(self):
        self.cart.rollback()
        self.model = self.durable.copy()

    @rule()
    def reopen(self):
        self.cart.close()
        self.durable = self.model.copy()
        self.cart = cartridge.open(self.path, "r+")
        self.ds = self.cart.array("/d")

    @rule(seed=st.integers(0, 1 << 16))
    def snapshot_view(self, seed):
        arr = np.random.default_rng(seed).integers(0, 9, 5000)
        self.cart.write_array(f"/v{seed % 3}", arr)
        self.views.append((self.cart.view(f"/v{seed % 3}"), arr))
        if len(self.views) > 4:
            self.views.pop(0)

    @invariant()
    def matches(self):
        got = self.ds[...]
        assert got.shape == self.model.shape and (got == self.model).all()
        for view, arr in self.views:
            assert (view == arr).all()

    def teardown(self):
        self.cart.close()  # commits
        self.durable = self.model
        with cartridge.open(self.path, "r") as c:
            assert c.verify().ok
            assert (c.array("/d")[...] == self.durable).all()
        self.views.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
