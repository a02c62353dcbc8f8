"""Crash tests: real worker processes, killed with SIGKILL mid-work.

One container ages through every test: workers of the file workload
(:mod:`cartridge.testing.workloads.files`) commit deterministic batches and
announce the phase they are in (``begin k``, ``commit k``, ``ack k``); the
crash harness kills each one inside a seeded choice of phase, at its start or
some Python calls into it (inside the batch's writes, inside the commit).
The container is then reopened read-only and must

* pass ``verify()``, and
* hold exactly the model after the last acknowledged batch, or after the
  batch in flight (its commit may have become durable just before the kill).

Whichever state matched becomes the model, and the next worker starts at the
batch after it, so the container accumulates hundreds of commits, overwrites,
deletes and reused pages.

Scale (``CARTRIDGE_TEST_SCALE``): 50 kills for the mixed workload, 5 for 8 MB
writes that keep growing the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cartridge.testing import scaled
from cartridge.testing.workloads.files import BIG, Ageing

pytestmark = pytest.mark.slow

SEED = 20240611


def test_sigkill_during_mixed_batches(tmp_path: Path) -> None:
    """Kill a worker mid-work again and again; every reopen shows a committed state."""
    ageing = Ageing(tmp_path / "ageing.cart", "mixed", SEED)
    ageing.run(scaled(50))
    print(ageing.summary())
    assert ageing.kills and ageing.mid_batch > 0, (
        f"no kill landed inside a batch, so the test did not test much: {ageing.summary()}")
    assert ageing.batches > ageing.kills, f"the workers hardly committed: {ageing.summary()}"
    assert len(ageing.model.files) > 5, "the container never filled up"


def test_sigkill_while_growing(tmp_path: Path) -> None:
    """Kill a worker while 8 MB writes keep extending the container file."""
    ageing = Ageing(tmp_path / "growing.cart", "growth", SEED)
    ageing.run(scaled(5), batches=(2, 4))
    print(ageing.summary(), "file sizes", ageing.sizes)
    assert ageing.mid_batch > 0, f"no kill landed inside a batch: {ageing.summary()}"
    assert ageing.sizes[-1] >= 4 * BIG, f"the container file hardly grew: {ageing.sizes}"
