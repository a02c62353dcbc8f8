"""The ``"cartridge"`` VFS: SQLite's names to container files.

apsw lets a Python class be a SQLite VFS.  Ours has few jobs of its own,
because the files do the work (:mod:`.mainfile`, :mod:`.journal`,
:mod:`.wal`, :mod:`.memfile`); it turns names into files:

* ``xOpen`` finds the container (the ``cartridge=`` URI parameter of a main
  database, or the database a journal or WAL file belongs to, see
  :mod:`.registry`), creates the file in the container when SQLite asks to,
  and picks the file class from SQLite's open flags.  A file opened without
  a name is a :class:`.MemoryFile`.  A read-only container opens everything
  read-only, and answers a WAL file it does not hold with an empty one.
* ``xDelete`` deletes a file from the container.  Deleting a journal or a
  WAL file is a commit point of SQLite's (the DELETE journal mode commits
  that way), so it commits.
* ``xAccess`` says whether a file exists.  SQLite asks on every transaction
  whether a hot journal is there, so a writable handle answers from the
  session's memory of what it created and deleted.

Each passes the choke point with ``"sqlite.open"``, ``"sqlite.delete"`` or
``"sqlite.access"`` and the file's path, once its container is known.
"""

from __future__ import annotations

from typing import Any

import apsw

from .. import paths
from ..errors import NotFoundError
from ..layout import KIND_FILE
from .journal import JournalFile
from .mainfile import MainFile
from .memfile import MemoryFile
from .registry import REGISTRY_LOCK, normal, release, session_for_name, session_for_path
from .session import ContainerSession
from .wal import EmptyWal, WalFile

__all__ = ["VFS_NAME", "CartridgeVFS"]

VFS_NAME = "cartridge"

_ACCESS_READWRITE = 1
_MAIN = apsw.SQLITE_OPEN_MAIN_DB
_WAL = apsw.SQLITE_OPEN_WAL
_READ_WRITE_CREATE = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE


class CartridgeVFS(apsw.VFS):
    """The ``"cartridge"`` VFS.  Files are named by their path inside the
    container; the container comes from the ``cartridge=`` URI parameter (or,
    for journals and WAL files, from the database they belong to)."""

    def __init__(self) -> None:
        super().__init__(VFS_NAME, "")

    def xFullPathname(self, name: str) -> str:  # noqa: N802 - SQLite's name
        return paths.normalize(name)

    def xOpen(self, name: Any, flags: list[int]) -> Any:  # noqa: N802
        inflags = flags[0]
        if name is None:
            flags[1] = inflags
            return MemoryFile()
        with REGISTRY_LOCK:
            if isinstance(name, apsw.URIFilename):
                inner = paths.normalize(name.filename())
                cart_path = name.uri_parameter("cartridge")
                if cart_path is not None:
                    session = session_for_path(cart_path, inflags)
                else:
                    session = session_for_name(inner)
            else:
                inner = normal(name)
                session = session_for_name(inner)
            session.refs += 1
            try:
                return self._open(session, inner, inflags, flags)
            except BaseException:
                release(session)
                raise

    def _open(self, session: ContainerSession, inner: str, inflags: int,
              flags: list[int]) -> Any:
        cart = session.cart
        with session.op("sqlite.open", inner):
            readonly = not session.writable or bool(inflags & apsw.SQLITE_OPEN_READONLY)
            if not cart.exists(inner):
                if inflags & _WAL and not session.writable:
                    flags[1] = (inflags & ~_READ_WRITE_CREATE) | apsw.SQLITE_OPEN_READONLY
                    return EmptyWal(session, inner[: -len("-wal")])
                if readonly or not inflags & apsw.SQLITE_OPEN_CREATE:
                    raise apsw.CantOpenError(
                        f"cartridge VFS: {inner} does not exist in {cart.path}"
                        + (" (the container is open read-only)" if not session.writable else ""))
                cart.write(inner, b"")
                session.exists[inner] = True
            elif inflags & apsw.SQLITE_OPEN_EXCLUSIVE:
                raise apsw.CantOpenError(f"cartridge VFS: {inner} already exists")
        out = inflags
        if readonly:
            out = (out & ~_READ_WRITE_CREATE) | apsw.SQLITE_OPEN_READONLY
        flags[1] = out
        if inflags & _MAIN:
            return MainFile(session, inner, inflags, readonly)
        if inflags & _WAL:
            return WalFile(session, inner, inflags, readonly)
        return JournalFile(session, inner, inflags, readonly)

    def xDelete(self, name: str, syncdir: bool) -> None:  # noqa: N802
        inner = normal(name)
        with REGISTRY_LOCK:
            session = session_for_name(inner)
        with session.op("sqlite.delete", inner):
            if session.finished:
                return  # after the exit hook (see shutdown.py): change nothing
            if not session.writable:
                raise apsw.ReadOnlyError(
                    f"cartridge VFS: {session.cart.path} is open read-only")
            session.forget(inner)
            try:
                session.cart.delete(inner)
            except NotFoundError:
                return  # like unlink of a missing file: nothing to delete, nothing to commit
            if inner.endswith("-journal"):
                txn = session.txns.get(inner[: -len("-journal")])
                if txn is not None:
                    txn.journal_live = False
            # Deleting a journal or WAL file is a commit point of SQLite's.
            session.commit()

    def xAccess(self, name: str, flags: int) -> bool:  # noqa: N802
        inner = normal(name)
        with REGISTRY_LOCK:
            try:
                session = session_for_name(inner)
            except apsw.CantOpenError:
                return False
        with session.op("sqlite.access", inner):
            cart = session.cart
            if cart.closed:
                return False
            if session.writable:
                # Only this process changes a container it writes, and every
                # SQLite file it creates or deletes goes through this VFS.
                known = session.exists.get(inner)
                if known is None:
                    entry = cart.txn.entry(inner)
                    known = session.exists[inner] = entry is not None and entry.kind == KIND_FILE
                return known
            # A read-only handle moved to the newest commit at the SHARED lock.
            entry = cart.txn.entry(inner)
            if entry is None or entry.kind != KIND_FILE:
                return False
            return flags != _ACCESS_READWRITE
