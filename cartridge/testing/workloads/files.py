r"""The ageing file workload: deterministic batches, a dict model, a kill loop.

Worker (run by :class:`Ageing` through the crash harness)::

    python -m cartridge.testing.workloads.files CART SEED PROFILE [KEY_HEX|-] [compressible]

opens ``CART`` with ``cartridge.open(CART, "a")`` (so every run goes through
the read-write open, creating the container the first time), takes its first
batch number from the harness's ``START`` and then, for ``k = start, start +
1, ...`` forever, announces phase ``begin k``, applies batch ``k`` with
:func:`apply_batch`, announces ``commit k``, commits, announces ``ack k``.

A batch is a function of ``(seed, k)`` *and of the container's current
contents*, so the same code run on a :class:`DictModel` holding the same
contents makes the same changes: that is how the parent computes the expected
state.  Paths come from a small namespace so that the container ages: files
are overwritten, deleted, renamed over each other, and their pages reused;
directories are created, renamed with everything below them, and removed when
empty.

Parent: :class:`Ageing` kills workers at seeded :class:`~cartridge.testing.crash.KillPoint`\ s
(at or some Python calls into a ``begin`` or ``commit`` phase), reopens the
container read-only and requires ``verify()`` to pass and the contents to
equal the model after the last acknowledged batch or after the batch in
flight.  The matching state becomes the model and the next worker starts at
the batch after it, so the container accumulates hundreds of commits.
"""

from __future__ import annotations

import functools
import os
import random
import sys
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

import cartridge
from cartridge.testing.crash import (
    Killed,
    KillPoint,
    Phases,
    WorkerPool,
    kill_depth,
    worker_argv,
)

#: Sizes a write draws from: empty, inline, the inline limit and one past it,
#: page and chunk boundaries (and one either side), and multi-chunk files.
SIZES = (0, 1, 100, 1536, 1537, 4095, 4096, 4097, 65535, 65536, 65537, 300_000, 2_000_000)
#: Sizes for appends and extensions, so that files do not grow without bound.
SMALL_SIZES = SIZES[:11]
#: Appends and extensions stop at this file size.
MAX_FILE = 3_000_000
#: Top directories writes use; directory renames may also create /d4 and /d5.
TOP_DIRS = 4
ALL_TOP_DIRS = 6
NAMES = 10

#: The growth profile writes files of about this size into an ever larger set.
BIG = 8 << 20
BIG_NAMES = 12
BIG_MAX_FILE = 24 << 20


class Info(NamedTuple):
    """What :meth:`DictModel.walk` reports per path (the fields batches use)."""

    kind: str
    size: int


class Listed(Protocol):
    """What a batch reads of a walked path: :class:`Info`, or a ``FileInfo``."""

    @property
    def kind(self) -> str: ...
    @property
    def size(self) -> int: ...


class Target(Protocol):
    """The operations :func:`apply_batch` uses: a ``Cartridge`` or a ``DictModel``."""

    def walk(self, prefix: str = "/") -> Iterator[tuple[str, Listed]]: ...
    def exists(self, path: str) -> bool: ...
    def read(self, path: str) -> bytes: ...
    def write(self, path: str, data: bytes) -> None: ...
    def append(self, path: str, data: bytes) -> None: ...
    def truncate(self, path: str, size: int) -> None: ...
    def delete(self, path: str) -> None: ...
    def rename(self, src: str, dst: str) -> None: ...
    def mkdir(self, path: str, parents: bool = True, exist_ok: bool = False) -> None: ...
    def rmdir(self, path: str) -> None: ...


