"""Crash tests: real worker processes, killed with SIGKILL mid-work.

One container ages through every test: a worker (``crash_worker.py``) opens it
read-write and commits deterministic batches, printing ``begin k`` before and
``ack k`` after each; the test kills it at a random moment, then reopens the
container read-only and requires

* ``verify()`` to pass, and
* the contents (every file's bytes, and the directories) to equal the model
  after the last acknowledged batch, or after the batch in flight (its commit
  may have become durable just before the kill).

The model is a :class:`crash_worker.DictModel` on which the test replays the
same batches.  Whichever state matched becomes the model, and the next worker
starts at the batch after it, so the container accumulates hundreds of
commits, overwrites, deletes and reused pages.

Scale: ``CARTRIDGE_CRASH_KILLS`` (default 50) kills for the mixed workload,
``CARTRIDGE_CRASH_GROWTH_KILLS`` (default 5) for 8 MB writes that keep
growing the file; ``CARTRIDGE_CRASH_SEED`` picks the batches.  Starting a
worker costs 1-2 s of imports (numba), so workers are started ahead of need
and wait on stdin for their start batch (``START_BATCH`` = ``-``).  The
children inherit the environment, and with it ``NUMBA_CACHE_DIR``.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from crash_worker import BIG, DictModel, apply_batch, describe_difference, snapshot

import cartridge

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("crash_worker.py")
SEED = int(os.environ.get("CARTRIDGE_CRASH_SEED", "20240611"))
#: Workers kept importing while the current one runs.
SPARE_WORKERS = 2
#: Seconds a worker may take to import, open and print its first line.
START_TIMEOUT = 120.0


class Workers:
    """``crash_worker.py`` processes started ahead of need, fed their start batch on stdin."""

    def __init__(self, cart: Path, seed: int, profile: str) -> None:
        self.argv = [sys.executable, str(WORKER), str(cart), str(seed), "-", profile]
        self.spare = [self._spawn() for _ in range(SPARE_WORKERS)]

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, bufsize=0, env=dict(os.environ))

    def start(self, batch: int) -> subprocess.Popen:
        """Hand ``batch`` to the oldest spare worker and start another spare."""
        proc = self.spare.pop(0)
        self.spare.append(self._spawn())
        try:
            proc.stdin.write(f"{batch}\n".encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass  # it died while importing; reading its output will say why
        return proc

    def close(self) -> None:
        """Let the spares exit (EOF on stdin), killing any that do not."""
        for proc in self.spare:
            proc.stdin.close()
        for proc in self.spare:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        self.spare = []


def _first_line(proc: subprocess.Popen, timeout: float) -> tuple[str, bytes]:
    """Wait for the first complete stdout line; return it and any bytes after it."""
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            proc.kill()
            proc.wait()
            pytest.fail(f"worker printed nothing for {timeout} s; stderr:\n"
                        f"{proc.stderr.read().decode(errors='replace')}")
        chunk = os.read(fd, 65536)
        if not chunk:
            proc.wait()
            pytest.fail(f"worker exited with {proc.returncode} before its first batch; "
                        f"stderr:\n{proc.stderr.read().decode(errors='replace')}")
        buf += chunk
    line, rest = buf.split(b"\n", 1)
    return line.decode(), rest


@dataclass
class Outcome:
    """What one killed worker reported."""

    last_ack: int
    """Last batch whose commit returned (``start - 1`` if none)."""
    in_flight: int | None
    """Batch begun but not acknowledged when the kill landed, if any."""


def _kill_during_work(workers: Workers, start: int, delay: float) -> Outcome:
    """Start a worker at ``start``, SIGKILL it ``delay`` s after its first ``begin``."""
    proc = workers.start(start)
    first, rest = _first_line(proc, START_TIMEOUT)
    assert first == f"begin {start}", f"worker's first line is {first!r}"
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rest += proc.stdout.read()
    err = proc.stderr.read().decode(errors="replace")
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, (
        f"worker exited with {proc.returncode} before the kill; stderr:\n{err}")
    # The last line may be cut short by the kill; only complete lines count.
    lines = (first + "\n" + rest.decode()).split("\n")[:-1]
    last_ack, in_flight = start - 1, None
    for line in lines:
        expected = f"ack {in_flight}" if in_flight is not None else f"begin {last_ack + 1}"
        assert line == expected, f"worker printed {line!r} where {expected!r} was due: {lines}"
        if in_flight is None:
            in_flight = last_ack + 1
        else:
            last_ack, in_flight = in_flight, None
    return Outcome(last_ack, in_flight)


@dataclass
class Ageing:
    """The container under test, its model, and what the kills have hit so far."""

    path: Path
    profile: str
    key: bytes | None = None
    """Key of an encrypted container (the workers get it from CARTRIDGE_CRASH_KEY)."""
    model: DictModel = field(default_factory=DictModel)
    next_batch: int = 0
    kills: int = 0
    mid_batch: int = 0
    """Kills that landed between a ``begin`` and its ``ack``."""
    unacked_durable: int = 0
    """Of those, kills after the commit was durable but before the ``ack``."""
    batches: int = 0
    sizes: list[int] = field(default_factory=list)
    """Size of the container file after each kill."""

    def check(self, outcome: Outcome) -> None:
        """Reopen the container read-only and require one of the allowed states."""
        for batch in range(self.next_batch, outcome.last_ack + 1):
            apply_batch(self.model, SEED, batch, self.profile)
        candidates = [(outcome.last_ack, self.model)]
        if outcome.in_flight is not None:
            after = self.model.copy()
            apply_batch(after, SEED, outcome.in_flight, self.profile)
            candidates.append((outcome.in_flight, after))
        where = (f"kill {self.kills + 1} (seed {SEED}, profile {self.profile}, batches "
                 f"{self.next_batch}..{outcome.last_ack}, in flight {outcome.in_flight}, "
                 f"container {self.path})")
        with cartridge.open(self.path, "r", key=self.key) as cart:
            report = cart.verify()
            assert report.ok, f"{where}: verify() failed: {report.problems}"
            got = snapshot(cart)
        matched = [(b, m) for b, m in candidates if got == (m.files, frozenset(m.dirs))]
        if not matched:
            diffs = " | ".join(f"vs after batch {b}: {describe_difference(got, (m.files, m.dirs))}"
                               for b, m in candidates)
            pytest.fail(f"{where}: contents match no allowed state: {diffs}")
        batch, model = matched[0]
        self.kills += 1
        self.batches += batch + 1 - self.next_batch
        self.mid_batch += outcome.in_flight is not None
        self.unacked_durable += outcome.in_flight is not None and batch == outcome.in_flight
        self.model, self.next_batch = model, batch + 1
        self.sizes.append(os.path.getsize(self.path))

    def run(self, kills: int, window: tuple[float, float]) -> None:
        """Kill ``kills`` workers, each ``uniform(*window)`` s after it began."""
        rng = random.Random(SEED)
        workers = Workers(self.path, SEED, self.profile)
        try:
            for _ in range(kills):
                outcome = _kill_during_work(workers, self.next_batch, rng.uniform(*window))
                self.check(outcome)
        finally:
            workers.close()

    def summary(self) -> str:
        """One line for assertion messages."""
        return (f"{self.kills} kills, {self.batches} batches committed, {self.mid_batch} "
                f"mid-batch kills ({self.unacked_durable} after a durable but unacked commit)")


def _scale(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def test_sigkill_during_mixed_batches(tmp_path: Path) -> None:
    """Kill a worker mid-work again and again; every reopen shows a committed state."""
    ageing = Ageing(tmp_path / "ageing.cart", "mixed")
    ageing.run(_scale("CARTRIDGE_CRASH_KILLS", 50), (0.01, 0.4))
    print(ageing.summary())
    assert ageing.kills and ageing.mid_batch > 0, (
        f"no kill landed inside a batch, so the test did not test much: {ageing.summary()}")
    assert ageing.batches > ageing.kills, f"the workers hardly committed: {ageing.summary()}"
    assert len(ageing.model.files) > 5, "the container never filled up"


def test_sigkill_while_growing(tmp_path: Path) -> None:
    """Kill a worker while 8 MB writes keep extending the container file."""
    ageing = Ageing(tmp_path / "growing.cart", "growth")
    ageing.run(_scale("CARTRIDGE_CRASH_GROWTH_KILLS", 5), (0.2, 1.5))
    print(ageing.summary(), "file sizes", ageing.sizes)
    assert ageing.mid_batch > 0, f"no kill landed inside a batch: {ageing.summary()}"
    assert ageing.sizes[-1] >= 4 * BIG, f"the container file hardly grew: {ageing.sizes}"
