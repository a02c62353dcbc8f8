"""The SIGKILL harness: kill a worker process *inside* a phase it announced.

Why not a random sleep?  A crash test that kills "somewhere in the next
0.4 s" tests whatever the machine's load lets it hit: on a busy CI runner the
kill lands before the interesting part starts, and an assertion such as "one
kill landed inside a compaction" fails for reasons unrelated to the code.
Here the worker says where it is and the parent decides, from a seeded plan,
where it dies; nothing depends on time.

The protocol (one ASCII line per message, worker stdout / stdin):

* worker: ``READY`` once imported; parent: ``START <arg>`` (the worker's
  start argument, e.g. its first batch number) or EOF (spare not needed).
* worker: ``PHASE <name> <tag>`` at the start of each phase, then it *waits*
  for the reply.  A phase lasts until the next announcement.
* parent: ``GO`` (carry on), or ``GO <n>`` (carry on, but stop *n* Python
  calls into this phase), or no reply at all: it SIGKILLs the worker, which
  is blocked on the read and so dies exactly at the announcement.
* worker, after ``GO <n>``, at the *n*-th Python function call of the phase
  (counted with :func:`sys.setprofile`): ``HELD <name> <tag> <n>``, and waits
  again; the parent kills it there, in the middle of the phase's work (inside
  a commit's page writes, a rekey, a SQLite ``xWrite``...).  If the phase
  ends in fewer calls, the kill lands at the next announcement instead.

The call count is deterministic for given code and inputs, so a seeded plan
replays the same kills on every machine, loaded or not.  The worker side is
:class:`Phases`; the parent side is :class:`Worker` (or :class:`WorkerPool`,
which starts workers ahead of need to hide their imports) with
:class:`KillPoint` and :class:`Killed`.  This module uses the standard
library only, so importing it costs a worker nothing.

Example, worker::

    phases = Phases()
    k = int(phases.start())
    while True:
        phases("commit", k)
        cart.commit()
        phases("ack", k)
        k += 1

and parent::

    with WorkerPool(worker_argv("my.worker", str(path))) as pool:
        killed = pool.start("0").run_to(KillPoint("commit", occurrence=3, calls=500))
        # killed.phases[-1] == Phase("commit", "2") if commit 2 made >= 500 calls
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

__all__ = [
    "KillPoint",
    "Killed",
    "Phase",
    "Phases",
    "Worker",
    "WorkerDied",
    "WorkerPool",
    "count_calls",
    "kill_depth",
    "worker_argv",
]

#: Seconds a worker may take to import and say ``READY`` (numba imports are slow).
START_TIMEOUT = 180.0
#: Seconds between two announcements before the worker is declared hung.
STEP_TIMEOUT = 300.0


# ----------------------------------------------------------------- worker side


class Phases:
    """The worker's end of the protocol: announce phases, obey the parent.

    Takes over file descriptor 1 for the protocol and points the worker's
    ``sys.stdout`` (and fd 1) at stderr, so a stray ``print`` cannot corrupt it.
    """

    def __init__(self) -> None:
        self._out = os.fdopen(os.dup(1), "wb", buffering=0)
        self._in = os.fdopen(os.dup(0), "rb", buffering=0)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def start(self) -> str | None:
        """Say ``READY`` and return the parent's start argument (None: not needed, exit)."""
        self._send("READY")
        line = self._read()
        if line is None:
            return None
        if not line.startswith("START"):
            raise RuntimeError(f"expected START from the crash harness, got {line!r}")
        return line[len("START"):].strip()

    def start_number(self) -> int | None:
        """:meth:`start` for workers whose start argument is the batch number to
        begin at (None: not needed, exit)."""
        start = self.start()
        return None if start is None else int(start)

    def __call__(self, name: str, tag: object = "-") -> None:
        """Announce phase ``name`` (tag: e.g. the batch number) and wait for the go-ahead."""
        sys.setprofile(None)  # a phase armed with GO <n> ends here
        tag = str(tag)
        if not name or not tag or " " in name + tag:
            raise ValueError(f"phase name and tag must be non-empty words: {name!r} {tag!r}")
        self._send(f"PHASE {name} {tag}")
        reply = self._read()
        if reply is None:
            os._exit(0)  # the parent is gone: nobody is left to report to
        if reply != "GO":
            self._arm(name, tag, int(reply.split()[1]))

    def callback(self, name: str, tag: object = "-") -> Callable[..., None]:
        """A ``callback=`` for long operations (``compact``) that announces each step."""
        def announce(*_progress: Any) -> None:
            self(name, tag)
        return announce

    def _arm(self, name: str, tag: str, calls: int) -> None:
        left = calls

        def profile(_frame: Any, event: str, _arg: Any) -> None:
            nonlocal left
            if event != "call":
                return
            left -= 1
            if left <= 0:
                sys.setprofile(None)
                self._send(f"HELD {name} {tag} {calls}")
                self._read()  # the parent kills us while we wait here
                os._exit(0)

        sys.setprofile(profile)

    def _send(self, line: str) -> None:
        self._out.write(line.encode() + b"\n")

    def _read(self) -> str | None:
        buf = b""
        while not buf.endswith(b"\n"):
            byte = self._in.read(1)
            if not byte:
                return None
            buf += byte
        return buf.decode().strip()


def count_calls(fn: Callable[[], Any]) -> int:
    """Python function calls ``fn()`` makes, counted as ``GO <n>`` counts them.

    Lets a test size its kill points: ``calls`` drawn from ``1..count_calls(...)``
    land inside the operation, larger ones after it.
    """
    n = 0

    def profile(_frame: Any, event: str, _arg: Any) -> None:
        nonlocal n
        n += event == "call"

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return n


# ----------------------------------------------------------------- parent side


