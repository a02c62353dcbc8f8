"""Cartridge against LMDB, SQLite, HDF5 and plain files on the core workloads.

Every store runs the same workloads in this one process, on this machine, in
a temporary directory, so the numbers are comparable with each other and with
nothing else.  The workloads:

``a``  10,000 files of 64 KiB: build (write all, make durable), warm random reads.
``b``  100,000 files of 1 KiB: the same.
``c``  1,000,000 files of 16 bytes: build, warm random lookups, full listing.
``d``  durable single commits: write one 1 KiB file and make it durable, timed
       one by one (median and p99).

How each store is used, chosen to be the ordinary idiom and fair:

* **Cartridge**: ``write`` per file, one ``commit()`` at the end of a build;
  reads from a fresh read-only handle; listing is ``list("/", recursive=True)``
  (it also returns the directory entries).
* **LMDB** (py-lmdb): ``put`` per key in one write transaction per build,
  ``sync`` and ``metasync`` on; reads through one read transaction per repeat;
  listing walks a cursor over the keys (bytes, not decoded).  Durable commit:
  one write transaction per file.
* **SQLite** (stdlib ``sqlite3``): table ``files(path TEXT PRIMARY KEY, data
  BLOB)``, ``journal_mode=WAL``, ``synchronous=FULL`` throughout; a build is
  one transaction filled by ``executemany``; a read is one ``SELECT``; listing
  is ``SELECT path ... ORDER BY path``.  Durable commit: one autocommit
  ``INSERT`` per file.
* **HDF5** (h5py, ``libver="latest"``): one ``uint8`` dataset per file, its
  directories as groups (reads return a numpy array).  For the 16-byte files
  of ``c`` a dataset per file costs ~0.4 ms to create on this stack (about
  seven minutes per build), so there each file is a ``uint8`` attribute of its
  directory's group instead: HDF5's own home for tiny values, and the faster
  of the two.  HDF5 does not sync: a build ends with ``close()`` and an
  ``fsync`` of the file; a durable commit is dataset + ``flush()`` + ``fsync``
  of the file descriptor (and is still not crash-atomic).
* **files**: one file per path under real directories; ``open``/``write`` per
  file, the build made durable by one ``syncfs`` of the file system (one
  "commit"; it also flushes other processes' dirty data on that file system,
  so it is noisy on a shared machine); a read is ``open`` + ``readall``;
  listing is a recursive ``scandir``.  A million fsynced files take over eight
  minutes to build here, so ``c`` skips plain files unless ``--skip ''``.
  Durable commit: write, ``fsync`` the file, ``fsync`` the directory.

Files are written in path order, 1,000 per directory (``/d0001/f0001234``); a
read picks paths uniformly at random (with replacement, seeded).  "Warm" means
the store was built, closed, reopened, and a separate sample of the same size
read once untimed before the timed repeats, so the pages are in the OS page
cache but the timed paths are not all in the stores' own caches.  Every timed
measurement is repeated and the median is reported; the garbage collector
stays on, as it would in an application.  Stores take turns within each
repeat (and commit by commit in ``d``), so a slow spell of a shared machine
lands on all of them rather than on whichever happened to be running.

Usage::

    NUMBA_CACHE_DIR=/tmp/numba-cache python bench/compare_core.py
    python bench/compare_core.py --scale 0.1 --only a,d --stores cartridge,lmdb
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "numba-cache"))

import h5py  # noqa: E402
import lmdb  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402

import cartridge  # noqa: E402

KIB = 1024
PER_DIR = 1000
PRELOAD = 1000
"""Files committed before the durable-commit workload starts timing."""


# ------------------------------------------------------------------ workloads
@dataclass(frozen=True, slots=True)
class Workload:
    """One row group of the report."""

    key: str
    """Letter used by ``--only``."""
    what: str
    """What each file is, for the report (``"64 KiB"``)."""
    count: int
    """Files at scale 1."""
    size: int
    """Bytes per file."""
    listing: bool
    """Whether the full recursive listing is timed."""


WORKLOADS = {
    "a": Workload("a", "64 KiB", 10_000, 64 * KIB, False),
    "b": Workload("b", "1 KiB", 100_000, KIB, False),
    "c": Workload("c", "16 B", 1_000_000, 16, True),
    "d": Workload("d", "durable 1 KiB commit", 0, KIB, False),
}


def make_paths(n: int) -> list[str]:
    """``n`` absolute paths in sorted order, ``PER_DIR`` files per directory."""
    return [f"/d{i // PER_DIR:04d}/f{i:07d}" for i in range(n)]


# --------------------------------------------------------------------- stores
class Store:
    """One engine under test, living in its own directory.

    Keys reach a store in its native form (``native``), converted before any
    timing starts, so no store pays for another's key format.
    """

    name = ""
    tiny_note = ""

    def __init__(self, root: str, tiny: bool = False) -> None:
        self.root = root
        self.tiny = tiny
        self.get: Callable[[Any], Any] = _unset

    def native(self, path: str) -> Any:
        return path

    def build(self, keys: Sequence[Any], payload: bytes) -> None:
        """Create the store, write every key, make it durable, close it."""
        raise NotImplementedError

    def open_read(self) -> None:
        """Open the built store for reading and set ``self.get``."""
        raise NotImplementedError

    def listing(self) -> int:
        """List every path; return how many entries came back."""
        raise NotImplementedError

    def open_durable(self) -> None:
        """Open the built store for single durable writes."""
        raise NotImplementedError

    def put_durable(self, key: Any, payload: bytes) -> None:
        """Write one file and return only once it is durable."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _unset(_key: Any) -> Any:
    raise RuntimeError("store not open for reading")


