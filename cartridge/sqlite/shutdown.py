"""Interpreter exit: close what SQLite left open while Python still works.

A script that leaves a connection open and calls ``sys.exit(0)`` expects its
committed transactions kept and a quiet exit.  Left alone, the connection is
collected while the interpreter tears its modules down: its ``xClose`` then
commits the container, the commit reaches code that imports lazily, and the
import fails (``ImportError: sys.meta_path is None``) with a traceback and,
worse, without committing; with ``synchronous=NORMAL`` in WAL mode SQLite's
last transactions live only in that pending container transaction and are
lost.

So the package registers :func:`close_all` with :mod:`atexit` when it is
imported.  Exit handlers run before module teardown, in reverse order of
registration, so handlers a program registers after importing
``cartridge.sqlite`` still see their databases open.  :func:`close_all`:

1. closes every apsw connection that uses the VFS (``close(force=True)``):
   SQLite rolls back a transaction still open, which is the transactional
   rule (uncommitted work is not kept), and closing the database commits the
   container as a normal close does, so everything SQLite committed is
   durable;
2. commits each container session that is still open (a connection another
   thread holds, say), marks it finished, so that whatever the teardown
   collects later commits nothing and imports nothing, and closes the
   containers the VFS opened itself;
3. removes this process's wal-index directory.

A forked child runs the same hook when it exits normally, and may hold
connections and sessions inherited from its parent.  Those are the parent's:
the child marks them finished before it closes the connections: no commit,
no file deleted, and no lock released through the open file descriptions it
shares with the parent.  Sessions it opened itself are committed as usual.

A failure there cannot be raised to anyone; it becomes a warning naming the
container, never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import warnings

import apsw

from .registry import REGISTRY_LOCK, SESSIONS
from .session import ContainerSession
from .vfs import VFS_NAME
from .walindex import remove_placeholder_dir

__all__ = ["close_all"]

_FILE_CLASS_PREFIX = __name__.rsplit(".", 1)[0] + "."
"""apsw names a database's VFS after its Python file class (``vfsname``)."""

_LOCK_WAIT = 5.0
"""Seconds to wait for a session another thread is using."""


def close_all() -> None:
    """Close the VFS's connections and sessions (the :mod:`atexit` hook)."""
    pid = os.getpid()
    with REGISTRY_LOCK:
        sessions = list(SESSIONS.values())
    inherited = [s for s in sessions if s.pid != pid]
    for session in inherited:
        session.finished = True
    for conn in apsw.connections():
        if _uses_vfs(conn):
            with contextlib.suppress(Exception):
                conn.close(True)
    for session in sessions:
        if session.pid == pid:
            _finish(session)
    with REGISTRY_LOCK:
        SESSIONS.clear()
    remove_placeholder_dir()


def _uses_vfs(conn: apsw.Connection) -> bool:
    try:
        if conn.open_vfs == VFS_NAME:
            return True
        return any((conn.vfsname(db) or "").startswith(_FILE_CLASS_PREFIX)
                   for db in conn.db_names())
    except apsw.Error:
        return False  # closed meanwhile


def _finish(session: ContainerSession) -> None:
    """Commit a session a last time, then make it inert."""
    cart = session.cart
    if not session.lock.acquire(timeout=_LOCK_WAIT):
        session.finished = True
        warnings.warn(f"cartridge.sqlite: {cart.path} was busy in another thread at "
                      "exit; its SQLite changes since the last commit are not kept",
                      RuntimeWarning, stacklevel=1)
        return
    try:
        if session.writable and not cart.closed:
            session.commit()
        if session.own:
            cart.close()
    except Exception as exc:  # noqa: BLE001 - nobody to raise to at exit
        warnings.warn(f"cartridge.sqlite: committing {cart.path} at exit failed: {exc}",
                      RuntimeWarning, stacklevel=1)
    finally:
        session.finished = True
        session.lock.release()
