"""Crash test for arrays: a worker commits array batches and is SIGKILLed inside them.

Workers of :mod:`cartridge.testing.workloads.arrays` announce ``begin k``,
``commit k`` and ``ack k``; the crash harness kills each one in a seeded
choice of phase and depth.  After each kill the container must pass
``verify()`` and hold exactly the arrays of the last acknowledged batch or of
the batch in flight; the worker itself checks that the zero-copy views it
holds never change while it commits.  The container ages through all kills.

Scale (``CARTRIDGE_TEST_SCALE``): 6 kills.
"""

from __future__ import annotations

import random

import pytest

import cartridge
from cartridge.testing import scaled
from cartridge.testing.crash import KillPoint, WorkerPool, kill_depth, worker_argv
from cartridge.testing.workloads.arrays import Model, apply_batch, model_snapshot, snapshot

pytestmark = pytest.mark.slow

KILLS = scaled(6)
SEED = 20240611


def test_kill_while_committing_arrays(tmp_path):
    rng = random.Random(SEED)
    cart = tmp_path / "arrays.cart"
    model = Model()
    next_batch = 0
    acked_total = 0
    with WorkerPool(worker_argv("cartridge.testing.workloads.arrays", str(cart),
                                str(SEED))) as pool:
        for _ in range(KILLS):
            point = KillPoint(rng.choice(["begin", "commit"]), rng.randint(1, 8), kill_depth(rng))
            killed = pool.start(str(next_batch)).run_to(point)
            acks = [int(k) for k in killed.tags("ack")]
            acked_total += len(acks)
            for k in acks:
                apply_batch(model, SEED, k)
            with cartridge.open(cart, "r") as c:
                report = c.verify()
                assert report.ok, report.problems
                got = snapshot(c)
            expected = model_snapshot(model)
            if got != expected:
                in_flight = int(killed.last.tag) if killed.last.name != "ack" else None
                assert in_flight is not None, "contents differ from the last acknowledged batch"
                apply_batch(model, SEED, in_flight)
                assert got == model_snapshot(model), (
                    f"contents match neither batch {in_flight - 1} nor {in_flight}")
                next_batch = in_flight + 1
            elif acks:
                next_batch = acks[-1] + 1  # a batch in flight did not become durable: redo it
    assert acked_total > KILLS  # the workers really committed between kills
