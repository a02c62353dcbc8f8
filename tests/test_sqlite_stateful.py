"""Hypothesis stateful test: a database through the cartridge VFS against the
same statements on a plain in-memory SQLite database (the model).

Rules insert, update and delete rows (blobs of up to 20 KB, so overflow pages
come and go), commit or roll back explicit transactions and savepoints,
switch journal modes, checkpoint, vacuum, and close and reopen the
connection (sometimes the whole container).  After every step the two
databases hold the same rows; ``integrity_check`` passes at reopen.

Scale (``CARTRIDGE_TEST_SCALE``): 40 examples.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import apsw
from hypothesis import HealthCheck
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cartridge import sqlite
from cartridge.testing import hypothesis_settings

MODES = ["delete", "truncate", "persist", "memory", "wal", "off"]


class SQLiteMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp()
        self.cart = os.path.join(self.tmp, "s.cart")
        self.model = apsw.Connection(":memory:")
        self.model.execute("CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)")
        self.conn = sqlite.connect(self.cart, "/db/s.db")
        self.conn.execute("CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)")
        self.in_txn = False
        self.savepoints = 0
        self.mode = "delete"

    def both(self, sql: str, args: tuple = ()) -> None:
        self.model.execute(sql, args)
        self.conn.execute(sql, args)

    @rule(k=st.integers(0, 300), size=st.integers(0, 20_000), byte=st.integers(0, 255))
    def upsert(self, k: int, size: int, byte: int) -> None:
        self.both("INSERT OR REPLACE INTO t VALUES(?, ?)", (k, bytes([byte]) * size))

    @rule(lo=st.integers(0, 300), width=st.integers(0, 50))
    def delete_range(self, lo: int, width: int) -> None:
        self.both("DELETE FROM t WHERE k BETWEEN ? AND ?", (lo, lo + width))

    @rule(n=st.integers(1, 200), size=st.integers(1, 3000))
    def bulk(self, n: int, size: int) -> None:
        self.both("INSERT OR REPLACE INTO t SELECT 1000 + value, zeroblob(?) FROM "
                  "(WITH RECURSIVE c(value) AS (SELECT 0 UNION ALL SELECT value + 1 FROM c "
                  "WHERE value < ?) SELECT value FROM c)", (size, n - 1))

    @precondition(lambda self: not self.in_txn)
    @rule()
    def begin(self) -> None:
        self.both("BEGIN")
        self.in_txn = True

    @precondition(lambda self: self.in_txn)
    @rule(commit=st.booleans())
    def end(self, commit: bool) -> None:
        # With journal_mode=OFF SQLite's ROLLBACK "behaves in an undefined way"
        # (its documentation): on a plain file as in the container.
        commit = commit or self.mode == "off"
        self.both("COMMIT" if commit else "ROLLBACK")
        self.in_txn = False
        self.savepoints = 0

    @precondition(lambda self: self.in_txn)
    @rule()
    def savepoint(self) -> None:
        self.savepoints += 1
        self.both(f"SAVEPOINT s{self.savepoints}")

    @precondition(lambda self: self.savepoints > 0)
    @rule(release=st.booleans())
    def end_savepoint(self, release: bool) -> None:
        name = f"s{self.savepoints}"
        if release or self.mode == "off":  # no rollback without a journal (see end)
            self.both(f"RELEASE {name}")
        else:
            self.both(f"ROLLBACK TO {name}")
            self.both(f"RELEASE {name}")
        self.savepoints -= 1

    @precondition(lambda self: not self.in_txn)
    @rule(mode=st.sampled_from(MODES))
    def journal_mode(self, mode: str) -> None:
        got = self.conn.execute(f"PRAGMA journal_mode={mode}").fetchone()[0]
        assert got == mode
        self.mode = mode

    @precondition(lambda self: not self.in_txn)
    @rule(vacuum=st.booleans())
    def maintenance(self, vacuum: bool) -> None:
        if vacuum:
            self.conn.execute("VACUUM")
        else:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    @precondition(lambda self: not self.in_txn)
    @rule(copy=st.booleans())
    def reopen(self, copy: bool) -> None:
        self.conn.close()
        if copy:  # a freeze-style copy of an idle container
            other = os.path.join(self.tmp, "copy.cart")
            shutil.copyfile(self.cart, other)
            os.replace(other, self.cart)
        self.conn = sqlite.connect(self.cart, "/db/s.db")
        assert self.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        self.mode = self.conn.execute("PRAGMA journal_mode").fetchone()[0]

    @invariant()
    def same_rows(self) -> None:
        q = "SELECT k, length(v), hex(substr(v, 1, 8)), hex(substr(v, -8)) FROM t ORDER BY k"
        assert self.conn.execute(q).fetchall() == self.model.execute(q).fetchall()

    def teardown(self) -> None:
        self.conn.close()
        self.model.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


SQLiteMachine.TestCase.settings = hypothesis_settings(
    40,
    stateful_step_count=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestSQLiteStateful = SQLiteMachine.TestCase
