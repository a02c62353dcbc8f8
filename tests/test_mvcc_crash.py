"""Crash test: SIGKILL during compaction, snapshot, restore and delete_snapshot.

Workers of :mod:`cartridge.testing.workloads.snapshots` run deterministic
steps on one ageing container (file batches, snapshots, restores, snapshot
deletions and compactions in bounded and unbounded steps), announcing each
step's kind as a phase and each compaction step through ``compact(callback=)``.
The crash harness kills them in turn inside each kind of step (at its start,
between two compaction commits, or some Python calls into the work), so kills
land inside compactions on any machine, loaded or not.  The container must
then pass ``verify()`` (which also checks that every snapshot's pages are
kept) and equal the model before or after the step in flight: files and every
snapshot's files.

Scale (``CARTRIDGE_TEST_SCALE``): 12 kills.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import cartridge
from cartridge.testing import scaled
from cartridge.testing.crash import KillPoint, WorkerPool, kill_depth, worker_argv
from cartridge.testing.workloads.snapshots import apply_model, choose

pytestmark = pytest.mark.slow

KILLS = scaled(12)
SEED = 5150
#: The phase each kill aims at, in turn (a compaction first, so any scale has one).
TARGETS = ["compact", "batch", "compact.step", "snapshot", "restore", "compact",
           "delete_snapshot", "compact.step"]
#: A kill whose phase has not come after this many announcements lands there.
PATIENCE = 60


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
    with WorkerPool(worker_argv("cartridge.testing.workloads.snapshots", str(path),
                                str(SEED))) as pool:
        for i in range(KILLS):
            point = KillPoint(TARGETS[i % len(TARGETS)], rng.randint(1, 2),
                              kill_depth(rng, at_start=0.3, max_log2=13),
                              within=PATIENCE)
            killed = pool.start(str(k)).run_to(point)
            for step_k in killed.tags("ack"):
                assert int(step_k) == k
                files, snaps = apply_model(choose(SEED, k, sorted(snaps)), files, snaps)
                k += 1
            got = _state(path)
            if killed.last.name != "ack":  # a step was in flight: before or after it
                assert int(killed.last.tag) == k
                step = choose(SEED, k, sorted(snaps))
                kinds_in_flight.append(step[0])
                after = apply_model(step, files, snaps)
                if got == after:
                    files, snaps = after
                    k += 1
                    continue
            assert got == (files, snaps), f"state after the kill matches neither side of step {k}"
    assert k > KILLS  # the workers made progress
    print("kills landed in steps of kind", kinds_in_flight)
    assert "compact" in kinds_in_flight, kinds_in_flight
