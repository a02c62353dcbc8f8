"""MVCC benchmarks: read transactions, snapshots, compaction.

``Reads`` times random 1 KiB reads from a 64 MiB file through a plain
read-only handle and through one read transaction, and the cost of opening
and closing a transaction.  ``Snapshots`` times ``snapshot()`` on a 10 MiB
and a 256 MiB container (they should be equal: a snapshot writes one leaf
path).  ``Compaction`` times ``compact()`` of a fragmented 32 MiB container
after 70% of its files were deleted.  Concurrent-process scaling and the
comparison with LMDB and h5py are in ``bench/compare_mvcc.py``.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "numba-cache"))

import numpy as np  # noqa: E402

import cartridge  # noqa: E402

BLOB = 64 << 20
READS = 2000


class Reads:
    """Random 1 KiB reads of one 64 MiB file."""

    number = 1
    warmup_time = 0.0

    def setup_cache(self) -> str:
        path = os.path.abspath("mvcc_reads.cart")
        with cartridge.create(path, overwrite=True) as c:
            c.write("/blob", np.random.default_rng(0).bytes(BLOB))
        return path

    def setup(self, path: str) -> None:
        self.cart = cartridge.open(path, "r")
        rng = random.Random(0)
        self.offsets = [rng.randrange(BLOB - 1024) for _ in range(READS)]

    def teardown(self, path: str) -> None:
        self.cart.close()

    def time_plain_handle_reads(self, path: str) -> None:
        """2,000 reads, each pinning the newest commit."""
        read = self.cart.read
        for o in self.offsets:
            read("/blob", o, 1024)

    def time_transaction_reads(self, path: str) -> None:
        """2,000 reads in one read transaction (pinned once)."""
        with self.cart.reader() as r:
            read = r.read
            for o in self.offsets:
                read("/blob", o, 1024)

    def time_open_close_transaction(self, path: str) -> None:
        """Start and end one read transaction."""
        self.cart.reader().close()


class Snapshots:
    """``snapshot()`` is O(1): the same time at 10 MiB and 256 MiB."""

    params = [10, 256]
    param_names = ["mib"]
    number = 1
    warmup_time = 0.0
    timeout = 600.0

    def setup(self, mib: int) -> None:
        self.tmp = tempfile.mkdtemp(prefix="cart-asv-")
        self.cart = cartridge.create(os.path.join(self.tmp, "s.cart"))
        piece = np.random.default_rng(1).bytes(1 << 20)
        for i in range(mib):
            self.cart.write(f"/d{i // 64}/f{i}", piece)
        self.cart.commit()
        self.k = 0

    def teardown(self, mib: int) -> None:
        self.cart.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def time_snapshot(self, mib: int) -> None:
        self.k += 1
        self.cart.snapshot(f"s{self.k}")


class Compaction:
    """``compact()`` of a fragmented 32 MiB container, 70% deleted."""

    number = 1
    warmup_time = 0.0
    repeat = (1, 5, 60.0)

    def setup(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="cart-asv-")
        self.cart = cartridge.create(os.path.join(self.tmp, "c.cart"))
        rng = np.random.default_rng(2)
        names = []
        total = 0
        while total < 32 << 20:
            size = 4096 * int(rng.integers(2, 41))
            names.append(f"/f{len(names)}")
            self.cart.write(names[-1], rng.bytes(size))
            total += size
        self.cart.commit()
        for k in rng.permutation(len(names))[: int(0.7 * len(names))]:
            self.cart.delete(names[k])
        self.cart.commit()

    def teardown(self) -> None:
        self.cart.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def time_compact(self) -> None:
        self.cart.compact()