class CartridgeStore(Store):
    name = "Cartridge"

    def __init__(self, root: str, tiny: bool = False) -> None:
        super().__init__(root, tiny)
        self.file = os.path.join(root, "store.cart")
        self.cart: cartridge.Cartridge | None = None

    def build(self, keys: Sequence[Any], payload: bytes) -> None:
        cart = cartridge.create(self.file, overwrite=True)
        write = cart.write
        for k in keys:
            write(k, payload)
        cart.commit()
        cart.close()

    def open_read(self) -> None:
        self.cart = cartridge.open(self.file, "r")
        self.get = self.cart.read

    def listing(self) -> int:
        return len(self.cart.list("/", recursive=True))

    def open_durable(self) -> None:
        self.cart = cartridge.open(self.file, "r+")

    def put_durable(self, key: Any, payload: bytes) -> None:
        self.cart.write(key, payload)
        self.cart.commit()

    def close(self) -> None:
        if self.cart is not None:
            self.cart.close()
            self.cart = None


class LmdbStore(Store):
    name = "LMDB"

    def __init__(self, root: str, tiny: bool = False) -> None:
        super().__init__(root, tiny)
        self.dir = os.path.join(root, "lmdb")
        self.env: Any = None
        self.txn: Any = None

    def native(self, path: str) -> bytes:
        return path.encode()

    def _open(self, readonly: bool) -> None:
        # Virtual address space only: reserve far more than any workload needs.
        self.env = lmdb.open(self.dir, map_size=64 << 30, readonly=readonly,
                             sync=True, metasync=True, lock=True)

    def build(self, keys: Sequence[Any], payload: bytes) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self._open(readonly=False)
        with self.env.begin(write=True) as txn:
            put = txn.put
            for k in keys:
                put(k, payload)
        self.env.close()
        self.env = None

    def open_read(self) -> None:
        self._open(readonly=True)
        self.txn = self.env.begin()
        self.get = self.txn.get

    def listing(self) -> int:
        with self.env.begin() as txn:
            return len(list(txn.cursor().iternext(values=False)))

    def open_durable(self) -> None:
        self._open(readonly=False)

    def put_durable(self, key: Any, payload: bytes) -> None:
        with self.env.begin(write=True) as txn:
            txn.put(key, payload)

    def close(self) -> None:
        if self.txn is not None:
            self.txn.abort()
            self.txn = None
        if self.env is not None:
            self.env.close()
            self.env = None


