"""Byte-range locks of the operating system: ``struct flock`` and OFD locks.

Two parts of Cartridge lock byte ranges of a small file beside the container:
the reader table (``readers.py``) owns one slot per read handle, and the
SQLite VFS (``cartridge.sqlite``) keeps SQLite's lock levels as ranges of
``<container>-sqlite-lock``.  Both use Linux *open-file-description* locks
(``F_OFD_SETLK``, ``F_OFD_GETLK``) rather than classic POSIX record locks, for
two reasons that matter to a library:

* an OFD lock belongs to the open file description, not to the process, so
  two handles (or two SQLite connections) in one process conflict with each
  other exactly as two processes do, and closing one descriptor does not
  drop the locks another descriptor holds (POSIX locks would do both wrong);
* the kernel drops it when the last descriptor closes, even when its owner
  dies by SIGKILL, so a lock never outlives a crashed process.

Python's ``fcntl.lockf`` only speaks POSIX locks, so the ``struct flock``
argument is packed here by hand, once: ``short l_type, short l_whence,
off_t l_start, off_t l_len, pid_t l_pid`` padded to 32 bytes (x86-64 and
aarch64 Linux), with ``l_pid`` 0 as OFD locks require.  Callers on a hot path
pack an argument once with :func:`pack` and reuse it with :func:`try_lock`;
the others call :func:`try_range` and :func:`held_elsewhere`.

This module is the file layer's: it imports nothing from Cartridge.
"""

from __future__ import annotations

import fcntl
import os
import struct

__all__ = ["FLOCK", "pack", "lock_type", "fcntl_range", "try_lock", "try_range",
           "held_elsewhere", "RDLCK", "WRLCK", "UNLCK"]

FLOCK = struct.Struct("@hhqqi4x")
"""``struct flock`` on Linux (64-bit ``off_t``), padded to its 32 bytes."""

RDLCK, WRLCK, UNLCK = fcntl.F_RDLCK, fcntl.F_WRLCK, fcntl.F_UNLCK

_SETLK, _GETLK = fcntl.F_OFD_SETLK, fcntl.F_OFD_GETLK


def pack(kind: int, start: int, length: int) -> bytes:
    """The ``struct flock`` for lock ``kind`` (``RDLCK``, ``WRLCK``, ``UNLCK``)
    on bytes ``[start, start + length)`` of a file, as an OFD lock wants it."""
    return FLOCK.pack(kind, os.SEEK_SET, start, length, 0)


def lock_type(packed: bytes) -> int:
    """``l_type`` of a ``struct flock`` (what ``F_OFD_GETLK`` filled in)."""
    return int(FLOCK.unpack(packed)[0])


def fcntl_range(fd: int, cmd: int, kind: int, start: int, length: int) -> bytes:
    """One ``fcntl(fd, cmd, struct flock)`` call on a byte range; raises ``OSError``
    as ``fcntl`` does (``EAGAIN``/``EACCES`` when another description holds it)."""
    return fcntl.fcntl(fd, cmd, pack(kind, start, length))


def try_lock(fd: int, packed: bytes) -> bool:
    """Set (or, with ``UNLCK``, release) an OFD lock without waiting.

    ``packed`` comes from :func:`pack`.  Returns False when another open file
    description holds a conflicting lock; other failures (a filesystem
    without locks, a bad descriptor) raise ``OSError``.
    """
    try:
        fcntl.fcntl(fd, _SETLK, packed)
    except (BlockingIOError, PermissionError):  # EAGAIN, EACCES
        return False
    return True


def try_range(fd: int, kind: int, start: int, length: int) -> bool:
    """:func:`try_lock` on a byte range packed for this one call."""
    return try_lock(fd, pack(kind, start, length))


def held_elsewhere(fd: int, kind: int, start: int, length: int) -> bool:
    """Would lock ``kind`` on the range conflict with another description's lock?

    Locks held through ``fd``'s own open file description never conflict,
    so they do not count.
    """
    return lock_type(fcntl.fcntl(fd, _GETLK, pack(kind, start, length))) != UNLCK
