"""Where the wal-index lives: a private directory of this process.

A WAL database needs shared memory, the wal-index (SQLite's ``xShm*``
methods), that every connection of the database maps.  Those methods cannot
be written in Python: apsw forwards them to the file a Python VFS file
inherits from.  So each main database file of ours inherits from a unix-VFS
file opened on an empty *placeholder* here, and the unix VFS keeps the
wal-index beside it (``<placeholder>-shm``).  Nothing else is ever read or
written through the placeholder.

The directory is private to one process, named ``cartridge-sqlite-shm-<pid>-*``
in the temp directory, which is why WAL is shared between the connections
of one process only (see :mod:`.locks` for how a second process is kept
out).  It is removed at interpreter exit (:mod:`.shutdown`); the directories
of processes that died without running exit handlers (SIGKILL) are removed by
the next process that needs one, recognised by their dead owner's pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

__all__ = ["placeholder_dir", "remove_placeholder_dir"]

_PREFIX = "cartridge-sqlite-shm-"
_DIR: str | None = None
_OWNER = 0
"""The pid that made ``_DIR`` (a forked child must not remove its parent's)."""


def placeholder_dir() -> str:
    """This process's directory for placeholders and wal-index files."""
    global _DIR, _OWNER
    if _DIR is None:
        _remove_dead_dirs()
        _DIR = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")
        _OWNER = os.getpid()
    elif not os.path.isdir(_DIR):  # removed by a temp-file cleaner
        os.makedirs(_DIR, 0o700, exist_ok=True)
    return _DIR


def remove_placeholder_dir() -> None:
    """Remove this process's directory (at exit, once no database is open)."""
    global _DIR
    if _DIR is not None and _OWNER == os.getpid():
        shutil.rmtree(_DIR, ignore_errors=True)
        _DIR = None


def _remove_dead_dirs() -> None:
    """Delete the directories of processes that died without exit handlers."""
    root = tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for name in os.listdir(root):
            if not name.startswith(_PREFIX):
                continue
            pid = name[len(_PREFIX):].split("-", 1)[0]
            if not pid.isdigit():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            except OSError:
                continue