def kill_depth(rng: random.Random, at_start: float = 0.25, max_log2: float = 14) -> int:
    """A seeded :attr:`KillPoint.calls`: 0 with probability ``at_start``, else
    ``2**uniform(0, max_log2)`` (log-uniform, so short and long phases both get hit)."""
    return 0 if rng.random() < at_start else int(2 ** rng.uniform(0, max_log2))


class WorkerDied(AssertionError):
    """The worker exited, hung or broke the protocol before the planned kill."""


@dataclass(frozen=True, slots=True)
class Phase:
    """One announcement."""

    name: str
    """The phase's name, e.g. ``"commit"``."""
    tag: str
    """What the worker said about it, e.g. the batch number (``"-"`` if nothing)."""


@dataclass(frozen=True, slots=True)
class KillPoint:
    """Where :meth:`Worker.run_to` kills the worker."""

    phase: str
    """Name of the phase to die in."""
    occurrence: int = 1
    """Die in the n-th announcement of that phase (counted from this worker's start)."""
    calls: int = 0
    """0: die at the announcement; n: die n Python calls into the phase (or at the
    next announcement if the phase ends sooner)."""
    within: int | None = None
    """If given, die at this many announcements even if the phase has not come."""


@dataclass(frozen=True, slots=True)
class Killed:
    """What a killed worker announced."""

    phases: tuple[Phase, ...]
    """Every phase announced, in order; the last is the one the kill landed in."""
    calls: int
    """Python calls the last phase had made when the kill landed (0: at its start)."""

    @property
    def last(self) -> Phase:
        """The phase the worker died in."""
        return self.phases[-1]

    def tags(self, name: str) -> list[str]:
        """Tags of every announcement of phase ``name``, in order."""
        return [p.tag for p in self.phases if p.name == name]


def worker_argv(module: str, *args: str) -> list[str]:
    """``python -m module args...`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


class Worker:
    """A worker process speaking the phase protocol (it inherits the environment)."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self._stderr: BinaryIO = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, bufsize=0, env=env)
        assert self.proc.stdin is not None and self.proc.stdout is not None  # both PIPE
        self._stdin: IO[bytes] = self.proc.stdin
        self._stdout: IO[bytes] = self.proc.stdout
        self._buf = b""
        self.started = False

    def start(self, arg: str = "") -> Worker:
        """Wait for ``READY`` and hand the worker its start argument."""
        line = self._readline(START_TIMEOUT)
        if line != "READY":
            self._fail(f"said {line!r} instead of READY")
        self._write(f"START {arg}")
        self.started = True
        return self

    def run_to(self, point: KillPoint) -> Killed:
        """Answer announcements until ``point``, SIGKILL the worker there, report."""
        seen: list[Phase] = []
        count = 0
        armed = False
        while True:
            line = self._readline(STEP_TIMEOUT)
            word, _, rest = line.partition(" ")
            if word == "HELD" and armed:
                self._kill()
                return Killed(tuple(seen), int(rest.split()[2]))
            if word != "PHASE":
                self._fail(f"sent {line!r} (expected PHASE or, when armed, HELD)")
            name, _, tag = rest.partition(" ")
            seen.append(Phase(name, tag))
            if armed:  # the armed phase ended before its n-th call: die here
                self._kill()
                return Killed(tuple(seen), 0)
            if name == point.phase:
                count += 1
                if count == point.occurrence:
                    if point.calls <= 0:
                        self._kill()
                        return Killed(tuple(seen), 0)
                    self._write(f"GO {point.calls}")
                    armed = True
                    continue
            if point.within is not None and len(seen) >= point.within:
                self._kill()
                return Killed(tuple(seen), 0)
            self._write("GO")

    def stderr(self) -> str:
        """Everything the worker wrote to stderr so far."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def close(self) -> None:
        """Let an unstarted worker exit (EOF on stdin), kill it if it does not; tidy up."""
        if self._stdout.closed:
            return
        if self.proc.returncode is None:
            self._stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stdin.close()
        self._stdout.close()
        self._stderr.close()

    def _kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        if self.proc.returncode != -signal.SIGKILL:
            self._fail(f"exited with {self.proc.returncode} before the kill")
        self.close()

    def _write(self, line: str) -> None:
        try:
            self._stdin.write(line.encode() + b"\n")
        except BrokenPipeError:
            self._fail("closed its stdin")

    def _readline(self, timeout: float) -> str:
        fd = self._stdout.fileno()
        while b"\n" not in self._buf:
            if not select.select([fd], [], [], timeout)[0]:
                self.proc.kill()
                self._fail(f"said nothing for {timeout} s")
            chunk = os.read(fd, 4096)
            if not chunk:
                self.proc.wait()
                self._fail(f"exited with {self.proc.returncode}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def _fail(self, what: str) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        self.proc.wait()
        err = self.stderr()
        self.close()
        raise WorkerDied(f"worker {' '.join(self.argv[2:])} {what}; stderr:\n{err}")


class WorkerPool:
    """Workers started ``spares`` ahead of need, so imports overlap the current run."""

    def __init__(self, argv: Sequence[str], spares: int = 2,
                 env: dict[str, str] | None = None) -> None:
        self.argv, self.env, self.spares = list(argv), env, spares
        self._spares = [Worker(self.argv, env) for _ in range(spares)]

    def start(self, arg: str = "") -> Worker:
        """The oldest spare, started with ``arg``; a new spare takes its place."""
        worker = self._spares.pop(0) if self._spares else Worker(self.argv, self.env)
        if self.spares:
            self._spares.append(Worker(self.argv, self.env))
        return worker.start(arg)

    def close(self) -> None:
        """Let the spares exit."""
        for worker in self._spares:
            worker.close()
        self._spares = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
