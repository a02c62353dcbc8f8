"""Rollback journals (and super-journals): where SQLite's commit point is.

In the rollback journal modes SQLite commits by *finalizing* the journal:
it deletes it (``DELETE``), truncates it to zero (``TRUNCATE``) or zeroes its
header (``PERSIST`` and exclusive locking mode).  Until then, a crash leaves
a hot journal that the next opener plays back.  The container therefore
commits at exactly those moments, so one SQLite transaction is one atomic
container commit holding the new database pages and the finalized journal:

* a journal write at offset 0 with a non-zero header makes the journal
  *live* (:class:`.TxnState`); a zeroed header on a live journal is the
  PERSIST commit point, a truncate to 0 the TRUNCATE one, and deleting it
  (``xDelete``, in :mod:`.vfs`) the DELETE one;
* a journal ``xSync`` before any database page is written is *not* a commit
  point: SQLite syncs there only so the journal is durable before the
  database is overwritten, and copy-on-write pages are never overwritten;
  the next commit makes journal and database durable together.  That is why
  a small DELETE-mode transaction costs one container commit where SQLite on
  a plain file pays three or four ``fsync``.

Other named files (super-journals, anything SQLite opens without a main,
journal or WAL flag) are plain :class:`.StoredFile` behaviour with no commit
rule of their own; files opened delete-on-close are deleted from the
container when closed.
"""

from __future__ import annotations

import contextlib

import apsw

from ..errors import NotFoundError
from .session import ContainerSession, TxnState
from .storedfile import StoredFile

__all__ = ["JournalFile"]


class JournalFile(StoredFile):
    """A rollback or super journal (or any other named file) in the container."""

    def __init__(self, session: ContainerSession, inner: str, flags: int,
                 readonly: bool) -> None:
        self._setup(session, inner, readonly)
        self.journal = bool(flags & apsw.SQLITE_OPEN_MAIN_JOURNAL)
        self.delete_on_close = bool(flags & apsw.SQLITE_OPEN_DELETEONCLOSE)
        db = inner[: -len("-journal")] if inner.endswith("-journal") else inner
        self.txn: TxnState = session.txns.setdefault(db, TxnState())

    def xFileControl(self, op: int, ptr: int) -> bool:  # noqa: N802 - SQLite's name
        """No file controls (SQLite treats them as unsupported)."""
        return False

    def _sync_commits(self) -> bool:
        # A journal sync before any database page is written only orders the
        # journal before the overwrite; copy-on-write gives that for free.
        return not self.journal or self.txn.db_written

    def xWrite(self, data: bytes, offset: int) -> None:  # noqa: N802
        super().xWrite(data, offset)
        if self.journal and offset == 0:
            if any(bytes(data[:8])):
                self.txn.journal_live = True
            elif self.txn.journal_live:
                # PERSIST (and exclusive-mode) finalization: the zeroed header
                # is SQLite's commit point.
                self.txn.journal_live = False
                with self.session.op("sqlite.sync", self.inner):
                    self.session.commit()

    def xTruncate(self, size: int) -> None:  # noqa: N802
        super().xTruncate(size)
        if self.journal and size == 0 and self.txn.journal_live:
            # TRUNCATE finalization: SQLite's commit point.
            self.txn.journal_live = False
            with self.session.op("sqlite.sync", self.inner):
                self.session.commit()

    def xClose(self) -> None:  # noqa: N802
        session = self.session
        try:
            if (self.delete_on_close and not self.closed and session.writable
                    and not session.finished):
                with session.op("sqlite.delete", self.inner), \
                        contextlib.suppress(NotFoundError):
                    session.forget(self.inner)
                    session.cart.delete(self.inner)
        finally:
            self._close()
