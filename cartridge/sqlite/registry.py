"""The process-wide tables: which containers SQLite has open, and how a file
SQLite names by its path alone finds its container.

SQLite hands the VFS a URI with ``cartridge=/path/to.cart`` only when it
opens a main database.  Journals, WAL files and super-journals it opens,
probes (``xAccess``) and deletes by name alone, ``/db/app.db-journal``, and a
name does not say which container it is in.  This module resolves it:

* :data:`SESSIONS` maps a container's real path to its
  :class:`.ContainerSession` (one per container per process);
* :data:`DB_OWNERS` maps a database path to the sessions that have it open,
  once per open main file;
* :data:`LOCAL` remembers, per thread, the container whose database the
  thread used last.  SQLite opens, probes and deletes a database's journal
  and WAL in the thread that is working on that database, right after
  locking it, so this resolves a journal name to the right container even
  when two containers hold databases at the same path.  A name that stays
  ambiguous raises ``CantOpenError`` with what to do, never guesses.

Sessions are reference-counted by the VFS files open on them
(:func:`acquire`, :func:`release`); a session the VFS opened itself closes
its container when the last file closes.  :data:`REGISTRY_LOCK` guards all of
these tables; a session's own lock guards the session.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import apsw

from .. import paths
from ..container import Cartridge
from ..container import open as open_container
from ..errors import CorruptionError, LockedError
from .session import ContainerSession

__all__ = ["SESSIONS", "DB_OWNERS", "MAIN_FILES", "REGISTRY_LOCK", "LOCAL", "session_for_path",
           "session_for_cart", "session_for_name", "release", "remember", "normal"]

SESSIONS: dict[str, ContainerSession] = {}
"""Container real path -> the session of this process on it."""
REGISTRY_LOCK = threading.RLock()
DB_OWNERS: dict[str, list[ContainerSession]] = {}
"""Inner database path -> the containers that have it open, once per open
main file (journal and WAL files are named after their database path alone)."""
MAIN_FILES: dict[tuple[int, str], Any] = {}
"""(id of session, database path) -> its open main database file (for tests
and diagnostics: the VFS itself does not look files up here)."""

LOCAL = threading.local()
"""Per thread: ``recent`` maps a database path to the session whose main file
this thread used last, ``session`` is the last session used."""

_OPEN_RETRIES = 5


def session_for_path(cart_path: str, flags: int) -> ContainerSession:
    """The session of a container, opening it the way SQLite's flags ask:
    read-only for a read-only open, or when another process writes it."""
    real = os.path.realpath(cart_path)
    session = SESSIONS.get(real)
    if session is not None and not session.cart.closed:
        return session
    if flags & apsw.SQLITE_OPEN_READONLY:
        cart = _open_reader(real)
    else:
        mode = "a" if flags & apsw.SQLITE_OPEN_CREATE else "r+"
        try:
            cart = open_container(real, mode)
        except LockedError:
            cart = _open_reader(real)
    session = SESSIONS[real] = ContainerSession(cart, own=True)
    return session


def session_for_cart(cart: Cartridge) -> ContainerSession:
    """The session on a handle the user passed to ``connect()``."""
    real = os.path.realpath(cart.path)
    session = SESSIONS.get(real)
    if session is not None and session.cart is not cart and not session.cart.closed:
        raise ValueError(f"{real} is already open for SQLite through another handle "
                         "in this process")
    if session is None or session.cart is not cart:
        session = SESSIONS[real] = ContainerSession(cart, own=False)
    return session


def _open_reader(path: str) -> Cartridge:
    """Open a container read-only beside a live writer.

    Opening maps the file and then reads the meta pages; a writer that grows
    the file in between makes the newest meta page describe more pages than
    the mapping holds, which the core reports as corruption.  That race is
    retried a few times; a container that stays unreadable raises.
    """
    attempt = 0
    while True:
        try:
            return open_container(path, "r")
        except CorruptionError:
            attempt += 1
            if attempt >= _OPEN_RETRIES:
                raise
            time.sleep(0.01 * attempt)


def release(session: ContainerSession) -> None:
    """One user of ``session`` is done; the last one commits and, when the VFS
    opened the container, closes it.  Call with :data:`REGISTRY_LOCK` held."""
    session.refs -= 1
    if session.refs <= 0:
        real = os.path.realpath(session.cart.path)
        if SESSIONS.get(real) is session:
            del SESSIONS[real]
        if session.writable and not session.cart.closed:
            with session.op("sqlite.sync"):  # the session's last file closed
                session.commit()
        if session.own and not session.finished:
            session.cart.close()


def remember(session: ContainerSession, inner: str) -> None:
    """Note that this thread is working on database ``inner`` of ``session``."""
    recent = getattr(LOCAL, "recent", None)
    if recent is None:
        recent = LOCAL.recent = {}
    recent[inner] = session
    LOCAL.session = session


def session_for_name(name: str) -> ContainerSession:
    """The container of a file SQLite names by its path alone (see above)."""
    base = name
    for suffix in ("-journal", "-wal", "-mj"):
        if suffix in name:
            base = name.rsplit(suffix, 1)[0]
            break
    owners = DB_OWNERS.get(base)
    if owners:
        recent = getattr(LOCAL, "recent", None)
        session = recent.get(base) if recent else None
        if session is not None and session in owners:
            return session
        if all(s is owners[0] for s in owners):
            return owners[0]
        raise apsw.CantOpenError(
            f"cartridge VFS: {base} is open in several containers and this thread "
            "has used none of them; open it through connect() or a cartridge= URI")
    session = getattr(LOCAL, "session", None)
    if base == name and session is not None and not session.cart.closed:
        return session  # e.g. ATTACH of another database in the same container
    raise apsw.CantOpenError(
        f"cartridge VFS: {name} belongs to no open database; open databases "
        "with cartridge.sqlite.connect() or a URI with cartridge=/path/to.cart")


_NORMAL: dict[str, str] = {}


def normal(name: str) -> str:
    """``paths.normalize``, remembered (SQLite asks about the same few names)."""
    got = _NORMAL.get(name)
    if got is None:
        if len(_NORMAL) > 4096:
            _NORMAL.clear()
        got = _NORMAL[name] = paths.normalize(name)
    return got
