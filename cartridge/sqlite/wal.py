"""WAL files: one process at a time, and an empty one for read-only readers.

In WAL mode SQLite appends committed pages to ``<db>-wal`` and its commit
point is the ``xSync`` of the WAL file (or none at all with
``synchronous=NORMAL``: then the WAL frames wait in the pending container
transaction until the next WAL sync, checkpoint or close, which is the trade
SQLite makes on a plain file: consistent, maybe not durable).  The WAL file
itself needs no rule of its own beyond :class:`.StoredFile`.

What it needs is the wal-index, shared memory that every connection of the
database maps, and ours is private to the process (see :mod:`.walindex`).
So while any WAL file of a database is open, its process holds the
database's WAL-owner byte (see :mod:`.locks`); the claim is shared by the
connections of the process and counted in the session.

A read-only container cannot create a WAL file, yet SQLite needs one to read
a WAL database even when it holds nothing; the last commit of a container
has nothing in its WAL (the container commits at WAL syncs and checkpoints
the file on close), so an :class:`EmptyWal` in memory is exactly what it
holds.
"""

from __future__ import annotations

import os

import apsw

from .locks import claim_wal_owner
from .memfile import MemoryFile
from .registry import REGISTRY_LOCK, release
from .session import ContainerSession
from .storedfile import StoredFile

__all__ = ["WalFile", "EmptyWal"]


def _claim(session: ContainerSession, db: str) -> None:
    """Take (or share, within this process) the WAL-owner byte of ``db``."""
    with REGISTRY_LOCK:
        held = session.wal.get(db)
        if held is None:
            held = session.wal[db] = [claim_wal_owner(session.cart.path, db), 0]
        held[1] += 1


def _unclaim(session: ContainerSession, db: str) -> None:
    with REGISTRY_LOCK:
        held = session.wal.get(db)
        if held is not None:
            held[1] -= 1
            if held[1] == 0:
                os.close(held[0])
                del session.wal[db]


class WalFile(StoredFile):
    """The WAL file of a database, stored in the container."""

    def __init__(self, session: ContainerSession, inner: str, flags: int,
                 readonly: bool) -> None:
        self.db = inner[: -len("-wal")]
        _claim(session, self.db)
        self._setup(session, inner, readonly)

    def xFileControl(self, op: int, ptr: int) -> bool:  # noqa: N802 - SQLite's name
        """No file controls (SQLite treats them as unsupported)."""
        return False

    def xClose(self) -> None:  # noqa: N802
        if self.closed:
            return
        _unclaim(self.session, self.db)
        self._close()


class EmptyWal(MemoryFile):
    """A read-only container's view of a WAL file that does not exist: empty."""

    def __init__(self, session: ContainerSession, db: str) -> None:
        _claim(session, db)
        super().__init__()
        self.session = session
        self.db = db
        self.closed = False

    def xWrite(self, data: bytes, offset: int) -> None:  # noqa: N802
        raise apsw.ReadOnlyError(f"cartridge VFS: {self.db}-wal is read-only")

    def xClose(self) -> None:  # noqa: N802
        if not self.closed:
            self.closed = True
            _unclaim(self.session, self.db)
            with REGISTRY_LOCK:
                release(self.session)
