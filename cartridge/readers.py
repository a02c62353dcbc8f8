"""The reader table: which generations live readers are still reading.

LMDB's reader lock table is the model.  Beside ``data.cart`` lives
``data.cart-lock``, a small shared file mapped by every handle: a header and
:data:`NSLOTS` slots of :data:`SLOT` (pid, pinned generation, start time).
A read-only handle claims a slot for its lifetime and, for the duration of
each read call, writes into it the generation it is reading.  The writer
returns pages freed by commit ``g`` to the free map only when every pin is at
least ``g`` (they are reachable from ``g - 1``), so a page a reader can still
reach is never reused under it.

Why pins cannot be missed: a reader writes its pin and then re-reads the meta
pages; if a newer commit appeared meanwhile it pins again.  The writer writes
the new meta page *before* it scans the table to release pages.  So either the
writer's scan sees the pin, or the reader sees the new commit and moves to it.

Liveness: a slot is owned through an open-file-description lock
(``F_OFD_SETLK``) on the slot's bytes.  The kernel drops it when the owner
dies, even by SIGKILL, so the writer tells live slots from stale ones with
``F_OFD_GETLK`` and ignores (and reports) the stale ones.  OFD locks belong
to the open file description, so two handles in one process own separate
slots, and closing one does not release the other's lock (unlike classic
POSIX record locks).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import LockedError, LockingUnsupportedError

LOCK_MAGIC = b"CARTLOCK"
LOCK_VERSION = 1
NSLOTS = 1024
SLOTS_OFFSET = 4096

LOCK_HEADER = np.dtype([("magic", "S8"), ("version", "<u4"), ("nslots", "<u4")])
SLOT = np.dtype(
    [
        ("pid", "<u8"),  # owner process id (for reports)
        ("generation", "<u8"),  # pinned generation, 0 = not reading now
        ("since_ns", "<i8"),  # when the pin was taken
        ("reserved", "<u8"),
    ]
)
LOCK_FILE_SIZE = SLOTS_OFFSET + NSLOTS * SLOT.itemsize

# struct flock on Linux: short l_type, short l_whence, off_t l_start,
# off_t l_len, pid_t l_pid (must be 0 for OFD locks), padded to 32 bytes.
_FLOCK = struct.Struct("@hhqqi4x")
_FENCE_LOCK = threading.Lock()


def _fence() -> None:
    """A full memory barrier: taking a lock is an atomic read-modify-write."""
    _FENCE_LOCK.acquire()
    _FENCE_LOCK.release()


_PIN = struct.Struct("<Qq")  # generation, since_ns: consecutive fields of SLOT
_GEN = struct.Struct("<Q")
assert SLOT.fields["since_ns"][1] == SLOT.fields["generation"][1] + 8


@dataclass(frozen=True, slots=True)
class ReaderSlot:
    """One occupied slot of the reader table."""

    slot: int
    """Index in the table."""
    pid: int
    """Process that owns (or owned) the slot."""
    generation: int
    """Pinned generation; 0 when the reader is between calls."""
    since: float
    """When the pin was taken, seconds since the epoch."""
    alive: bool
    """False when the owner died without releasing the slot."""


def lock_path(container_path: str) -> str:
    """Path of the reader table beside a container."""
    return container_path + "-lock"


class ReaderTable:
    """A handle on the shared reader table of one container."""

    def __init__(self, container_path: str) -> None:
        self.path = lock_path(container_path)
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise LockedError(
                f"cannot open the reader table {self.path!r} ({exc.strerror}); readers "
                "need it to stop the writer reusing pages they read. Make the "
                "directory writable, or open with locking=False if no process "
                "writes the container while you read it"
            ) from None
        try:
            if os.fstat(self.fd).st_size < LOCK_FILE_SIZE:
                os.ftruncate(self.fd, LOCK_FILE_SIZE)
            self._map = mmap.mmap(self.fd, LOCK_FILE_SIZE)
            head = np.frombuffer(self._map, LOCK_HEADER, count=1)
            if head["magic"][0] != LOCK_MAGIC:
                head["magic"] = LOCK_MAGIC
                head["version"] = LOCK_VERSION
                head["nslots"] = NSLOTS
            self.slots = np.frombuffer(self._map, SLOT, count=NSLOTS, offset=SLOTS_OFFSET)
        except BaseException:
            os.close(self.fd)
            raise
        self.slot = -1

    # ------------------------------------------------------------- locks
    def _lock(self, slot: int, cmd: int, kind: int) -> bytes:
        start = SLOTS_OFFSET + slot * SLOT.itemsize
        arg = _FLOCK.pack(kind, os.SEEK_SET, start, SLOT.itemsize, 0)
        return fcntl.fcntl(self.fd, cmd, arg)

    def _alive(self, slot: int) -> bool:
        if slot == self.slot:
            return True
        try:
            got = self._lock(slot, fcntl.F_OFD_GETLK, fcntl.F_WRLCK)
        except OSError:
            return True  # cannot tell: assume alive, which only delays reuse
        return _FLOCK.unpack(got)[0] != fcntl.F_UNLCK

    # ------------------------------------------------------------ reader
    def acquire(self) -> None:
        """Claim a free (or stale) slot for this handle."""
        for slot in range(NSLOTS):
            try:
                self._lock(slot, fcntl.F_OFD_SETLK, fcntl.F_WRLCK)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    continue
                raise LockingUnsupportedError(
                    f"the filesystem of {self.path!r} does not support the locks the "
                    f"reader table needs ({exc.strerror}); open with "
                    "locking=\"best-effort\" or locking=False if no process writes the "
                    "container while you read it"
                ) from None
            self.slot = slot
            self._pin_at = SLOTS_OFFSET + slot * SLOT.itemsize + SLOT.fields["generation"][1]
            self.slots[slot] = (os.getpid(), 0, 0, 0)
            return
        raise LockedError(f"all {NSLOTS} reader slots of {self.path!r} are in use")

    def pin(self, generation: int) -> None:
        """Record that this handle is reading ``generation``.

        One packed store of (generation, since_ns) into the shared map: this
        runs on every read call, where a numpy field assignment would cost
        several times more.  The 8-byte generation is aligned, so the writer
        never sees half of it.
        """
        _PIN.pack_into(self._map, self._pin_at, generation, time.time_ns())

    def pin_checked(self, generation: int, unchanged: Callable[[], bool]) -> bool:
        """Pin ``generation``, then ask whether the pin is sure to be seen.

        The writer writes meta ``g+1``, syncs, and only *then* scans the pins
        to free pages.  So after pinning (and a fence, so the store is
        visible to other processes before the check) a reader is safe when
        ``unchanged()`` says no newer valid commit than the one it loaded has
        appeared: a writer that committed later will see the pin in its scan.
        On False the caller reloads the newest commit and tries again; the
        pin stays in place meanwhile (it only ever holds pages back).
        """
        self.pin(generation)
        _fence()
        return unchanged()

    def unpin(self) -> None:
        """This handle is between reads."""
        _GEN.pack_into(self._map, self._pin_at, 0)

    # ------------------------------------------------------------ writer
    def oldest_pin(self) -> int | None:
        """Smallest generation pinned by a live reader, or None."""
        gens = self.slots["generation"]
        active = np.flatnonzero(gens)
        oldest = None
        for slot in active.tolist():
            gen = int(gens[slot])
            if (oldest is None or gen < oldest) and self._alive(slot):
                oldest = gen
        return oldest

    def pinned(self) -> list[int]:
        """Every generation pinned by a live reader (what the writer must keep)."""
        gens = self.slots["generation"]
        return sorted({int(gens[slot]) for slot in np.flatnonzero(gens).tolist()
                       if self._alive(slot)})

    def clear_stale(self) -> list[ReaderSlot]:
        """Empty the slots of dead owners; return what was cleared.

        A slot is cleared only while holding its lock, so a process claiming
        it at the same moment is never wiped out.
        """
        cleared = []
        for rec in self.list():
            if rec.alive:
                continue
            try:
                self._lock(rec.slot, fcntl.F_OFD_SETLK, fcntl.F_WRLCK)
            except OSError:
                continue  # claimed meanwhile: alive again
            try:
                if int(self.slots[rec.slot]["pid"]) == rec.pid:
                    self.slots[rec.slot] = (0, 0, 0, 0)
                    cleared.append(rec)
            finally:
                self._lock(rec.slot, fcntl.F_OFD_SETLK, fcntl.F_UNLCK)
        return cleared

    def detach(self) -> None:
        """Forget the table in a forked child without touching the parent's slot.

        The child shares the parent's open file description, hence its OFD
        lock: unlocking here would release the parent's slot.  Closing the
        descriptor does not (the parent still holds one).
        """
        self.slot = -1
        self.slots = np.empty(0, SLOT)
        with contextlib.suppress(BufferError):
            self._map.close()
        os.close(self.fd)

    def list(self) -> list[ReaderSlot]:
        """Every slot that has an owner, live or stale."""
        out = []
        for slot in np.flatnonzero(self.slots["pid"]).tolist():
            rec = self.slots[slot]
            out.append(ReaderSlot(slot, int(rec["pid"]), int(rec["generation"]),
                                  int(rec["since_ns"]) / 1e9, self._alive(slot)))
        return out

    def close(self) -> None:
        """Release this handle's slot and the table."""
        if self.slot >= 0:
            self.slots[self.slot] = (0, 0, 0, 0)
            self._lock(self.slot, fcntl.F_OFD_SETLK, fcntl.F_UNLCK)
            self.slot = -1
        self.slots = np.empty(0, SLOT)
        with contextlib.suppress(BufferError):  # an array still views the map
            self._map.close()
        os.close(self.fd)
