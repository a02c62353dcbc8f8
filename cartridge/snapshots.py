"""Named snapshots inside the container: copy-on-write, O(1) to take.

A commit is an immutable tree, so a snapshot is nothing but a record that
keeps one commit's tree alive: ``0x30 + name`` in the catalog B+tree maps to
a SNAPSHOT value (root reference, generation, counts, time; FORMAT.md
section 13).  Taking one writes one leaf path, whatever the container's size.

Keeping pages: every pending-free run carries the generation that wrote it
(its *birth*) and the one that freed it; a run is reachable from snapshot
``s`` exactly when ``birth <= s < freed``.  The writer adds every snapshot's
generation to the reader pins when it decides which pending runs to return
to the free map (``Cartridge._release``), so a snapshot holds exactly the
pages it can reach and nothing born after it.  Deleting the snapshot drops
its generation from that set and the pages come back at that commit.

Restoring makes the current tree *be* the snapshot's: the pages only the
current tree reaches are freed, and the pages only the snapshot reaches
(pending runs it was holding) are taken back into use.  The snapshot records
themselves are carried over, so restoring never loses a later snapshot.
"""

from __future__ import annotations

import builtins
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .btree import BTree, NodeStore
from .errors import InvalidPathError, SnapshotExistsError, SnapshotNotFoundError
from .layout import (
    CHUNK_STRUCT,
    KEY_CHUNK,
    KEY_PATH,
    KEY_SNAPSHOT,
    MAX_SNAPSHOT_NAME,
    PAGE_SIZE,
    SNAPSHOT_STRUCT,
)
from .mvcc import _read_op

_SNAP_END = bytes([KEY_SNAPSHOT[0] + 1])


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """A snapshot record as stored in the catalog (internal)."""

    root: tuple[int, int] | None
    depth: int
    generation: int
    created_ns: int
    file_count: int
    dir_count: int
    next_file_id: int

    @classmethod
    def decode(cls, raw: bytes) -> SnapshotRecord:
        page, gen, depth, _r, sgen, created, files, dirs, nfid = SNAPSHOT_STRUCT.unpack(raw)
        return cls((page, gen) if page else None, depth, sgen, created, files, dirs, nfid)

    def encode(self) -> bytes:
        page, gen = self.root if self.root is not None else (0, 0)
        return SNAPSHOT_STRUCT.pack(page, gen, self.depth, 0, self.generation, self.created_ns,
                                    self.file_count, self.dir_count, self.next_file_id)


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """What :meth:`Cartridge.snapshots` reports about one snapshot."""

    name: str
    """The snapshot's name."""
    generation: int
    """The commit it pins."""
    created: float
    """When it was taken, seconds since the epoch."""
    exclusive_bytes: int
    """Bytes only this snapshot keeps: deleting it frees them."""
    file_count: int
    """Files in the snapshot."""
    dir_count: int
    """Directories in the snapshot."""

    def __getitem__(self, name: str) -> Any:
        """Dict-style access to a field: ``info["generation"]``."""
        if name not in self.__dataclass_fields__:
            raise KeyError(name)
        return getattr(self, name)


@dataclass(frozen=True, slots=True)
class DiffResult:
    """What :meth:`Cartridge.diff` reports: paths, sorted."""

    added: list[str] = field(default_factory=list)
    """Paths present in ``b`` only."""
    removed: list[str] = field(default_factory=list)
    """Paths present in ``a`` only."""
    changed: list[str] = field(default_factory=list)
    """Paths in both whose entry (content, size, times, metadata) differs."""

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def __getitem__(self, name: str) -> list[str]:
        """Dict-style access: ``diff["added"]``."""
        if name not in self.__dataclass_fields__:
            raise KeyError(name)
        return getattr(self, name)


def _key(name: Any) -> bytes:
    if not isinstance(name, str):
        raise TypeError(f"snapshot name must be a str, got {type(name).__name__}")
    raw = name.encode("utf-8")
    if not raw or len(raw) > MAX_SNAPSHOT_NAME or "\0" in name:
        raise InvalidPathError(f"snapshot name must be 1-{MAX_SNAPSHOT_NAME} bytes of UTF-8 "
                               f"without NUL, got {name!r}")
    return KEY_SNAPSHOT + raw


