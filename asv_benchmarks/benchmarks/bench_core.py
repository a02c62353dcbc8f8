"""Core-path benchmarks: bulk writes and reads, a million tiny files, durable commit.

Each class is one population of files.  A population that reads needs a
container built once per run: ``setup_cache`` builds it in the working
directory asv gives it (asv deletes that directory afterwards) and returns its
path; ``setup`` opens it read-only.  Benchmarks that write get a fresh
temporary directory from ``setup`` and lose it in ``teardown``; asv re-runs
``setup`` before every timed call, so each call starts from the same state.

Slow benchmarks set ``number = 1`` and ``warmup_time = 0`` so one sample is
one call and nothing multi-second runs untimed; the million-file ones also
set ``repeat = 1`` and ``rounds = 1``.  The peers (LMDB, SQLite, HDF5, plain
files) are compared by ``bench/compare_core.py``, not here.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "numba-cache"))

import cartridge  # noqa: E402

KIB = 1024
PER_DIR = 1000
LOOKUPS = 10_000
"""Random reads per call in the million-file lookup benchmark."""


def file_paths(n: int) -> list[str]:
    """``n`` absolute paths, ``PER_DIR`` files per directory, in path order."""
    return [f"/d{i // PER_DIR:04d}/f{i:07d}" for i in range(n)]


def build(path: str, paths: list[str], payload: bytes) -> None:
    """Write every path into a new container at ``path`` and commit once."""
    with cartridge.create(path, overwrite=True) as cart:
        write = cart.write
        for p in paths:
            write(p, payload)
        cart.commit()


def build_cached(name: str, n: int, size: int) -> str:
    """Build the shared read-only population in asv's cache directory."""
    path = os.path.abspath(name)
    build(path, file_paths(n), os.urandom(size))
    return path


class _Population:
    """``n`` files of ``size`` bytes: a timed bulk write into a fresh container.

    Subclasses set ``n`` and ``size`` and define their own ``setup_cache``
    (asv keys the cache by the function's source line, so populations cannot
    share an inherited one).
    """

    n = 0
    size = 0
    number = 1
    warmup_time = 0.0
    repeat = (1, 5, 120.0)
    timeout = 600.0

    def setup(self, cached: str) -> None:
        self.tmp = tempfile.mkdtemp(prefix="cart-asv-")
        self.target = os.path.join(self.tmp, "bench.cart")
        self.paths = file_paths(self.n)
        self.payload = os.urandom(self.size)
        self.cart = cartridge.open(cached, "r")

    def teardown(self, cached: str) -> None:
        self.cart.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def time_write_commit(self, cached: str) -> None:
        """Create a container, write every file, commit (durable), close."""
        build(self.target, self.paths, self.payload)


class _ShuffledRead(_Population):
    """Adds a full read of the cached population in random order."""

    def setup(self, cached: str) -> None:
        super().setup(cached)
        self.shuffled = random.Random(0).sample(self.paths, len(self.paths))

    def time_read_all_shuffled(self, cached: str) -> None:
        """Read every file once, in random order, from a warm container."""
        read = self.cart.read
        for p in self.shuffled:
            read(p)


class Files64KiB(_ShuffledRead):
    """10,000 files of 64 KiB (one chunk each, ~640 MiB)."""

    n = 10_000
    size = 64 * KIB

    def setup_cache(self) -> str:
        return build_cached("files_64k.cart", self.n, self.size)

    setup_cache.timeout = 600.0


class Files1KiB(_ShuffledRead):
    """100,000 files of 1 KiB (stored inline in the catalog)."""

    n = 100_000
    size = KIB

    def setup_cache(self) -> str:
        return build_cached("files_1k.cart", self.n, self.size)

    setup_cache.timeout = 600.0


class Files16B(_Population):
    """1,000,000 files of 16 bytes: build, random lookups, full listing."""

    n = 1_000_000
    size = 16
    repeat = 1
    rounds = 1
    timeout = 1800.0

    def setup_cache(self) -> str:
        return build_cached("files_16b.cart", self.n, self.size)

    setup_cache.timeout = 1800.0

    def setup(self, cached: str) -> None:
        super().setup(cached)
        self.lookups = random.Random(1).choices(self.paths, k=LOOKUPS)

    def time_read_random_10k(self, cached: str) -> None:
        """10,000 uniformly random lookups (``read``) among the million."""
        read = self.cart.read
        for p in self.lookups:
            read(p)

    time_read_random_10k.repeat = (3, 5, 60.0)

    def time_list_recursive(self, cached: str) -> None:
        """``list("/", recursive=True)``: every file and directory."""
        self.cart.list("/", recursive=True)

    time_list_recursive.repeat = (3, 5, 120.0)


class DurableCommit:
    """One 1 KiB write made durable, in a container already holding 1,000 files."""

    repeat = (20, 200, 20.0)

    def setup(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="cart-asv-")
        self.cart = cartridge.create(os.path.join(self.tmp, "bench.cart"))
        self.payload = os.urandom(KIB)
        for p in file_paths(1000):
            self.cart.write(p, self.payload)
        self.cart.commit()

    def teardown(self) -> None:
        self.cart.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def time_write_commit(self) -> None:
        """``write`` one new 1 KiB file, then ``commit()`` (returns once on disk)."""
        self.cart.write("/commit/one", self.payload)
        self.cart.commit()
