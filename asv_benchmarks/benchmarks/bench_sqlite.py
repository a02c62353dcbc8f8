"""SQLite inside a container (the cartridge VFS) against SQLite on a plain file.

The phases of ``bench/compare_sqlite.py`` at a smaller scale (20,000 rows),
each as one timed call on both stores, parametrized over journal mode and
``synchronous`` level.  Reading benchmarks share one database per store built
by ``setup``; writing benchmarks build theirs in ``setup`` too, so a timed
call starts from the same state each time.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "numba-cache"))

import apsw  # noqa: E402

from cartridge import sqlite  # noqa: E402

ROWS = 20_000
MODES = ["wal", "delete"]
SYNCS = ["normal", "full"]


def _rows(n: int, seed: int = 1) -> list[tuple]:
    rng = random.Random(seed)
    return [(i, f"name-{rng.randrange(10**9):09d}", rng.random(), "x" * (10 + i % 40))
            for i in range(n)]


def _open(store: str, tmp: str, journal: str, sync: str) -> apsw.Connection:
    if store == "plain":
        conn = apsw.Connection(os.path.join(tmp, "plain.db"))
    else:
        conn = sqlite.connect(os.path.join(tmp, "bench.cart"), "/db/bench.db")
    conn.execute(f"PRAGMA journal_mode={journal}")
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, name TEXT, value REAL, "
                 "note TEXT)")
    return conn


class _Base:
    params = (["plain", "cartridge"], MODES, SYNCS)
    param_names = ["store", "journal", "synchronous"]
    number = 1
    warmup_time = 0
    filled = True

    def setup(self, store: str, journal: str, sync: str) -> None:
        self.tmp = tempfile.mkdtemp()
        self.conn = _open(store, self.tmp, journal, sync)
        if self.filled:
            with self.conn:
                self.conn.executemany("INSERT INTO t VALUES(?, ?, ?, ?)", _rows(ROWS))
            self.conn.execute("CREATE INDEX IF NOT EXISTS t_name ON t(name)")
        rng = random.Random(2)
        self.keys = [rng.randrange(ROWS) for _ in range(2000)]
        self.starts = [f"name-{rng.randrange(10**9):09d}" for _ in range(200)]

    def teardown(self, store: str, journal: str, sync: str) -> None:
        self.conn.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class InsertOneTransaction(_Base):
    """20,000 rows in one transaction."""

    filled = False

    def time_insert(self, store: str, journal: str, sync: str) -> None:
        with self.conn:
            self.conn.executemany("INSERT INTO t VALUES(?, ?, ?, ?)", _rows(ROWS))


class Queries(_Base):
    """Point selects and ~100-row range scans on a filled, indexed table."""

    def time_point_selects(self, store: str, journal: str, sync: str) -> None:
        ex = self.conn.execute
        for k in self.keys:
            ex("SELECT name, value FROM t WHERE id = ?", (k,)).fetchone()

    def time_range_scans(self, store: str, journal: str, sync: str) -> None:
        ex = self.conn.execute
        for s in self.starts:
            ex("SELECT id, value FROM t WHERE name >= ? ORDER BY name LIMIT 100", (s,)).fetchall()


class SmallTransactions(_Base):
    """100 transactions of 10 rows each."""

    def time_small_transactions(self, store: str, journal: str, sync: str) -> None:
        conn = self.conn
        for j in range(100):
            with conn:
                conn.executemany("INSERT INTO t VALUES(?, ?, ?, ?)",
                                 [(ROWS + j * 10 + i, "t", 0.5, "y") for i in range(10)])
