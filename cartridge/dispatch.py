"""The choke point: one place every operation passes before it changes anything.

Access control, an audit trail, metrics and the S3 server all need to see
each operation with *what* it is (an action name), *where* (the container
paths it names) and *who* asks (the principal and context of the handle).
Rather than sprinkle checks over every method, each public operation of a
handle (files, directories, metadata, arrays and datasets, snapshots,
compaction, copy, rekey, SQLite file access through the VFS, and so every CLI
command) calls :meth:`Hooks.dispatch` once, before any state changes.  That is
SQLite's authorizer callback and Django's middleware chain: one hook point,
every statement.

Hooks are plain callables ``hook(op)`` run in the order they were added.  A
hook that raises refuses the operation: the exception reaches the caller and
nothing has changed (dispatch runs before the operation touches the
transaction).  A hook must not call back into the handle.

Action names are dotted, ``<noun>.<verb>``; :data:`ACTIONS` lists them all, so
a policy engine can validate what it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["ACTIONS", "Hook", "Hooks", "Operation"]

#: Every action a handle dispatches, with what it does.
ACTIONS: Mapping[str, str] = MappingProxyType({
    "file.read": "read bytes of a file (read, open_file 'rb', file objects)",
    "file.write": "create or replace a file (write; open_file 'wb' creates it empty)",
    "file.append": "append to a file (append)",
    "file.write_at": "write into an existing file at an offset (write_at, and the writes of "
                     "file objects from open_file 'wb', 'ab' and 'r+b')",
    "file.truncate": "cut or extend a file",
    "file.delete": "remove a file",
    "file.open": "open a file object (the mode decides which read/write action follows)",
    "dir.create": "create a directory (mkdir)",
    "dir.delete": "remove an empty directory (rmdir)",
    "dir.list": "list a directory or a name prefix (list, walk)",
    "path.rename": "move a file or directory; paths are (source, destination)",
    "path.exists": "ask whether a path exists",
    "path.stat": "describe a path (stat, is_raw)",
    "path.set_metadata": "replace a path's user metadata",
    "array.write": "store a numpy array (write_array)",
    "array.create": "create a dataset (create_dataset)",
    "array.open": "open a Dataset handle (array)",
    "array.view": "take a zero-copy view of an array",
    "array.read": "read elements of a Dataset",
    "array.update": "assign elements of a Dataset",
    "array.resize": "resize or append to a Dataset",
    "array.set_attrs": "replace a Dataset's attributes",
    "container.info": "summarize the container",
    "container.verify": "check every reachable page",
    "container.commit": "make pending changes durable",
    "container.rollback": "discard pending changes",
    "container.refresh": "move a read-only handle to the newest commit",
    "container.reader": "start a read transaction",
    "container.readers": "list the reader table",
    "container.clear_stale_readers": "empty the slots of dead readers",
    "container.compact": "move pages down and shrink the file",
    "container.copy": "write the current commit to a new container; paths are (dest,)",
    "container.rekey": "re-encrypt under a new key",
    "container.mapping": "expose the memory map as an array",
    "snapshot.create": "take a named snapshot; paths are (name,)",
    "snapshot.list": "list snapshots",
    "snapshot.delete": "delete a snapshot; paths are (name,)",
    "snapshot.restore": "make a commit equal to a snapshot; paths are (name,)",
    "snapshot.diff": "compare two states; paths are the snapshot names given",
    "sqlite.open": "open a database file through the SQLite VFS",
    "sqlite.read": "read pages of a database file through the VFS",
    "sqlite.write": "write pages of a database file through the VFS",
    "sqlite.truncate": "truncate a database file (journal, WAL) through the VFS",
    "sqlite.sync": "sync a database file, or reach another of SQLite's commit points (lock "
                   "release, journal finalization, last close), through the VFS",
    "sqlite.delete": "delete a database file (journal, WAL) through the VFS",
    "sqlite.access": "ask whether a database file exists through the VFS",
})


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation about to run, as hooks see it."""

    action: str
    """Dotted action name, one of :data:`ACTIONS`."""
    paths: tuple[str, ...]
    """The container paths (or snapshot names, or a copy's destination) it names."""
    principal: str | None = None
    """Who asks: the ``principal=`` the handle was opened with (None: anonymous)."""
    context: Mapping[str, Any] = field(default_factory=dict)
    """Extra facts about the caller (``context=`` of the handle), for conditions."""
    container: str = ""
    """Filesystem path of the container."""


Hook = Callable[[Operation], None]


class Hooks:
    """An ordered list of hooks, and the dispatch that runs them.

    ``dispatch`` is on every call's path, so with no hooks it costs one
    attribute test and builds nothing.
    """

    __slots__ = ("_hooks",)

    def __init__(self) -> None:
        self._hooks: tuple[Hook, ...] = ()

    def add(self, hook: Hook) -> None:
        """Run ``hook(op)`` after the hooks already added."""
        if not callable(hook):
            raise TypeError(f"a hook must be callable, got {hook!r}")
        self._hooks = (*self._hooks, hook)

    def remove(self, hook: Hook) -> None:
        """Stop running ``hook`` (ValueError if it was never added)."""
        hooks = list(self._hooks)
        hooks.remove(hook)
        self._hooks = tuple(hooks)

    def __len__(self) -> int:
        return len(self._hooks)

    def __iter__(self) -> Any:
        return iter(self._hooks)

    def dispatch(self, action: str, paths: tuple[str, ...], principal: str | None,
                 context: Mapping[str, Any], container: str) -> None:
        """Run every hook on one operation; the first that raises refuses it."""
        if not self._hooks:
            return
        op = Operation(action, paths, principal, context, container)
        for hook in self._hooks:
            hook(op)
