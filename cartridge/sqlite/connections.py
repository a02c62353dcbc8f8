"""How a user gets a SQLite connection on a database inside a container.

Three calls, all a user needs: :func:`register` puts the VFS into apsw's
SQLite (idempotent, so every entry point may call it), :func:`uri` names a
database inside a container the way SQLite's URI syntax wants it, and
:func:`connect` does both and opens an ``apsw.Connection``.  Python's
``sqlite3`` module cannot use the VFS: it links a different SQLite library.

:func:`connect` takes a container path (the VFS opens the container itself,
read-write unless another process writes it) or an open
:class:`~cartridge.Cartridge` the caller owns; SQLite then shares that
handle, and every SQLite commit also commits the handle's other pending
changes.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

import apsw

from .. import paths
from ..container import Cartridge
from .registry import REGISTRY_LOCK, release, session_for_cart, session_for_path
from .vfs import VFS_NAME, CartridgeVFS

__all__ = ["register", "unregister", "uri", "connect"]

_VFS: CartridgeVFS | None = None


def register() -> str:
    """Register the ``"cartridge"`` VFS with SQLite (idempotent); return its name."""
    global _VFS
    with REGISTRY_LOCK:
        if _VFS is None or VFS_NAME not in apsw.vfs_names():
            _VFS = CartridgeVFS()
    return VFS_NAME


def unregister() -> None:
    """Remove the VFS (connections using it must be closed first)."""
    global _VFS
    with REGISTRY_LOCK:
        if _VFS is not None:
            _VFS.unregister()
            _VFS = None


def uri(container: str | os.PathLike[str], db_path: str, **params: str) -> str:
    """The SQLite URI naming database ``db_path`` inside ``container``."""
    query = {"vfs": VFS_NAME, "cartridge": os.path.realpath(os.fspath(container)), **params}
    return "file:" + urllib.parse.quote(paths.normalize(db_path)) + "?" + \
        urllib.parse.urlencode(query, quote_via=urllib.parse.quote)


def connect(cart_or_path: Cartridge | str | os.PathLike[str], db_path: str, *,
            readonly: bool = False, create: bool = True, timeout: float = 5.0,
            flags: int | None = None, **kwargs: Any) -> apsw.Connection:
    """Open the SQLite database ``db_path`` inside a container.

    Parameters
    ----------
    cart_or_path:
        A container path (opened read-write when no other process writes it,
        created if missing and ``create``; read-only otherwise) or an open
        :class:`~cartridge.Cartridge` you own — then SQLite shares your handle,
        and a SQLite commit also commits your handle's pending changes.
    db_path:
        The database's path inside the container, e.g. ``"/db/app.db"``.
    readonly:
        Open the database read-only.
    create:
        Create the database (and the container) when missing.
    timeout:
        SQLite busy timeout in seconds (how long to wait for locks).
    flags:
        Explicit SQLite open flags (overrides ``readonly``/``create``).
    kwargs:
        Passed to :class:`apsw.Connection` (e.g. ``statementcachesize``).
    """
    register()
    if flags is None:
        flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE
        if create and not readonly:
            flags |= apsw.SQLITE_OPEN_CREATE
    flags |= apsw.SQLITE_OPEN_URI
    with REGISTRY_LOCK:
        if isinstance(cart_or_path, Cartridge):
            session = session_for_cart(cart_or_path)
            path = cart_or_path.path
        else:
            path = os.fspath(cart_or_path)
            session = session_for_path(path, flags)
        session.refs += 1  # held while the connection opens
    try:
        conn = apsw.Connection(uri(path, db_path), flags=flags, vfs=VFS_NAME, **kwargs)
    finally:
        with REGISTRY_LOCK:
            release(session)
    conn.set_busy_timeout(int(timeout * 1000))
    return conn
