"""The snapshot workload: snapshot, restore and compaction steps, committed until killed.

``python -m cartridge.testing.workloads.snapshots CONTAINER SEED`` opens the
container read-write, takes its first step number from the crash harness's
``START``, then for k = start, start+1, ... announces a phase named after the
kind of step k (``compact k``, ``snapshot k``, ``restore k``,
``delete_snapshot k`` or ``batch k``; see :func:`choose`), performs it and
announces ``ack k`` once it is durable.  A compaction also announces
``compact.step k`` after each of its steps (through ``compact(callback=)``),
so a kill can land between two of its commits.  Each step changes the
visible state in one commit or not at all (compaction and snapshot make
several commits, but only one of them changes what a reader sees), so after a
kill the container must equal the state before or after the step in flight.
"""

from __future__ import annotations

import random
import sys

from cartridge.testing.crash import Phases

NAMES = [f"/d{i % 4}/f{i}" for i in range(24)]


def choose(seed: int, k: int, snaps: list[str]) -> tuple:
    """Step ``k`` as data: the same on the worker and in the test's model."""
    rng = random.Random(seed * 1_000_003 + k)
    r = rng.random()
    if r < 0.30:
        return ("compact", rng.choice([None, 8, 64]))
    if r < 0.42 and len(snaps) < 3:
        return ("snapshot", f"s{k}")
    if r < 0.50 and snaps:
        return ("restore", rng.choice(sorted(snaps)))
    if r < 0.58 and snaps:
        return ("delete_snapshot", rng.choice(sorted(snaps)))
    writes = [(rng.choice(NAMES), rng.randrange(1 << 30), rng.choice([100, 5000, 70_000, 300_000]))
              for _ in range(rng.randint(1, 4))]
    deletes = rng.sample(NAMES, rng.randint(0, 4))
    return ("batch", writes, deletes)


def payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def apply_model(step: tuple, files: dict, snaps: dict) -> tuple[dict, dict]:
    """The effect of ``step`` on (files, snapshots), as new dicts."""
    files, snaps = dict(files), {k: dict(v) for k, v in snaps.items()}
    kind = step[0]
    if kind == "snapshot":
        snaps[step[1]] = dict(files)
    elif kind == "restore":
        files = dict(snaps[step[1]])
    elif kind == "delete_snapshot":
        del snaps[step[1]]
    elif kind == "batch":
        for name in step[2]:
            files.pop(name, None)
        for name, seed, size in step[1]:
            files[name] = payload(seed, size)
    return files, snaps


def apply_container(step: tuple, cart, phases: Phases, k: int) -> None:
    """Perform step ``k`` on ``cart``; compaction steps are announced to ``phases``."""
    kind = step[0]
    if kind == "compact":
        cart.compact(max_pages=step[1],
                     callback=phases.callback("compact.step", k))
    elif kind == "snapshot":
        cart.snapshot(step[1])
    elif kind == "restore":
        cart.restore(step[1])
    elif kind == "delete_snapshot":
        cart.delete_snapshot(step[1])
    else:
        for name in step[2]:
            if cart.exists(name):
                cart.delete(name)
        for name, seed, size in step[1]:
            cart.write(name, payload(seed, size))
        cart.commit()


def main() -> None:
    """Run steps until killed; see the module docstring."""
    import cartridge

    path, seed = sys.argv[1], int(sys.argv[2])
    phases = Phases()
    k = phases.start_number()
    if k is None:
        return  # the parent no longer needs this worker
    cart = cartridge.open(path)
    while True:
        step = choose(seed, k, [s.name for s in cart.snapshots()])
        phases(step[0], k)
        apply_container(step, cart, phases, k)
        phases("ack", k)
        k += 1


if __name__ == "__main__":
    main()
