"""One container as this process's SQLite files see it.

All connections of a process to databases in one container share one
:class:`~cartridge.Cartridge` handle, because a container has one writer
handle per process and because connections must see one another's pending
writes (SQLite's own locks, not the container, keep them apart).  A
:class:`ContainerSession` is that shared handle plus what the VFS keeps
about it:

* the per-file state (:class:`.FileState`: chunk locations, buffered writes)
  shared by every open VFS file on a file;
* which SQLite files exist, for writable handles (only this process changes a
  container it writes, and every file SQLite creates or deletes passes
  through the VFS, so ``xAccess`` need not ask the catalog twice);
* per database, the :class:`TxnState` the commit rule needs;
* the descriptors holding WAL-owner bytes (see :mod:`.locks`);
* how many buffered bytes wait, so a large transaction is flushed (not
  committed) every 32 MiB instead of growing without bound.

**The choke point.**  Every VFS file operation on a container file runs as
``with session.op(action, path):`` (:meth:`Environment.operation`), with an
action name
(``"sqlite.open"``, ``"sqlite.read"``, ``"sqlite.write"``,
``"sqlite.truncate"``, ``"sqlite.sync"``, ``"sqlite.delete"``,
``"sqlite.access"``) and the file's path inside the container: that is the
environment's dispatch, where access control and audit hooks attach.  The
body runs under the handle's lock as part of that one operation: the handle
calls it makes (``read``, ``write_at``, ``commit``...) are not dispatched
again.  Reads pass it once per ``xRead``; it is bound once here so the hot
path pays one call and no attribute walk.

**Commits** all go through :meth:`ContainerSession.commit`: flush the
buffered writes, then commit the handle.  *When* to commit is decided by the
file classes (see the package docstring); at interpreter exit
:mod:`.shutdown` commits a last time and marks the session finished, after
which commits are no-ops, so nothing runs while the interpreter tears its
modules down.
"""

from __future__ import annotations

import os

from ..container import Cartridge
from .filestate import FileState

__all__ = ["ContainerSession", "TxnState", "BUFFER_LIMIT"]

BUFFER_LIMIT = 32 << 20
"""Buffered write bytes per container that trigger a flush (not a commit)."""


class TxnState:
    """What the commit rule needs to know about one database's current write
    transaction, shared by the connections of this process (one of them at a
    time holds RESERVED)."""

    __slots__ = ("db_written", "journal_live")

    def __init__(self) -> None:
        self.db_written = False
        """A database page was written since the last unlock."""
        self.journal_live = False
        """Its rollback journal holds a live header: the journal's finalization
        (delete, truncate to 0, zeroed header) is the commit point, not xSync."""


class ContainerSession:
    """The handle this process's SQLite files share on one container.

    Parameters
    ----------
    cart:
        The open container.
    own:
        True when the VFS opened ``cart`` (it closes it when the last file
        closes); False for a handle the user passed to ``connect()``.
    """

    def __init__(self, cart: Cartridge, own: bool) -> None:
        self.cart = cart
        self.own = own
        self.refs = 0
        """Open VFS files (and connections being opened) using this session."""
        env = cart.env
        self.file = env.file
        """The handle's mapped file (its ``view`` follows remaps): read once
        here because ``xRead`` is the hot path."""
        self.lock = env.lock
        """The handle's lock: every VFS operation on the container holds it."""
        self.op = env.operation
        """``with op(action, inner_path):`` the choke point, then the body under the
        handle's lock as that one operation (see the module docstring)."""
        self.writable = cart.mode != "r"
        self.files: dict[str, FileState] = {}
        self.wal: dict[str, list[int]] = {}
        """Per WAL database: [descriptor holding the WAL-owner lock, users]."""
        self.txns: dict[str, TxnState] = {}
        """Per database path: see :class:`TxnState`."""
        self.exists: dict[str, bool] = {}
        """Which SQLite files exist (writable handles only; kept by xOpen/xDelete)."""
        self.buffered = 0
        """Bytes of writes buffered in ``FileState.buf`` across files."""
        self.finished = False
        """Set at interpreter exit, after the last commit (or at once in a
        forked child, for a session inherited from its parent): commits are
        no-ops and SQLite's locks are left as they are."""
        self.pid = os.getpid()
        """The process the session belongs to (a forked child inherits it)."""

    @property
    def epoch(self) -> int:
        """What cached chunk maps depend on: the commit a read-only handle
        reads (a writable handle's maps follow its own writes)."""
        return 0 if self.writable else self.cart.generation

    def file_state(self, inner: str) -> FileState:
        """The shared state of file ``inner``, created on first use."""
        st = self.files.get(inner)
        if st is None:
            st = self.files[inner] = FileState(self.cart, self.epoch, inner)
        return st

    def reload(self, st: FileState) -> None:
        """Read ``st``'s entry again (after a truncate, or a newer commit)."""
        st.reload(self.cart, self.epoch)

    def locate(self, st: FileState, index: int) -> tuple[int, int] | None:
        """Where chunk ``index`` of ``st`` lies in the map (see :meth:`FileState.locate`)."""
        return st.locate(self.cart, index)

    def forget(self, inner: str) -> None:
        """File ``inner`` is being deleted: drop its state and buffered writes."""
        self.exists[inner] = False
        st = self.files.pop(inner, None)
        if st is not None:
            st.live = False
            self.buffered -= st.discard()

    def refresh(self) -> None:
        """Move a read-only handle to the newest commit (at a SHARED lock)."""
        if not self.writable:
            self.cart.refresh()

    def flush(self) -> None:
        """Apply every file's buffered writes (all at once: whatever a commit
        captures is a prefix of SQLite's writes)."""
        self.buffered = 0
        epoch = self.epoch
        for st in list(self.files.values()):
            if st.buf:
                st.flush(self.cart, epoch)

    def commit(self) -> None:
        """Flush, then commit the handle: one atomic, durable container commit."""
        if self.finished:
            return
        if self.buffered:
            self.flush()
        self.cart.commit()
