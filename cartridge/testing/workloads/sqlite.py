"""The SQLite workload: child processes for the SQLite crash and two-process tests.

``python -m cartridge.testing.workloads.sqlite crash CART DB MODE``: speaks the
crash harness's phase protocol.  Takes its first transaction number from
``START``, opens ``DB`` inside ``CART`` through the cartridge VFS in journal
mode ``MODE`` (phase ``open -``), then runs transactions ``start, start+1,
...`` forever, announcing ``txn k`` before each and ``ack k`` after its
``COMMIT`` returns.  Transaction ``k`` inserts row ``k`` (a payload
of deterministic, varying size, so pages split and overflow) and adds ``k`` to
a running total in another table, so a half-applied transaction shows.

``python -m cartridge.testing.workloads.sqlite writer CART DB N``: insert ``N`` rows, one
transaction each, printing ``ack k``; then print ``done``.

``python -m cartridge.testing.workloads.sqlite hold CART DB SECONDS``: take a write lock on ``DB``
(``BEGIN IMMEDIATE`` plus an insert), print ``locked``, sleep, commit, print
``released``.
"""

from __future__ import annotations

import sys
import time

from cartridge import sqlite
from cartridge.testing.crash import Phases


def payload(k: int) -> bytes:
    """Row ``k``'s payload: 10 bytes to ~9 KB (overflow pages), deterministic."""
    size = 10 + (k * 7919) % 9000
    return bytes((k + i) & 0xFF for i in range(size))


def setup(conn, mode: str) -> None:
    if mode == "wal":
        conn.execute("PRAGMA journal_mode=WAL")
    else:
        conn.execute(f"PRAGMA journal_mode={mode}")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS rows(k INTEGER PRIMARY KEY, v BLOB)")
    conn.execute("CREATE INDEX IF NOT EXISTS rows_v ON rows(length(v))")
    conn.execute("CREATE TABLE IF NOT EXISTS total(id INTEGER PRIMARY KEY, s INTEGER)")
    conn.execute("INSERT OR IGNORE INTO total VALUES(1, 0)")


def crash(cart: str, db: str, mode: str) -> None:
    """Run transactions until killed; see the module docstring."""
    phases = Phases()
    start = phases.start()
    if start is None:
        return  # the parent no longer needs this worker
    phases("open")
    conn = sqlite.connect(cart, db, timeout=10)
    setup(conn, mode)
    k = int(start)
    while True:
        phases("txn", k)
        with conn:
            conn.execute("INSERT INTO rows VALUES(?, ?)", (k, payload(k)))
            conn.execute("UPDATE total SET s = s + ? WHERE id = 1", (k,))
            if k % 7 == 3:
                conn.execute("DELETE FROM rows WHERE k = ?", (k - 3,))
                conn.execute("INSERT INTO rows VALUES(?, ?)", (k - 3, payload(k - 3)))
        phases("ack", k)
        k += 1


def writer(cart: str, db: str, n: int) -> None:
    conn = sqlite.connect(cart, db, timeout=30)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("CREATE TABLE IF NOT EXISTS rows(k INTEGER PRIMARY KEY, v BLOB)")
    print("ready", flush=True)
    for k in range(n):
        with conn:
            conn.execute("INSERT INTO rows VALUES(?, ?)", (k, payload(k)))
        print(f"ack {k}", flush=True)
    conn.close()
    print("done", flush=True)


def hold(cart: str, db: str, seconds: float) -> None:
    conn = sqlite.connect(cart, db, timeout=10)
    conn.execute("CREATE TABLE IF NOT EXISTS rows(k INTEGER PRIMARY KEY, v BLOB)")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO rows VALUES(NULL, x'00')")
    print("locked", flush=True)
    time.sleep(seconds)
    conn.execute("COMMIT")
    print("released", flush=True)
    conn.close()


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "crash":
        crash(sys.argv[2], sys.argv[3], sys.argv[4])
    elif what == "writer":
        writer(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        hold(sys.argv[2], sys.argv[3], float(sys.argv[4]))