def tree_pages(store: NodeStore, root: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """Every page a catalog tree reaches (nodes and data runs) and its birth generation."""
    pages: list[np.ndarray] = []
    births: list[np.ndarray] = []
    nodes: list[tuple[int, int]] = []

    def visit(page: int, gen: int, node: Any, _depth: int) -> None:
        nodes.append((page, gen))
        if node.leaf:
            for key, val in zip(node.keys, node.vals):
                if key[:1] == KEY_CHUNK:
                    rec = CHUNK_STRUCT.unpack(val)
                    start, npages, cgen = rec[0], rec[1], rec[7]
                    if start:
                        pages.append(np.arange(start, start + npages, dtype=np.int64))
                        births.append(np.full(npages, cgen, np.int64))

    BTree(store, root).walk(visit)
    if nodes:
        arr = np.array(nodes, np.int64)
        pages.append(arr[:, 0])
        births.append(arr[:, 1])
    if not pages:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(pages), np.concatenate(births)


class SnapshotMixin:
    """``snapshot``, ``snapshots``, ``restore``, ``delete_snapshot``, ``diff``."""

    # --------------------------------------------------------------- records
    def _snapshot_items(self) -> builtins.list[tuple[str, SnapshotRecord]]:
        return [(k[1:].decode("utf-8"), SnapshotRecord.decode(v))
                for k, v in self._tree.items(KEY_SNAPSHOT, _SNAP_END)]

    def _pending_list(self) -> builtins.list[tuple[int, int, int, int]]:
        """The pending-free records of the commit a read-only handle reads."""
        from .allocator import Allocator

        return Allocator(self._pager, self._meta, None).pending

    def _snapshot_generations(self) -> builtins.list[int]:
        return [rec.generation for _n, rec in self._snapshot_items()]

    def _snapshot_record(self, name: str) -> SnapshotRecord:
        raw = self._tree.get(_key(name))
        if raw is None:
            raise SnapshotNotFoundError(f"no snapshot named {name!r} in {self.path!r}", name)
        return SnapshotRecord.decode(raw)

    # ---------------------------------------------------------------- public
    def snapshot(self, name: str) -> SnapshotInfo:
        """Pin the current state under ``name``, in O(1) whatever the size.

        Pending changes are committed first (they become part of the
        snapshot); then one more commit records the snapshot.  Its pages stay
        in the file, shared with the live tree, until :meth:`delete_snapshot`.
        """
        with self._lock:
            self._check_writable()
            key = _key(name)
            if self._tree.get(key) is not None:
                raise SnapshotExistsError(f"snapshot {name!r} already exists; delete it "
                                          "first or choose another name", name)
            self.commit()
            meta = self._meta
            root = int(meta["root"]["page"])
            rec = SnapshotRecord((root, int(meta["root"]["generation"])) if root else None,
                                 int(meta["tree_depth"]), self._gen, time.time_ns(),
                                 self._file_count, self._dir_count, self._next_fid)
            self._tree.put(key, rec.encode())
            self._dirty = True
            self.commit()
            return SnapshotInfo(name, rec.generation, rec.created_ns / 1e9, 0,
                                rec.file_count, rec.dir_count)

    @_read_op
    def snapshots(self) -> builtins.list[SnapshotInfo]:
        """Every snapshot, oldest first: name, generation, time, bytes only it holds."""
        items = self._snapshot_items()
        gens = sorted(rec.generation for _n, rec in items)
        pending = self._alloc.pending if self._alloc is not None else self._pending_list()
        out = []
        for name, rec in items:
            s = rec.generation
            only = 0
            for gen, _start, count, birth in pending:
                if birth <= s < gen and not any(birth <= o < gen for o in gens if o != s):
                    only += count
            out.append(SnapshotInfo(name, s, rec.created_ns / 1e9, only * PAGE_SIZE,
                                    rec.file_count, rec.dir_count))
        return sorted(out, key=lambda i: (i.generation, i.name))

    def delete_snapshot(self, name: str) -> None:
        """Delete a snapshot and commit; the pages only it kept are freed."""
        with self._lock:
            self._check_writable()
            self._snapshot_record(name)
            self._tree.delete(_key(name))
            self._dirty = True
            self.commit()

    def restore(self, name: str) -> None:
        """Make a new commit whose contents equal snapshot ``name``.

        Uncommitted changes are discarded.  Every snapshot (older or newer
        than ``name``) is kept.
        """
        with self._lock:
            self._check_writable()
            self.rollback()
            rec = self._snapshot_record(name)
            snaps = builtins.list(self._tree.items(KEY_SNAPSHOT, _SNAP_END))
            cur_pages, cur_births = tree_pages(self._store, self._tree.root)
            old_pages, _ = tree_pages(self._store, rec.root)
            alloc = self._alloc
            gone = ~np.isin(cur_pages, old_pages)
            for page, birth in zip(cur_pages[gone].tolist(), cur_births[gone].tolist()):
                alloc.free(page, 1, birth)
            back = np.setdiff1d(old_pages, cur_pages)
            alloc.resurrect(np.sort(back))
            self._tree.root = rec.root
            for key, _v in builtins.list(self._tree.items(KEY_SNAPSHOT, _SNAP_END)):
                self._tree.delete(key)
            for key, val in snaps:
                self._tree.put(key, val)
            self._file_count = rec.file_count
            self._dir_count = rec.dir_count
            self._next_fid = max(self._next_fid, rec.next_file_id)
            self._known_dirs.clear()
            self._dirty = True
            self.commit()

    @_read_op
    def diff(self, a: str | None, b: str | None = None) -> DiffResult:
        """Paths added, removed and changed from ``a`` to ``b``.

        Each side is a snapshot name, or None for the state this handle sees
        now (a writer's includes its uncommitted changes).
        """
        ta = self._side(a)
        tb = self._side(b)
        end = bytes([KEY_PATH[0] + 1])
        ia = iter(ta.items(KEY_PATH, end))
        ib = iter(tb.items(KEY_PATH, end))
        added, removed, changed = [], [], []
        ka = next(ia, None)
        kb = next(ib, None)
        while ka is not None or kb is not None:
            if kb is None or (ka is not None and ka[0] < kb[0]):
                removed.append(ka[0][1:].decode("utf-8"))
                ka = next(ia, None)
            elif ka is None or kb[0] < ka[0]:
                added.append(kb[0][1:].decode("utf-8"))
                kb = next(ib, None)
            else:
                if ka[1] != kb[1]:
                    changed.append(ka[0][1:].decode("utf-8"))
                ka = next(ia, None)
                kb = next(ib, None)
        return DiffResult(added, removed, changed)

    def _side(self, name: str | None) -> BTree:
        if name is None:
            return self._tree
        return BTree(self._store, self._snapshot_record(name).root)
