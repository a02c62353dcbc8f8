"""Reads, writes, sizes and syncs of a file stored in the container.

Every named file SQLite opens through the VFS (database, journal, WAL) is a
file inside the container, and the classes for each kind (:mod:`.mainfile`,
:mod:`.journal`, :mod:`.wal`) share the byte-moving methods here.  Three
ideas carry them:

* **Reads are views.**  A read inside one chunk returns a memoryview of the
  mapped pages (:class:`.FileState` knows where chunks lie); only holes,
  inline files, compressed or sealed chunks and reads across chunks go
  through :meth:`Cartridge.read`.  So a read costs O(bytes read) whatever
  the size of the database.
* **Writes are buffered** in the file's :class:`.FileState` and applied by
  :mod:`.writeback` at the next commit point, at a read that overlaps them,
  at a truncate, or when 32 MiB wait; a read-only handle refuses them.
* **A sync is a commit point** unless the file kind says otherwise
  (:meth:`StoredFile._sync_commits`): syncing is how SQLite asks for
  durability, and the container gives it only by committing.

Every operation runs as ``with session.op(action, path):``: it passes the
choke point once, with ``"sqlite.read"``, ``"sqlite.write"``,
``"sqlite.truncate"`` or ``"sqlite.sync"`` (``xFileSize`` is bookkeeping and
does not), and the handle calls its body makes (a flush through
``write_at``, a commit) are part of it, not operations of their own.
"""

from __future__ import annotations

from typing import Any

import apsw

from .basefile import UnlockedFile
from .filestate import FileState
from .registry import REGISTRY_LOCK, release
from .session import BUFFER_LIMIT, ContainerSession

__all__ = ["StoredFile"]

_UNKNOWN = (-1, -1)
"""A chunk whose location is not cached yet (``None`` is cached: no location)."""


class StoredFile(UnlockedFile):
    """The byte-moving methods of a container file (see the module docstring).

    Subclasses call :meth:`_setup` from their ``__init__``.
    """

    session: ContainerSession
    inner: str
    st: FileState

    def _setup(self, session: ContainerSession, inner: str, readonly: bool) -> None:
        self.session = session
        self.follow = not session.writable
        """Read-only handles: chunk positions follow the commit the handle reads."""
        self.inner = inner
        self.readonly = readonly
        self.closed = False
        st = session.files.get(inner)
        if st is None:
            with session.lock:
                st = session.file_state(inner)
        self.st = st

    def _state(self) -> FileState:
        """The file's current state: again after a delete, reloaded after the
        read-only handle moved to a newer commit."""
        st = self.st
        session = self.session
        if ((self.follow and st.epoch != session.cart.generation)
                or session.files.get(self.inner) is not st):
            current = session.files.get(self.inner)
            if current is None:
                current = session.file_state(self.inner)
            elif current.epoch != session.epoch:
                session.reload(current)
            self.st = st = current
        return st

    def xRead(self, amount: int, offset: int) -> Any:  # noqa: N802 - SQLite's name
        """The hot path: a memoryview of the mapped bytes when they lie in one chunk."""
        session = self.session
        with session.op("sqlite.read", self.inner):
            st = self.st
            if not st.live or (self.follow and st.epoch != session.cart.generation):
                st = self._state()
            end = offset + amount
            if st.buf and offset < st.hi and end > st.lo:
                session.flush()
            if end <= st.stored:
                index = offset >> st.shift
                loc = st.chunks.get(index, _UNKNOWN)
                if loc is _UNKNOWN:
                    loc = None if st.inline else session.locate(st, index)
                if loc is not None:
                    lo = offset & st.mask
                    if lo + amount <= loc[1]:
                        pos = loc[0] + lo
                        return session.file.view[pos : pos + amount]
            # Inline files, holes, reads across chunks or past the end.
            return session.cart.read(self.inner, offset, amount)

    def xWrite(self, data: bytes, offset: int) -> None:  # noqa: N802
        """Buffer the write (see :mod:`.writeback`)."""
        session = self.session
        n = len(data)
        end = offset + n
        with session.op("sqlite.write", self.inner):
            if self.readonly:
                raise apsw.ReadOnlyError(f"cartridge VFS: {self.inner} is open read-only")
            st = self.st
            if not st.live:
                st = self._state()
            buf = st.buf
            if buf:
                if offset < st.lo:
                    st.lo = offset
                if end > st.hi:
                    st.hi = end
            else:
                st.lo, st.hi = offset, end
            buf.append((offset, data))
            if end > st.size:
                st.size = end
            session.buffered += n
            if session.buffered > BUFFER_LIMIT:
                session.flush()
            self._wrote()

    def _wrote(self) -> None:
        """Called after each write or truncate (the main file records it)."""
        return None

    def xTruncate(self, size: int) -> None:  # noqa: N802
        session = self.session
        with session.op("sqlite.truncate", self.inner):
            if self.readonly:
                raise apsw.ReadOnlyError(f"cartridge VFS: {self.inner} is open read-only")
            st = self._state()
            if size != st.size:
                session.flush()
                session.cart.truncate(self.inner, size)
                session.reload(st)
                self._wrote()

    def xFileSize(self) -> int:  # noqa: N802
        with self.session.lock:
            return self._state().size

    def xSync(self, flags: int) -> None:  # noqa: N802
        session = self.session
        with session.op("sqlite.sync", self.inner):
            if session.writable and self._sync_commits():
                session.commit()

    def _sync_commits(self) -> bool:
        """Is an ``xSync`` of this file a commit point?  (Yes unless a subclass
        knows better.)"""
        return True

    def _close(self) -> None:
        """Release the session (the last file of a session commits it)."""
        if self.closed:
            return
        self.closed = True
        with REGISTRY_LOCK:
            release(self.session)
