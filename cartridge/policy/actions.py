"""The ``cart:`` action vocabulary, and what each choke-point action needs.

Policies speak of *permissions* (``cart:ReadFile``), the handle speaks of
*operations* (``file.read``, ``array.view``, ``sqlite.read``): many operations
need the same permission, and one operation may need several checks
(``path.rename`` needs ``cart:Rename`` on its source and on its destination).
:data:`REQUIRED` is the one table between the two; ``tests/test_policy.py``
fails when ``cartridge.dispatch.ACTIONS`` gains an operation it does not map.
:func:`checks` turns one dispatched operation into the ``(action, resource)``
pairs to evaluate.

The vocabulary is closed.  A policy naming ``cart:Raed`` is refused when it
is read, and a wildcard that names no action (``cart:Frobnicate*``) too: a
misspelt Deny that silently denies nothing is the failure this prevents.
``s3:`` names are accepted for the S3 server's sake and translated through a
small table (:data:`S3_ACTIONS`); ``s3:*`` therefore covers only the
permissions that have an S3 name.

Resources.  A path operation is checked on its normalized container path
(``/a/b``).  Operations on the container as a whole (info, verify, compact,
copy, rekey, policies, users, audit) are checked on ``/``, the root standing
for the container, so ``"Resource": "*"`` or ``"/*"`` reaches them and
``"/home/*"`` does not.  A snapshot is ``snapshot:NAME``.  SQLite's journal
and WAL files are checked as the database they belong to, so a statement on
``/db.sqlite`` also governs ``/db.sqlite-wal``.

Transaction control (commit, rollback, refresh, starting a read transaction,
and SQLite's commit points) needs no permission of its own: it makes durable,
or discards, changes each of which was checked when it was made.  Were commit
a permission, a policy that does not grant it could never be committed by the
handle that set it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .matching import Pattern

__all__ = ["CART_ACTIONS", "CONTAINER", "REQUIRED", "S3_ACTIONS", "Requirement",
           "canonical_action", "checks", "resolve_actions"]

#: The resource that stands for the container itself.
CONTAINER = "/"

#: Every permission a policy can name, with what it governs.
CART_ACTIONS: Mapping[str, str] = MappingProxyType({
    "cart:ReadFile": "read a file's bytes, an array's elements or a view, a database's pages",
    "cart:WriteFile": "create, replace, append to, write into or truncate a file, array or "
                      "database",
    "cart:DeleteFile": "remove a file (or a database's journal)",
    "cart:ListDirectory": "list a directory or a name prefix",
    "cart:GetMetadata": "stat a path, ask whether it exists, open a file or a Dataset handle",
    "cart:SetMetadata": "replace a path's user metadata or a Dataset's attributes",
    "cart:CreateDirectory": "make a directory",
    "cart:DeleteDirectory": "remove an empty directory",
    "cart:Rename": "move a file or directory (checked on source and destination)",
    "cart:CreateSnapshot": "take a named snapshot",
    "cart:ListSnapshots": "list snapshots",
    "cart:DeleteSnapshot": "delete a snapshot",
    "cart:RestoreSnapshot": "make the container's contents equal a snapshot's",
    "cart:DiffSnapshots": "compare two states (snapshots or the current one)",
    "cart:GetContainerInfo": "summarize the container, list its reader table",
    "cart:VerifyContainer": "check every reachable page",
    "cart:ClearStaleReaders": "empty the reader-table slots of dead processes",
    "cart:MapContainer": "expose the whole memory map as an array (every byte, raw)",
    "cart:Compact": "move pages down and shrink the file",
    "cart:CopyContainer": "write the current commit to a new container file",
    "cart:Rekey": "re-encrypt under a new key",
    "cart:PutPolicy": "set or remove the container-wide policy",
    "cart:GetPolicy": "read the container-wide policy",
    "cart:ManageUsers": "add or remove users and groups, attach their policies, make access keys",
    "cart:ListUsers": "list users and groups and read their policies",
    "cart:SetAudit": "change the audit level or retention",
    "cart:ReadAudit": "read, verify or export the audit log",
})

_CANONICAL = {name.casefold(): name for name in CART_ACTIONS}

#: ``s3:`` names accepted in policies, and the permission each stands for.
S3_ACTIONS: Mapping[str, str] = MappingProxyType({
    "s3:GetObject": "cart:ReadFile",
    "s3:PutObject": "cart:WriteFile",
    "s3:DeleteObject": "cart:DeleteFile",
    "s3:ListBucket": "cart:ListDirectory",
    "s3:GetObjectAttributes": "cart:GetMetadata",
    "s3:GetObjectTagging": "cart:GetMetadata",
    "s3:PutObjectTagging": "cart:SetMetadata",
    "s3:GetBucketLocation": "cart:GetContainerInfo",
    "s3:GetBucketPolicy": "cart:GetPolicy",
    "s3:PutBucketPolicy": "cart:PutPolicy",
    "s3:DeleteBucketPolicy": "cart:PutPolicy",
})


@dataclass(frozen=True, slots=True)
class Requirement:
    """What one choke-point action needs."""

    actions: tuple[str, ...]
    """The ``cart:`` permissions needed, each on every resource; empty for
    transaction control (see the module notes)."""
    resources: str
    """Where the resources come from: ``"paths"`` (each path of the
    operation), ``"database"`` (each path, journal and WAL suffixes taken
    off), ``"snapshots"`` (``snapshot:NAME`` for each name) or
    ``"container"`` (``/``).  With no path or name, the container."""


def _r(resources: str, *actions: str) -> Requirement:
    return Requirement(actions, resources)


#: Every action of ``cartridge.dispatch.ACTIONS`` and the permissions it needs.
REQUIRED: Mapping[str, Requirement] = MappingProxyType({
    "file.read": _r("paths", "cart:ReadFile"),
    "file.write": _r("paths", "cart:WriteFile"),
    "file.append": _r("paths", "cart:WriteFile"),
    "file.write_at": _r("paths", "cart:WriteFile"),
    "file.truncate": _r("paths", "cart:WriteFile"),
    "file.delete": _r("paths", "cart:DeleteFile"),
    # The reads and writes of the file object are checked one by one.
    "file.open": _r("paths", "cart:GetMetadata"),
    "dir.create": _r("paths", "cart:CreateDirectory"),
    "dir.delete": _r("paths", "cart:DeleteDirectory"),
    "dir.list": _r("paths", "cart:ListDirectory"),
    "path.rename": _r("paths", "cart:Rename"),
    "path.exists": _r("paths", "cart:GetMetadata"),
    "path.stat": _r("paths", "cart:GetMetadata"),
    "path.set_metadata": _r("paths", "cart:SetMetadata"),
    "array.write": _r("paths", "cart:WriteFile"),
    "array.create": _r("paths", "cart:WriteFile"),
    "array.open": _r("paths", "cart:GetMetadata"),
    "array.view": _r("paths", "cart:ReadFile"),
    "array.read": _r("paths", "cart:ReadFile"),
    "array.update": _r("paths", "cart:WriteFile"),
    "array.resize": _r("paths", "cart:WriteFile"),
    "array.set_attrs": _r("paths", "cart:SetMetadata"),
    "container.info": _r("container", "cart:GetContainerInfo"),
    "container.verify": _r("container", "cart:VerifyContainer"),
    "container.commit": _r("container"),
    "container.rollback": _r("container"),
    "container.refresh": _r("container"),
    "container.reader": _r("container"),
    "container.readers": _r("container", "cart:GetContainerInfo"),
    "container.clear_stale_readers": _r("container", "cart:ClearStaleReaders"),
    "container.compact": _r("container", "cart:Compact"),
    # The destination is a file outside the container: the container is the resource.
    "container.copy": _r("container", "cart:CopyContainer"),
    "container.rekey": _r("container", "cart:Rekey"),
    "container.mapping": _r("container", "cart:MapContainer"),
    "snapshot.create": _r("snapshots", "cart:CreateSnapshot"),
    "snapshot.list": _r("container", "cart:ListSnapshots"),
    "snapshot.delete": _r("snapshots", "cart:DeleteSnapshot"),
    "snapshot.restore": _r("snapshots", "cart:RestoreSnapshot"),
    "snapshot.diff": _r("snapshots", "cart:DiffSnapshots"),
    "sqlite.open": _r("database", "cart:ReadFile"),
    "sqlite.read": _r("database", "cart:ReadFile"),
    "sqlite.write": _r("database", "cart:WriteFile"),
    "sqlite.truncate": _r("database", "cart:WriteFile"),
    "sqlite.sync": _r("database"),
    "sqlite.delete": _r("database", "cart:DeleteFile"),
    "sqlite.access": _r("database", "cart:GetMetadata"),
})

_SQLITE_SUFFIXES = ("-journal", "-wal", "-shm")


def _resource(kind: str, name: str) -> str:
    if kind == "snapshots":
        return f"snapshot:{name}"
    if kind == "database":
        for suffix in _SQLITE_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                return name[: -len(suffix)]
    return name


def checks(action: str, paths: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    """The ``(cart action, resource)`` pairs one dispatched operation needs.

    Every pair must be allowed for the operation to proceed.  Raises
    KeyError for an action :data:`REQUIRED` does not know: an unknown
    operation is never let through unchecked.
    """
    need = REQUIRED[action]
    if need.resources == "container" or not paths:
        resources: tuple[str, ...] = (CONTAINER,)
    else:
        resources = tuple(dict.fromkeys(_resource(need.resources, p) for p in paths))
    return tuple((a, r) for a in need.actions for r in resources)


def canonical_action(name: str) -> str:
    """The canonical spelling of a ``cart:`` permission (any case accepted).

    Raises KeyError for a name outside :data:`CART_ACTIONS`.
    """
    return _CANONICAL[name.casefold()]


def resolve_actions(pattern: str) -> frozenset[str]:
    """The permissions an ``Action`` entry of a policy covers.

    ``*``, ``cart:...`` and ``s3:...`` patterns, wildcards allowed, compared
    without regard to case.  Raises ValueError for another service prefix or
    a pattern that covers nothing.
    """
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"an action must be a non-empty string, got {pattern!r}")
    if pattern == "*":
        return frozenset(CART_ACTIONS)
    service, sep, _ = pattern.partition(":")
    matcher = Pattern.parse(pattern, variables=False, ignore_case=True)
    if sep and service.casefold() == "cart":
        found = frozenset(a for a in CART_ACTIONS if matcher.match(a))
    elif sep and service.casefold() == "s3":
        found = frozenset(c for s, c in S3_ACTIONS.items() if matcher.match(s))
    else:
        raise ValueError(f"unknown action {pattern!r}: actions are '*', 'cart:<Name>' or "
                         f"'s3:<Name>'")
    if not found:
        known = ", ".join(CART_ACTIONS if service.casefold() == "cart" else S3_ACTIONS)
        raise ValueError(f"action {pattern!r} names no known action (known: {known})")
    return found
