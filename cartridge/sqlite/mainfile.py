"""The main database file: SQLite's locks, and the end of a write transaction.

A main database file does three things the other files do not:

* **Locks.**  ``xLock``/``xUnlock``/``xCheckReservedLock`` map SQLite's lock
  levels onto byte ranges of the container's lock sidecar
  (:class:`.DatabaseLock`).  Taking SHARED also moves a read-only handle to
  the newest commit, so every read transaction of SQLite reads one container
  commit, the latest at its start.
* **The end of a write transaction is a commit point.**  Releasing a
  RESERVED or stronger lock (the end of every write transaction in the
  default locking mode) commits the container *before* the lock is
  released, so no other connection can see the database between SQLite's
  commit and the container's.  So does closing a database (this matters
  with ``synchronous=OFF``, where nothing else may have).  An ``xSync`` of
  the database commits too, except while a rollback journal is live: then
  the journal's finalization is the commit point (:mod:`.journal`), and
  committing here would only make durable a "new pages + hot journal" state
  that recovery rolls back.
* **Shared memory.**  SQLite's ``xShm*`` methods (the wal-index) cannot be
  written in Python; apsw forwards them to the file a Python VFS file
  inherits from.  So :class:`MainFile` inherits from a unix-VFS file opened
  on an empty placeholder (:mod:`.walindex`), never read or written.  File
  controls go to that unix file too: the ones SQLite sends to a main
  database concern the wal-index locks the unix file implements
  (``SQLITE_FCNTL_LOCK_TIMEOUT``, external readers) or are no-ops on an
  empty file, and skipping a Python call matters on the WAL read path,
  which sends three per statement.
"""

from __future__ import annotations

import contextlib
import hashlib
import os

import apsw

from .locks import RESERVED, SHARED, DatabaseLock
from .registry import DB_OWNERS, MAIN_FILES, REGISTRY_LOCK, remember
from .session import ContainerSession, TxnState
from .storedfile import StoredFile
from .walindex import placeholder_dir

__all__ = ["MainFile"]


class MainFile(StoredFile, apsw.VFSFile):
    """A main database file (see the module docstring)."""

    def __init__(self, session: ContainerSession, inner: str, flags: int,
                 readonly: bool) -> None:
        key = hashlib.blake2b(f"{os.path.realpath(session.cart.path)}\0{inner}".encode(),
                              digest_size=12).hexdigest()
        holder = os.path.join(placeholder_dir(), key + ".db")
        super().__init__("unix", holder, [apsw.SQLITE_OPEN_MAIN_DB | apsw.SQLITE_OPEN_READWRITE
                                          | apsw.SQLITE_OPEN_CREATE, 0])
        self._setup(session, inner, readonly)
        self.txn = session.txns.setdefault(inner, TxnState())
        self.db_lock = DatabaseLock(session.cart.path, inner)
        self.key = (id(session), inner)
        remember(session, inner)
        with REGISTRY_LOCK:
            DB_OWNERS.setdefault(inner, []).append(session)
            MAIN_FILES[self.key] = self

    def xLock(self, level: int) -> None:  # noqa: N802 - SQLite's name
        remember(self.session, self.inner)
        if self.db_lock.level >= level:
            return
        if self.session.finished:
            # After the exit hook nothing may start.  In a forked child this
            # also keeps SQLite's close from checkpointing the parent's WAL
            # and deleting its wal-index: it cannot get the lock it needs.
            raise apsw.BusyError(f"cartridge VFS: {self.inner}: the interpreter is exiting")
        self.db_lock.acquire(level)
        if level == SHARED:
            with self.session.lock:
                self.session.refresh()

    def xUnlock(self, level: int) -> None:  # noqa: N802
        cur = self.db_lock.level
        if cur <= level:
            return
        if self.session.finished:
            # After the exit hook: nothing to commit, and a forked child
            # must not release locks its parent holds through the same
            # open file description.
            return
        if cur >= RESERVED:
            # The end of a write transaction: make it durable and visible
            # before any other connection can take a lock.
            session = self.session
            if session.writable:
                with session.op("sqlite.sync", self.inner):
                    session.commit()
            self.txn.db_written = False
        self.db_lock.release(level)

    def xCheckReservedLock(self) -> bool:  # noqa: N802
        return self.db_lock.reserved_elsewhere()

    def _wrote(self) -> None:
        self.txn.db_written = True

    def _sync_commits(self) -> bool:
        return not self.txn.journal_live

    def xClose(self) -> None:  # noqa: N802
        if self.closed:
            return
        with contextlib.suppress(OSError):
            self.xUnlock(0)
        self.db_lock.close()
        session = self.session
        with REGISTRY_LOCK:
            if MAIN_FILES.get(self.key) is self:
                del MAIN_FILES[self.key]
            owners = DB_OWNERS.get(self.inner, [])
            if session in owners:
                owners.remove(session)
            if not owners:
                DB_OWNERS.pop(self.inner, None)
        super().xClose()
        if session.writable and not session.cart.closed:
            # Closing a database makes whatever it wrote durable (this
            # matters with synchronous=OFF, where nothing else may have).
            with session.op("sqlite.sync", self.inner):
                session.commit()
        self._close()