class SqliteStore(Store):
    name = "SQLite"

    def __init__(self, root: str, tiny: bool = False) -> None:
        super().__init__(root, tiny)
        self.file = os.path.join(root, "store.sqlite")
        self.conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.file, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def build(self, keys: Sequence[Any], payload: bytes) -> None:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.file + suffix):
                os.remove(self.file + suffix)
        conn = self._connect()
        conn.execute("CREATE TABLE files (path TEXT PRIMARY KEY, data BLOB)")
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO files VALUES (?, ?)", ((k, payload) for k in keys))
        conn.execute("COMMIT")
        conn.close()

    def open_read(self) -> None:
        self.conn = self._connect()
        execute = self.conn.execute
        sql = "SELECT data FROM files WHERE path = ?"

        def get(key: str) -> bytes:
            return execute(sql, (key,)).fetchone()[0]

        self.get = get

    def listing(self) -> int:
        return len(self.conn.execute("SELECT path FROM files ORDER BY path").fetchall())

    def open_durable(self) -> None:
        self.conn = self._connect()

    def put_durable(self, key: Any, payload: bytes) -> None:
        self.conn.execute("INSERT OR REPLACE INTO files VALUES (?, ?)", (key, payload))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class H5Store(Store):
    name = "HDF5"
    tiny_note = "HDF5 stores the 1M x 16 B files as group attributes (see the docstring)."

    def __init__(self, root: str, tiny: bool = False) -> None:
        super().__init__(root, tiny)
        self.file = os.path.join(root, "store.h5")
        self.h5: h5py.File | None = None
        self.fd = -1

    def native(self, path: str) -> Any:
        if self.tiny:
            group, _, name = path[1:].partition("/")
            return group, name
        return path[1:]

    def build(self, keys: Sequence[Any], payload: bytes) -> None:
        arr = np.frombuffer(payload, np.uint8)
        with h5py.File(self.file, "w", libver="latest") as f:
            if self.tiny:
                last, group = None, None
                for gname, name in keys:
                    if gname != last:
                        group, last = f.require_group(gname), gname
                    group.attrs[name] = arr
            else:
                create = f.create_dataset
                for k in keys:
                    create(k, data=arr)
        _fsync_path(self.file)

    def open_read(self) -> None:
        self.h5 = h5py.File(self.file, "r")
        if self.tiny:
            groups = {name: self.h5[name].attrs for name in self.h5}

            def get(key: tuple[str, str]) -> Any:
                return groups[key[0]][key[1]]
        else:
            f = self.h5

            def get(key: str) -> Any:
                return f[key][()]

        self.get = get

    def listing(self) -> int:
        if self.tiny:
            return sum(len(list(self.h5[g].attrs)) for g in self.h5)
        names: list[str] = []
        self.h5.visit(names.append)
        return len(names)

    def open_durable(self) -> None:
        self.h5 = h5py.File(self.file, "r+", libver="latest")
        self.fd = self.h5.id.get_vfd_handle()

    def put_durable(self, key: Any, payload: bytes) -> None:
        self.h5.create_dataset(key, data=np.frombuffer(payload, np.uint8))
        self.h5.flush()
        os.fsync(self.fd)

    def close(self) -> None:
        if self.h5 is not None:
            self.h5.close()
            self.h5 = None


class FilesStore(Store):
    name = "files"

    def __init__(self, root: str, tiny: bool = False) -> None:
        super().__init__(root, tiny)
        self.dir = os.path.join(root, "files")
        self.dirfds: dict[str, int] = {}

    def native(self, path: str) -> str:
        return self.dir + path

    def build(self, keys: Sequence[Any], payload: bytes) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        os.mkdir(self.dir)
        last = None
        for k in keys:
            d = os.path.dirname(k)
            if d != last:
                os.makedirs(d, exist_ok=True)
                last = d
            with open(k, "wb") as fh:
                fh.write(payload)
        _syncfs(self.dir)

    def open_read(self) -> None:
        def get(key: str) -> bytes:
            with open(key, "rb", buffering=0) as fh:
                return fh.readall()

        self.get = get

    def listing(self) -> int:
        out: list[str] = []
        stack = [self.dir]
        while stack:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    out.append(entry.path)
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        return len(out)

    def open_durable(self) -> None:
        self.dirfds = {}

    def put_durable(self, key: Any, payload: bytes) -> None:
        d = os.path.dirname(key)
        dfd = self.dirfds.get(d)
        if dfd is None:
            os.makedirs(d, exist_ok=True)
            dfd = self.dirfds[d] = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.fsync(dfd)

    def close(self) -> None:
        for fd in self.dirfds.values():
            os.close(fd)
        self.dirfds = {}


