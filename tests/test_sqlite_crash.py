"""Crash test for SQLite inside a container.

A child (``sqlite_worker.py crash``) runs SQLite transactions through the
cartridge VFS, printing ``ack k`` after each ``COMMIT`` returns; the test
kills it with SIGKILL at a random moment, reopens the database and requires
``PRAGMA integrity_check`` to be ``ok``, the container to verify, and the
database to hold exactly transactions ``0..last ack`` or ``0..last ack + 1``
(the one in flight), each whole (the running total equals the sum of the keys).
The next child continues after whatever was found, so one database ages
through every kill.  Rollback-journal (DELETE) and WAL modes, both with
``synchronous=FULL`` so that an acknowledged transaction must survive.

Scale: ``CARTRIDGE_SQLITE_CRASH_KILLS`` (default 12 per mode),
``CARTRIDGE_CRASH_SEED``.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlite_worker import payload

import cartridge
from cartridge import sqlite

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("sqlite_worker.py")
KILLS = int(os.environ.get("CARTRIDGE_SQLITE_CRASH_KILLS", "12"))
SEED = int(os.environ.get("CARTRIDGE_CRASH_SEED", "20240611"))


def _run_and_kill(cart: Path, mode: str, start: int, delay: float) -> int:
    """Start a worker at ``start``, kill it ``delay`` s after it is ready; last ack or start-1."""
    proc = subprocess.Popen([sys.executable, str(WORKER), "crash", str(cart), "/db/app.db",
                             mode, str(start)], stdout=subprocess.PIPE, text=True, bufsize=1)
    last = start - 1
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", f"worker failed to start: {line!r}"
        deadline = time.monotonic() + delay
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if ready:
                line = proc.stdout.readline()
                if not line:
                    break
                if line.startswith("ack "):
                    last = int(line.split()[1])
        proc.send_signal(signal.SIGKILL)
        for line in proc.stdout:  # acks printed before the kill landed
            if line.startswith("ack "):
                last = int(line.split()[1])
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the worker died before it was killed"
    return last


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
    for _ in range(KILLS):
        last = _run_and_kill(cart, mode, top + 1, rng.uniform(0.0, 0.6))
        top = _check(cart, last)
    assert top > 0, "no transaction ever committed"
