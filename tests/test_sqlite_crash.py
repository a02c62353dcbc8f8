"""Crash test for SQLite inside a container.

Workers (``python -m cartridge.testing.workloads.sqlite crash``) run SQLite
transactions through the cartridge VFS, announcing ``txn k`` before each and
``ack k`` after its ``COMMIT`` returns; the crash harness kills each one in a
seeded choice of transaction (or while it opens the database, recovering a
hot journal), at its start or some Python calls into it, that is inside the
VFS's reads, writes and syncs.  The test then reopens the database and
requires ``PRAGMA integrity_check`` to be ``ok``, the container to verify, and
the database to hold exactly transactions ``0..last ack`` or ``0..last ack +
1`` (the one in flight), each whole (the running total equals the sum of the
keys).  The next worker continues after whatever was found, so one database
ages through every kill.  Rollback-journal (DELETE) and WAL modes, both with
``synchronous=FULL`` so that an acknowledged transaction must survive.

Scale (``CARTRIDGE_TEST_SCALE``): 12 kills per mode.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import cartridge
from cartridge import sqlite
from cartridge.testing import scaled
from cartridge.testing.crash import KillPoint, WorkerPool, kill_depth, worker_argv
from cartridge.testing.workloads.sqlite import payload

pytestmark = pytest.mark.slow

KILLS = scaled(12)
SEED = 20240611


def _plan(rng: random.Random, created: bool) -> KillPoint:
    """Where the next worker dies: in its open (once the database was created: a kill
    in the first open may leave no database) or in one of its first transactions."""
    calls = kill_depth(rng, max_log2=12)
    if rng.random() < 0.15 and created:
        return KillPoint("open", 1, calls)
    return KillPoint("txn", rng.randint(1, 20), calls)


def _check(cart: Path, last_ack: int) -> int:
    conn = sqlite.connect(cart, "/db/app.db", create=False)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        keys = [k for (k,) in conn.execute("SELECT k FROM rows ORDER BY k")]
        top = keys[-1] if keys else -1
        assert top in (last_ack, last_ack + 1), f"acked {last_ack}, found up to {top}"
        assert keys == list(range(top + 1))
        (total,) = conn.execute("SELECT s FROM total WHERE id = 1").fetchone()
        assert total == sum(keys)
        for k, v in conn.execute("SELECT k, v FROM rows WHERE k % 97 = 0"):
            assert v == payload(k)
    finally:
        conn.close()
    with cartridge.open(cart, "r") as c:
        assert c.verify().ok
    return top


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_sigkill_keeps_exactly_the_acknowledged_transactions(tmp_path: Path, mode: str) -> None:
    rng = random.Random(SEED + (mode == "wal"))
    cart = tmp_path / "crash.cart"
    top = -1
    created = False
    argv = worker_argv("cartridge.testing.workloads.sqlite", "crash", str(cart), "/db/app.db",
                       mode)
    with WorkerPool(argv) as pool:
        for _ in range(KILLS):
            killed = pool.start(str(top + 1)).run_to(_plan(rng, created))
            created = created or killed.last.name != "open"
            acks = killed.tags("ack")
            top = _check(cart, int(acks[-1]) if acks else top)
    assert top > 0, "no transaction ever committed"
