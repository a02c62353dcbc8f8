"""Crash test for arrays: a worker commits array batches and is SIGKILLed at random.

After each kill the container must pass ``verify()`` and hold exactly the
arrays of the last acknowledged batch or of the batch in flight (see
``array_crash_worker.py``); the worker itself checks that the zero-copy views
it holds never change while it commits.  The container ages through all kills.

Scale: ``CARTRIDGE_ARRAY_CRASH_KILLS`` (default 6); ``CARTRIDGE_CRASH_SEED``.
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
from array_crash_worker import Model, apply_batch, model_snapshot, snapshot

import cartridge

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("array_crash_worker.py")
KILLS = int(os.environ.get("CARTRIDGE_ARRAY_CRASH_KILLS", "6"))
SEED = int(os.environ.get("CARTRIDGE_CRASH_SEED", "20240611"))


def run_until_killed(cart: Path, start: int, delay: float) -> tuple[list[str], int | None]:
    """Start a worker at batch ``start``, SIGKILL it ``delay`` s after its first line."""
    proc = subprocess.Popen([sys.executable, str(WORKER), str(cart), str(SEED), str(start)],
                            stdout=subprocess.PIPE, text=True, bufsize=1)
    lines: list[str] = []
    deadline = None
    try:
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            timeout = 120.0 if deadline is None else deadline - now
            ready, _, _ = select.select([proc.stdout], [], [], timeout)
            if not ready:
                if deadline is None:
                    raise AssertionError("worker printed nothing in 120 s")
                break
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if deadline is None:
                deadline = time.monotonic() + delay
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        lines += [ln.strip() for ln in proc.stdout.read().splitlines()]
        proc.stdout.close()
    return lines, proc.returncode


def test_kill_while_committing_arrays(tmp_path):
    rng = random.Random(SEED)
    cart = tmp_path / "arrays.cart"
    model = Model()
    next_batch = 0
    acked_total = 0
    for _ in range(KILLS):
        lines, _code = run_until_killed(cart, next_batch, rng.uniform(0.05, 2.0))
        assert "VIEW CHANGED" not in lines, "a zero-copy view changed under a commit"
        acks = [int(ln.split()[1]) for ln in lines if ln.startswith("ack")]
        begun = [int(ln.split()[1]) for ln in lines if ln.startswith("begin")]
        acked_total += len(acks)
        for k in acks:
            apply_batch(model, SEED, k)
        with cartridge.open(cart, "r") as c:
            report = c.verify()
            assert report.ok, report.problems
            got = snapshot(c)
        expected = model_snapshot(model)
        if got != expected:
            in_flight = begun[-1] if begun and (not acks or begun[-1] > acks[-1]) else None
            assert in_flight is not None, "contents differ from the last acknowledged batch"
            apply_batch(model, SEED, in_flight)
            assert got == model_snapshot(model), f"contents match neither batch {in_flight - 1}" \
                f" nor {in_flight}"
            next_batch = in_flight + 1
        elif acks:
            next_batch = acks[-1] + 1  # a batch in flight did not become durable: redo it
    assert acked_total > KILLS  # the workers really committed between kills
