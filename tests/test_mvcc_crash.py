"""Crash test: SIGKILL during compaction, snapshot, restore and delete_snapshot.

A worker (``mvcc_crash_worker.py``) runs deterministic steps on one ageing
container (file batches, snapshots, restores, snapshot deletions and
compactions in bounded and unbounded steps) and is killed at a random moment.
The container must then pass ``verify()`` (which also checks that every
snapshot's pages are kept) and equal the model before or after the step in
flight: files and every snapshot's files.  Scale with CARTRIDGE_MVCC_CRASH_KILLS
(default 12) and CARTRIDGE_MVCC_CRASH_SEED.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mvcc_crash_worker import apply_model, choose

import cartridge

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("CARTRIDGE_MVCC_CRASH_KILLS", "12"))
SEED = int(os.environ.get("CARTRIDGE_MVCC_CRASH_SEED", "5150"))
WORKER = Path(__file__).with_name("mvcc_crash_worker.py")


def _state(path: Path) -> tuple[dict, dict]:
    def files(cart) -> dict:
        return {p: cart.read(p) for p, i in cart.walk("/") if i.kind == "file"}

    with cartridge.open(path, "r") as r:
        report = r.verify()
        assert report.ok, report.problems
        names = [s.name for s in r.snapshots()]
        current = files(r)
    snaps = {}
    for name in names:
        with cartridge.open(path, "r", snapshot=name) as s:
            snaps[name] = files(s)
    return current, snaps


def test_kill_during_compaction_and_snapshots(tmp_path):
    path = tmp_path / "crash.cart"
    cartridge.create(path).close()
    rng = random.Random(SEED)
    files: dict = {}
    snaps: dict = {}
    k = 0
    kinds_in_flight = []
    for _ in range(KILLS):
        proc = subprocess.Popen([sys.executable, str(WORKER), str(path), str(SEED), str(k)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 1.5))
        os.kill(proc.pid, signal.SIGKILL)
        out = proc.stdout.read()  # what readline buffered stays in the same object
        proc.wait(timeout=60)
        acked = [int(line.split()[1]) for line in out.splitlines() if line.startswith("ack")]
        begun = [int(line.split()[1]) for line in out.splitlines() if line.startswith("begin")]
        for step_k in acked:
            assert step_k == k
            files, snaps = apply_model(choose(SEED, k, sorted(snaps)), files, snaps)
            k += 1
        got = _state(path)
        if begun and begun[-1] == k:  # a step was in flight: before or after it
            step = choose(SEED, k, sorted(snaps))
            kinds_in_flight.append(step[0])
            after = apply_model(step, files, snaps)
            if got == after:
                files, snaps = after
                k += 1
                continue
        assert got == (files, snaps), f"state after the kill matches neither side of step {k}"
    assert k > KILLS  # the workers made progress
    assert "compact" in kinds_in_flight or KILLS < 8