class DictModel:
    """The expected contents of a container: file path -> bytes, plus directories.

    Implements the subset of the :class:`cartridge.Cartridge` API that
    :func:`apply_batch` uses, with the same semantics for the cases batches
    produce (parents created on demand, rename replaces a file and moves a
    directory with everything under it).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = set()

    def copy(self) -> DictModel:
        """An independent copy (bytes are immutable, so a shallow copy is enough)."""
        twin = DictModel()
        twin.files = dict(self.files)
        twin.dirs = set(self.dirs)
        return twin

    def _make_parents(self, path: str) -> None:
        parts = path.split("/")[1:-1]
        for i in range(1, len(parts) + 1):
            self.dirs.add("/" + "/".join(parts[:i]))

    def walk(self, prefix: str = "/") -> Iterator[tuple[str, Info]]:
        """``(path, Info)`` for every file and directory, in path order (root only)."""
        assert prefix == "/", "the model only walks the whole tree"
        entries = [(p, Info("file", len(b))) for p, b in self.files.items()]
        entries += [(d, Info("dir", 0)) for d in self.dirs]
        # The container orders paths by their UTF-8 bytes.
        yield from sorted(entries, key=lambda item: item[0].encode("utf-8"))

    def exists(self, path: str) -> bool:
        """True for a file or directory."""
        return path in self.files or path in self.dirs

    def read(self, path: str) -> bytes:
        """The bytes of a file."""
        return self.files[path]

    def write(self, path: str, data: bytes) -> None:
        """Create or replace a file, creating missing parents."""
        self._make_parents(path)
        self.files[path] = bytes(data)

    def append(self, path: str, data: bytes) -> None:
        """Append to a file, creating it if missing."""
        self._make_parents(path)
        self.files[path] = self.files.get(path, b"") + bytes(data)

    def truncate(self, path: str, size: int) -> None:
        """Cut or zero-extend a file."""
        self.files[path] = self.files[path][:size].ljust(size, b"\0")

    def delete(self, path: str) -> None:
        """Remove a file."""
        del self.files[path]

    def rename(self, src: str, dst: str) -> None:
        """Move a file (replacing a file at ``dst``) or a directory and its subtree."""
        if src == dst:
            return
        self._make_parents(dst)
        if src in self.files:
            self.files[dst] = self.files.pop(src)
            return
        below = src + "/"
        self.dirs.discard(src)
        self.dirs.add(dst)
        for d in [d for d in self.dirs if d.startswith(below)]:
            self.dirs.discard(d)
            self.dirs.add(dst + d[len(src):])
        for p in [p for p in self.files if p.startswith(below)]:
            self.files[dst + p[len(src):]] = self.files.pop(p)

    def mkdir(self, path: str, parents: bool = True, exist_ok: bool = False) -> None:
        """Create a directory and its parents (batches always pass both flags)."""
        assert parents and exist_ok, "the model only implements mkdir -p"
        self._make_parents(path)
        self.dirs.add(path)

    def rmdir(self, path: str) -> None:
        """Remove an empty directory."""
        below = path + "/"
        assert not any(p.startswith(below) for p in self.files.keys() | self.dirs)
        self.dirs.remove(path)


def payload(seed: int, k: int, i: int, size: int, compressible: bool = False) -> bytes:
    """The bytes op ``i`` of batch ``k`` writes: reproducible from the numbers.

    ``compressible``: half of the payload is zeros, so compressed chunks are
    really compressed.
    """
    rng = random.Random(f"{seed}-{k}-{i}")
    if compressible:
        return rng.randbytes(size // 2) + bytes(size - size // 2)
    return rng.randbytes(size)


def apply_batch(target: Target, seed: int, k: int, profile: str = "mixed",
                compressible: bool = False) -> None:
    """Apply batch ``k`` to ``target`` (a ``Cartridge`` or a :class:`DictModel`).

    The operations are drawn from ``random.Random(f"{seed}-{k}")`` and chosen
    among the paths ``target`` holds when each one runs, so equal contents
    give equal batches.  ``profile`` is ``"mixed"`` (every kind of operation
    on files from empty to 2 MB) or ``"growth"`` (8 MB files written into a
    growing set, so commits keep extending the container file).
    ``compressible``: see :func:`payload`.
    """
    rng = random.Random(f"{seed}-{k}")
    ops = _growth_op if profile == "growth" else _mixed_op
    for i in range(rng.randint(1, 2) if profile == "growth" else rng.randint(1, 6)):
        listing = list(target.walk("/"))
        files = [(p, info.size) for p, info in listing if info.kind == "file"]
        dirs = [p for p, info in listing if info.kind == "dir"]
        ops(target, rng, files, dirs, payload_of=functools.partial(
            _payload_of, seed, k, i, compressible))


def _fresh_path(rng: random.Random) -> str:
    return f"/d{rng.randrange(TOP_DIRS)}/f{rng.randrange(NAMES)}"


def _payload_of(seed: int, k: int, i: int, compressible: bool, n: int) -> bytes:
    return payload(seed, k, i, n, compressible)


def _mixed_op(target: Target, rng: random.Random, files: list[tuple[str, int]],
              dirs: list[str], payload_of: Callable[[int], bytes]) -> None:
    """One operation of the ``"mixed"`` profile."""
    def pick(existing: float) -> tuple[str, int]:
        if files and rng.random() < existing:
            return rng.choice(files)
        path = _fresh_path(rng)
        return path, dict(files).get(path, -1)

    op = rng.choices(
        ["write", "append", "truncate", "delete", "rename", "mkdir", "rmdir", "rename_dir"],
        weights=[35, 15, 15, 6, 12, 5, 4, 6],
    )[0]
    if op in ("truncate", "delete", "rename") and not files:
        op = "write"
    if op == "write":
        path, _size = pick(0.4)
        target.write(path, payload_of(rng.choice(SIZES)))
    elif op == "append":
        path, size = pick(0.7)
        n = rng.choice(SMALL_SIZES)
        if size + n <= MAX_FILE:
            target.append(path, payload_of(n))
    elif op == "truncate":
        path, size = rng.choice(files)
        new = rng.choice([rng.randint(0, size), rng.choice(SIZES[:12]),
                          size + rng.choice(SMALL_SIZES)])
        target.truncate(path, min(new, MAX_FILE))
    elif op == "delete":
        target.delete(rng.choice(files)[0])
    elif op == "rename":
        src = rng.choice(files)[0]
        target.rename(src, pick(0.3)[0])
    elif op == "mkdir":
        target.mkdir(f"/d{rng.randrange(TOP_DIRS)}/e{rng.randrange(3)}", parents=True,
                     exist_ok=True)
    elif op == "rmdir" and dirs:
        path = rng.choice(dirs)
        below = path + "/"
        if not any(p.startswith(below) for p in dirs + [f for f, _ in files]):
            target.rmdir(path)
    elif op == "rename_dir" and dirs:
        src = rng.choice(dirs)
        top = f"/d{rng.randrange(ALL_TOP_DIRS)}"
        dst = top if src.count("/") == 1 else f"{top}/e{rng.randrange(3)}"
        if not target.exists(dst):
            target.rename(src, dst)


def _growth_op(target: Target, rng: random.Random, files: list[tuple[str, int]],
               dirs: list[str], payload_of: Callable[[int], bytes]) -> None:
    """One operation of the ``"growth"`` profile: big writes, big appends, deletes."""
    op = rng.choices(["write", "append", "delete"], weights=[60, 30, 10])[0]
    if op != "write" and not files:
        op = "write"
    if op == "write":
        path = f"/g/f{rng.randrange(BIG_NAMES)}"
        target.write(path, payload_of(BIG + rng.randrange(2 * 65537)))
    elif op == "append":
        path, size = rng.choice(files)
        n = rng.randint(1, 4 << 20)
        if size + n <= BIG_MAX_FILE:
            target.append(path, payload_of(n))
    else:
        target.delete(rng.choice(files)[0])


def snapshot(target: Target) -> tuple[dict[str, bytes], frozenset[str]]:
    """Everything a container (or model) holds: file path -> bytes, and the directories."""
    files: dict[str, bytes] = {}
    dirs = set()
    for path, info in target.walk("/"):
        if info.kind == "dir":
            dirs.add(path)
        else:
            files[path] = target.read(path)
    return files, frozenset(dirs)


def describe_difference(got: tuple[dict[str, bytes], AbstractSet[str]],
                        want: tuple[dict[str, bytes], AbstractSet[str]]) -> str:
    """A short account of how two :func:`snapshot` results differ."""
    (gf, gd), (wf, wd) = got, want
    out = []
    for path in sorted(gf.keys() | wf.keys()):
        if path not in gf:
            out.append(f"{path}: missing (expected {len(wf[path])} bytes)")
        elif path not in wf:
            out.append(f"{path}: unexpected file of {len(gf[path])} bytes")
        elif gf[path] != wf[path]:
            a, b = gf[path], wf[path]
            pairs = enumerate(zip(a, b, strict=False))
            first = next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))
            out.append(f"{path}: {len(a)} bytes, expected {len(b)}; first difference at {first}")
    if gd != wd:
        out.append(f"dirs missing {sorted(wd - gd)}, unexpected {sorted(gd - wd)}")
    return "; ".join(out) or "no difference"


@dataclass
class Ageing:
    """The container under test, its model, and what the kills have hit so far."""

    path: Path
    profile: str
    seed: int
    key: bytes | None = None
    """Key of an encrypted container (the workers get it on their command line)."""
    compressible: bool = False
    """Half of every payload is zeros (see :func:`payload`)."""
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

    def _apply(self, model: DictModel, batch: int) -> None:
        apply_batch(model, self.seed, batch, self.profile, self.compressible)

    def check(self, start: int, killed: Killed) -> None:
        """Reopen the container read-only and require one of the allowed states."""
        expected = [f"{what} {k}" for k in range(start, start + len(killed.phases))
                    for what in ("begin", "commit", "ack")][: len(killed.phases)]
        said = [f"{p.name} {p.tag}" for p in killed.phases]
        assert said == expected, f"worker announced {said}, expected {expected}"
        last_ack = int(killed.tags("ack")[-1]) if killed.tags("ack") else start - 1
        in_flight = int(killed.last.tag) if killed.last.name != "ack" else None
        for batch in range(self.next_batch, last_ack + 1):
            self._apply(self.model, batch)
        candidates = [(last_ack, self.model)]
        if in_flight is not None:
            after = self.model.copy()
            self._apply(after, in_flight)
            candidates.append((in_flight, after))
        where = (f"kill {self.kills + 1} (seed {self.seed}, profile {self.profile}, batches "
                 f"{self.next_batch}..{last_ack}, killed in {killed.last} after "
                 f"{killed.calls} calls, container {self.path})")
        with cartridge.open(self.path, "r", key=self.key) as cart:
            report = cart.verify()
            assert report.ok, f"{where}: verify() failed: {report.problems}"
            got = snapshot(cart)
        matched = [(b, m) for b, m in candidates if got == (m.files, frozenset(m.dirs))]
        if not matched:
            diffs = " | ".join(f"vs after batch {b}: {describe_difference(got, (m.files, m.dirs))}"
                               for b, m in candidates)
            raise AssertionError(f"{where}: contents match no allowed state: {diffs}")
        batch, model = matched[0]
        self.kills += 1
        self.batches += batch + 1 - self.next_batch
        self.mid_batch += in_flight is not None
        self.unacked_durable += in_flight is not None and batch == in_flight
        self.model, self.next_batch = model, batch + 1
        self.sizes.append(os.path.getsize(self.path))

    def run(self, kills: int, batches: tuple[int, int] = (1, 16)) -> None:
        """Kill ``kills`` workers, each in batch ``randint(*batches)`` of its run.

        Each kill lands in the ``begin`` phase (while the batch's operations
        run) or the ``commit`` phase, at its start or ``2**uniform(0, 14)``
        Python calls into it (a commit too short for that is killed at its
        ``ack``), all drawn from ``random.Random(seed)``.
        """
        rng = random.Random(self.seed)
        argv = worker_argv(__name__, str(self.path), str(self.seed), self.profile,
                           self.key.hex() if self.key else "-",
                           "compressible" if self.compressible else "plain")
        with WorkerPool(argv) as pool:
            for _ in range(kills):
                point = KillPoint(rng.choice(("begin", "commit")), rng.randint(*batches),
                                  kill_depth(rng))
                start = self.next_batch
                self.check(start, pool.start(str(start)).run_to(point))

    def summary(self) -> str:
        """One line for assertion messages."""
        return (f"{self.kills} kills, {self.batches} batches committed, {self.mid_batch} "
                f"mid-batch kills ({self.unacked_durable} after a durable but unacked commit)")


def main(argv: list[str]) -> int:
    """Run batches until killed; see the module docstring."""
    if len(argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    path, seed, profile, key_hex, flavour = argv[1], int(argv[2]), argv[3], argv[4], argv[5]
    phases = Phases()
    k = phases.start_number()
    if k is None:
        return 0  # the parent no longer needs this worker
    cart = cartridge.open(path, "a", key=None if key_hex == "-" else bytes.fromhex(key_hex))
    while True:
        phases("begin", k)
        apply_batch(cart, seed, k, profile, flavour == "compressible")
        phases("commit", k)
        cart.commit()
        phases("ack", k)
        k += 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