STORES: dict[str, type[Store]] = {
    "cartridge": CartridgeStore,
    "lmdb": LmdbStore,
    "sqlite": SqliteStore,
    "hdf5": H5Store,
    "files": FilesStore,
}


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs(path: str) -> None:
    """Flush the file system holding ``path`` (Linux ``syncfs``; else ``sync``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if not hasattr(libc, "syncfs") or libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


# ------------------------------------------------------------------ measuring
@dataclass
class Result:
    """Samples of one store on one workload, in seconds."""

    build: list[float] = field(default_factory=list)
    read: list[float] = field(default_factory=list)
    """Seconds per read, one value per repeat."""
    listing: list[float] = field(default_factory=list)
    commit: list[float] = field(default_factory=list)
    """Seconds per durable commit, every commit of every repeat."""
    note: str = ""


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def read_loop(get: Callable[[Any], Any], keys: Iterable[Any]) -> None:
    for k in keys:
        get(k)


def fresh_dir(base: str, name: str) -> str:
    path = os.path.join(base, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def run_files_workload(w: Workload, classes: list[type[Store]], args: argparse.Namespace,
                       paths: list[str], samples: list[list[int]]) -> dict[str, Result]:
    """Build every store, then time reads (and the listing) of every store.

    Stores take turns within each repeat, so a slow spell of the shared
    machine lands on all of them rather than on whichever ran then.
    """
    n = len(paths)
    payload = os.urandom(w.size)
    build_repeats = 1 if w.key == "c" else args.build_repeats
    stores = {cls: cls(fresh_dir(args.base, f"{w.key}-{cls.__name__}"), tiny=w.key == "c")
              for cls in classes}
    results = {cls: Result() for cls in classes}
    for rep in range(build_repeats):
        for cls, store in stores.items():
            if rep:
                fresh_dir(args.base, f"{w.key}-{cls.__name__}")
            keys = [store.native(p) for p in paths]
            gc.collect()
            t, _ = timed(lambda store=store, keys=keys: store.build(keys, payload))
            results[cls].build.append(t)
            _progress(f"{w.key} {store.name} build {rep + 1}/{build_repeats}: {t:.2f} s")
    try:
        sample_keys = {}
        for cls, store in stores.items():
            store.open_read()
            got = store.get(store.native(paths[0]))
            if len(got) != w.size:
                raise AssertionError(f"{store.name} read {len(got)} bytes, expected {w.size}")
            sample_keys[cls] = [[store.native(paths[i]) for i in s] for s in samples]
            read_loop(store.get, sample_keys[cls][0])
        for rep in range(1, len(samples)):
            for cls, store in stores.items():
                sk = sample_keys[cls][rep]
                t, _ = timed(lambda store=store, sk=sk: read_loop(store.get, sk))
                results[cls].read.append(t / len(sk))
                _progress(f"{w.key} {store.name} read {rep}/{len(samples) - 1}: "
                          f"{t / len(sk) * 1e6:.1f} us")
        for rep in range(args.repeats if w.listing else 0):
            for cls, store in stores.items():
                t, count = timed(store.listing)
                if count < n:
                    raise AssertionError(f"{store.name} listed {count} entries, expected >= {n}")
                results[cls].listing.append(t)
                _progress(f"{w.key} {store.name} list {rep + 1}/{args.repeats}: {t:.2f} s")
    finally:
        for store in stores.values():
            store.close()
            shutil.rmtree(store.root, ignore_errors=True)
    return {cls.name: res for cls, res in results.items()}


def run_commit_workload(classes: list[type[Store]], args: argparse.Namespace
                        ) -> dict[str, Result]:
    """Preload ``PRELOAD`` files, then time ``--commits`` single durable writes.

    The stores take turns commit by commit (in rotating order), so bursts of
    other I/O on the shared disk hit every store alike.
    """
    results = {cls: Result() for cls in classes}
    payload = os.urandom(KIB)
    clock = time.perf_counter
    for rep in range(args.commit_repeats):
        stores = {cls: cls(fresh_dir(args.base, f"d-{cls.__name__}")) for cls in classes}
        keys = {}
        try:
            for cls, store in stores.items():
                store.build([store.native(p) for p in make_paths(PRELOAD)], payload)
                keys[cls] = [store.native(f"/commit/c{i:06d}") for i in range(args.commits)]
                store.open_durable()
            order = list(stores.items())
            gc.collect()
            for i in range(args.commits):
                turn = order[i % len(order):] + order[: i % len(order)]
                for cls, store in turn:
                    t0 = clock()
                    store.put_durable(keys[cls][i], payload)
                    results[cls].commit.append(clock() - t0)
        finally:
            for store in stores.values():
                store.close()
                shutil.rmtree(store.root, ignore_errors=True)
        for cls in classes:
            _progress(f"d {cls.name} commits {rep + 1}/{args.commit_repeats}: median "
                      f"{statistics.median(results[cls].commit[-args.commits:]) * 1e6:.0f} us")
    return {cls.name: res for cls, res in results.items()}


def warm_up_cartridge(base: str) -> None:
    """Load (or compile) the numba kernels before anything is timed."""
    path = os.path.join(base, "warm.cart")
    with cartridge.create(path, overwrite=True) as cart:
        cart.write("/x", os.urandom(200 * KIB))
        cart.write("/y", b"y")
        cart.commit()
        cart.read("/x")
    os.remove(path)


# ------------------------------------------------------------------- report
def _progress(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def fmt_seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.1f} µs"


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def metrics(w: Workload, res: Result, n: int) -> list[tuple[str, float]]:
    """``(metric name, seconds)`` rows for one store on one workload."""
    if w.key == "d":
        return [("commit median", statistics.median(res.commit)),
                ("commit p99", percentile(res.commit, 99))]
    rows = [("build (total)", statistics.median(res.build)),
            ("build per file", statistics.median(res.build) / n),
            ("warm random read", statistics.median(res.read))]
    if w.listing:
        rows.append(("full listing", statistics.median(res.listing)))
    return rows


def report(table: dict[str, dict[str, Result]], counts: dict[str, int],
           store_names: list[str]) -> str:
    names = [STORES[s].name for s in store_names]
    lines = ["| workload | metric | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for wkey, per_store in table.items():
        w = WORKLOADS[wkey]
        title = title_of(w, counts[wkey])
        base = per_store.get(CartridgeStore.name)
        base_rows = dict(metrics(w, base, counts[wkey])) if base else {}
        all_rows = {s: dict(metrics(w, r, counts[wkey])) for s, r in per_store.items()}
        metric_names = [m for m, _ in metrics(w, next(iter(per_store.values())), counts[wkey])]
        for m in metric_names:
            cells = []
            for name in names:
                if name not in all_rows:
                    cells.append("skipped")
                    continue
                v = all_rows[name][m]
                cell = fmt_seconds(v)
                if name != CartridgeStore.name and m in base_rows and base_rows[m] > 0:
                    cell += f" ({v / base_rows[m]:.2f}×)"
                cells.append(cell)
            lines.append(f"| {title} | {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def title_of(w: Workload, n: int) -> str:
    if w.key == "d":
        return w.what
    count = f"{n / 1000:g}k" if n < 1_000_000 else f"{n / 1e6:g}M"
    return f"({w.key}) {count} × {w.what}"


def machine_notes(base: str) -> list[str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            mem = f"{int(fh.readline().split()[1]) / 2**20:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    commit = "unknown"
    try:
        commit = subprocess.run(
            ["git", "-C", os.path.dirname(os.path.abspath(cartridge.__file__)), "rev-parse",
             "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", os.path.dirname(os.path.abspath(cartridge.__file__)), "status",
             "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
        commit += " (+ uncommitted changes)" if dirty.strip() else ""
    except (OSError, subprocess.CalledProcessError):
        pass
    return [
        f"CPU: {cpu}, {os.cpu_count()} logical cores; {mem}",
        f"OS: {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}; numpy {np.__version__}; numba {numba.__version__}",
        f"cartridge {cartridge.__version__} at git {commit}",
        f"py-lmdb {lmdb.__version__} (LMDB {'.'.join(map(str, lmdb.version()))}); "
        f"SQLite {sqlite3.sqlite_version}; h5py {h5py.__version__} "
        f"(HDF5 {h5py.version.hdf5_version})",
        f"temp dir {base}: {filesystem_of(base)}",
    ]


def filesystem_of(path: str) -> str:
    """File system type, device and mount point holding ``path``."""
    real = os.path.realpath(path)
    best = ("", "?", "?")
    try:
        with open("/proc/mounts") as fh:
            for line in fh:
                dev, mnt, fstype = line.split()[:3]
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) \
                        and len(mnt) >= len(best[0]):
                    best = (mnt, fstype, dev)
    except OSError:
        return "unknown"
    return f"{best[1]} on {best[2]} (mounted at {best[0]})"


# ---------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0,
                    help="fraction of every file count (default 1.0)")
    ap.add_argument("--only", default="a,b,c,d",
                    help="comma-separated workloads among a,b,c,d (default all)")
    ap.add_argument("--stores", default=",".join(STORES),
                    help=f"comma-separated stores among {','.join(STORES)}")
    ap.add_argument("--skip", default="c:files",
                    help="workload:store pairs to skip (default c:files: a million fsynced "
                         "16-byte files take ~0.5 ms each to build on ext4, over 8 minutes; "
                         "pass --skip '' to run them)")
    ap.add_argument("--repeats", type=int, default=5, help="repeats of reads and listings")
    ap.add_argument("--build-repeats", type=int, default=3,
                    help="builds per store for a and b (c is built once)")
    ap.add_argument("--reads", type=int, default=10_000, help="random reads per repeat")
    ap.add_argument("--commits", type=int, default=300, help="durable commits per repeat")
    ap.add_argument("--commit-repeats", type=int, default=3)
    ap.add_argument("--dir", default=None, help="parent of the temporary directory")
    ap.add_argument("--json", default=None, help="also write every raw sample here")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    bad = [w for w in args.only if w not in WORKLOADS] + [
        s for s in args.stores if s not in STORES]
    if bad:
        ap.error(f"unknown workload or store: {', '.join(bad)}")
    args.skip = {tuple(p.split(":", 1)) for p in args.skip.split(",") if ":" in p}
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.base = tempfile.mkdtemp(prefix="cart-compare-", dir=args.dir)
    started = time.perf_counter()
    try:
        warm_up_cartridge(args.base)
        table: dict[str, dict[str, Result]] = {}
        counts: dict[str, int] = {}
        skipped: list[str] = []
        for wkey in args.only:
            w = WORKLOADS[wkey]
            n = args.commits if wkey == "d" else max(PER_DIR, int(w.count * args.scale))
            counts[wkey] = n
            classes = []
            for s in args.stores:
                if (wkey, s) in args.skip:
                    skipped.append(f"{title_of(w, n)}: {STORES[s].name}")
                else:
                    classes.append(STORES[s])
            if wkey == "d":
                table[wkey] = run_commit_workload(classes, args)
                continue
            rng = random.Random(args.seed)
            # Sample 0 warms up and is never timed: a timed sample that was
            # just read would find its nodes in the stores' own caches.
            samples = [rng.choices(range(n), k=args.reads) for _ in range(args.repeats + 1)]
            table[wkey] = run_files_workload(w, classes, args, make_paths(n), samples)
        elapsed = time.perf_counter() - started
        print("## Cartridge vs peers: core workloads\n")
        print(f"Command: `{' '.join([os.path.basename(sys.executable)] + sys.argv)}`  ")
        print(f"Scale {args.scale}; repeats: reads/listing {args.repeats} "
              f"({args.reads} random reads each), builds {args.build_repeats} for a/b and 1 "
              f"for c, durable commits {args.commit_repeats} x {args.commits} "
              f"(after {PRELOAD} preloaded files); total run {elapsed / 60:.1f} min.\n")
        print("Cells are medians; (N×) is peer time / Cartridge time, so above 1 means "
              "Cartridge is faster. Reads are per read; builds include making the data "
              "durable.\n")
        print(report(table, counts, args.stores))
        print()
        notes = []
        if "c" in table and H5Store.name in table["c"]:
            notes.append(H5Store.tiny_note)
        notes += [f"skipped: {s}" for s in skipped]
        if notes:
            print("Notes: " + " ".join(notes) + "\n")
        print("Machine:\n")
        for line in machine_notes(args.base):
            print(f"- {line}")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({w: {s: r.__dict__ for s, r in per.items()}
                           for w, per in table.items()}, fh)
    finally:
        shutil.rmtree(args.base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
