"""SQLite's lock levels as byte-range locks on a file beside the container.

SQLite asks its VFS for five lock levels on each database (none, SHARED,
RESERVED, PENDING, EXCLUSIVE) and expects them to work between connections
of one process exactly as between processes.  The database bytes live in the
container, so the locks cannot sit on the database file as the unix VFS
puts them; they sit on ``<container>-sqlite-lock`` instead, one sidecar per
container, with the unix VFS's own protocol inside a 1 KiB region per
database:

* byte 0 is the PENDING byte, byte 1 the RESERVED byte, bytes 2-511 the
  SHARED range (a reader read-locks all of it, a writer going EXCLUSIVE
  write-locks all of it), byte 512 the WAL-owner byte;
* the region of database ``p`` starts at ``2**32 + 1024 * (h % 2**40)``,
  ``h`` the first 8 bytes (little-endian) of BLAKE2b-64 of ``p`` in UTF-8,
  so databases at different paths practically never share a region and the
  regions lie past any byte a tool might lock by accident.

Every lock is an open-file-description lock (see :mod:`cartridge.oslock`)
and every connection opens its own descriptor, which is what makes two
connections of one process exclude each other.

The WAL-owner byte is different: shared memory for WAL (the wal-index) lives
in a private per-process directory (see :mod:`.walindex`), so a WAL database
can be shared by the connections of one process only.  The first connection
of a process write-locks the byte and keeps it while any WAL file of that
database is open; a second process then fails with a clear ``CantOpenError``
instead of corrupting the wal-index it cannot see.

This module only knows about files and byte ranges; *when* the container
commits around a lock change is the main database file's business
(:mod:`.mainfile`).
"""

from __future__ import annotations

import hashlib
import os

import apsw

from .. import oslock

__all__ = ["SHARED", "RESERVED", "PENDING", "EXCLUSIVE", "lock_path", "region",
           "DatabaseLock", "claim_wal_owner"]

SHARED, RESERVED, PENDING, EXCLUSIVE = 1, 2, 3, 4
"""SQLite's lock levels (``SQLITE_LOCK_*``; 0 is no lock)."""

_PENDING_OFF, _RESERVED_OFF, _SHARED_OFF, _SHARED_LEN, _WAL_OFF = 0, 1, 2, 510, 512
_REGION_BASE, _REGION_SIZE = 1 << 32, 1024


def lock_path(container_path: str) -> str:
    """The sidecar file holding SQLite's byte-range locks for a container."""
    return container_path + "-sqlite-lock"


def region(inner: str) -> int:
    """First byte of the lock region of database ``inner`` (its container path)."""
    digest = hashlib.blake2b(inner.encode("utf-8"), digest_size=8).digest()
    return _REGION_BASE + _REGION_SIZE * (int.from_bytes(digest, "little") % (1 << 40))


def _open_lock_file(container_path: str) -> int:
    return os.open(lock_path(container_path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


class DatabaseLock:
    """One connection's lock on one database: its own descriptor, its level.

    Lock calls happen several times per statement, so each distinct
    ``struct flock`` argument is packed once and kept.
    """

    def __init__(self, container_path: str, inner: str) -> None:
        self.fd = _open_lock_file(container_path)
        self.base = region(inner)
        self.level = 0
        """The level this connection holds (0 to :data:`EXCLUSIVE`)."""
        self._args: dict[tuple[int, int, int], bytes] = {}

    def _set(self, kind: int, off: int, length: int) -> bool:
        key = (kind, off, length)
        arg = self._args.get(key)
        if arg is None:
            arg = self._args[key] = oslock.pack(kind, self.base + off, length)
        return oslock.try_lock(self.fd, arg)

    def acquire(self, level: int) -> None:
        """Raise the lock to ``level`` the way the unix VFS does, or raise
        ``apsw.BusyError`` (SQLite then retries until its busy timeout)."""
        cur = self.level
        if cur >= level:
            return
        rd, wr = oslock.RDLCK, oslock.WRLCK
        if level == SHARED:
            # The PENDING byte keeps new readers out while a writer waits.
            if not self._set(rd, _PENDING_OFF, 1):
                raise apsw.BusyError("cartridge VFS: database is locked (pending writer)")
            ok = self._set(rd, _SHARED_OFF, _SHARED_LEN)
            self._set(oslock.UNLCK, _PENDING_OFF, 1)
            if not ok:
                raise apsw.BusyError("cartridge VFS: database is locked")
            self.level = SHARED
            return
        if level == RESERVED:
            if not self._set(wr, _RESERVED_OFF, 1):
                raise apsw.BusyError("cartridge VFS: database is locked (reserved)")
            self.level = RESERVED
            return
        if cur < PENDING:
            if not self._set(wr, _PENDING_OFF, 1):
                raise apsw.BusyError("cartridge VFS: database is locked (pending)")
            self.level = PENDING
        if level == EXCLUSIVE:
            if not self._set(wr, _SHARED_OFF, _SHARED_LEN):
                raise apsw.BusyError("cartridge VFS: database is locked (readers)")
            self.level = EXCLUSIVE

    def release(self, level: int) -> None:
        """Lower the lock to ``level`` (SHARED or none)."""
        cur = self.level
        if cur <= level:
            return
        if level == SHARED:
            if cur >= EXCLUSIVE:
                self._set(oslock.RDLCK, _SHARED_OFF, _SHARED_LEN)
            self._set(oslock.UNLCK, _PENDING_OFF, 2)
        else:
            self._set(oslock.UNLCK, _PENDING_OFF, _SHARED_OFF + _SHARED_LEN)
        self.level = level

    def reserved_elsewhere(self) -> bool:
        """Does another connection hold RESERVED or stronger?"""
        if self.level >= RESERVED:
            return True
        return oslock.held_elsewhere(self.fd, oslock.WRLCK, self.base + _RESERVED_OFF, 1)

    def close(self) -> None:
        """Close the descriptor, which drops whatever it still holds."""
        os.close(self.fd)


def claim_wal_owner(container_path: str, db: str) -> int:
    """Write-lock the WAL-owner byte of ``db``; return the descriptor holding it.

    Raises ``apsw.CantOpenError`` when another process holds it.
    """
    fd = _open_lock_file(container_path)
    try:
        got = oslock.try_range(fd, oslock.WRLCK, region(db) + _WAL_OFF, 1)
    except BaseException:
        os.close(fd)
        raise
    if not got:
        os.close(fd)
        raise apsw.CantOpenError(
            f"cartridge VFS: another process has {db} open in WAL mode; WAL "
            "databases inside a container are shared by the connections of one "
            "process only (use journal_mode=DELETE to share across processes)")
    return fd
