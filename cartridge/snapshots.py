"""Named snapshots inside the container: copy-on-write, O(1) to take.

A commit is an immutable tree, so a snapshot is nothing but a record that
keeps one commit's tree alive: ``0x30 + name`` in the catalog B+tree maps to
a SNAPSHOT value (root reference, generation, counts, time; FORMAT.md
section 13).  Taking one writes one leaf path, whatever the container's size.

Keeping pages: every pending-free run carries the generation that wrote it
(its *birth*) and the one that freed it; a run is reachable from snapshot
``s`` exactly when ``birth <= s < freed``.  The writer adds every snapshot's
generation to the reader pins when it decides which pending runs to return
to the free map (``WriteTxn.release``), so a snapshot holds exactly the
pages it can reach and nothing born after it.  Deleting the snapshot drops
its generation from that set and the pages come back at that commit.

Restoring makes the current tree *be* the snapshot's: the pages only the
current tree reaches are freed, and the pages only the snapshot reaches
(pending runs it was holding) are taken back into use.  The snapshot records
themselves are carried over, so restoring never loses a later snapshot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .btree import BTree, NodeStore
from .catalog import SnapshotRecord, snapshot_key
from .errors import SnapshotExistsError
from .layout import CHUNK_STRUCT, KEY_CHUNK, KEY_PATH, PAGE_SIZE
from .txn import ReadTxn, WriteTxn

__all__ = ["DiffResult", "SnapshotInfo", "delete", "diff", "list_snapshots", "restore",
           "take", "tree_pages"]


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


def take(txn: WriteTxn, name: str) -> SnapshotInfo:
    """Pin the current state under ``name``, in O(1) whatever the size.

    Pending changes are committed first (they become part of the snapshot);
    then one more commit records the snapshot.  Its pages stay in the file,
    shared with the live tree, until :func:`delete`.
    """
    snapshot_key(name)
    if txn.catalog.snapshot(name) is not None:
        raise SnapshotExistsError(f"snapshot {name!r} already exists; delete it "
                                  "first or choose another name", name)
    txn.commit()
    meta = txn.meta
    root = int(meta["root"]["page"])
    rec = SnapshotRecord((root, int(meta["root"]["generation"])) if root else None,
                         int(meta["tree_depth"]), txn.generation, time.time_ns(),
                         txn.file_count, txn.dir_count, txn.next_file_id)
    txn.catalog.put_snapshot(name, rec)
    txn.commit_always()
    return SnapshotInfo(name, rec.generation, rec.created_ns / 1e9, 0,
                        rec.file_count, rec.dir_count)


def list_snapshots(txn: ReadTxn) -> list[SnapshotInfo]:
    """Every snapshot, oldest first: name, generation, time, bytes only it holds."""
    items = txn.catalog.snapshots()
    gens = sorted(rec.generation for _n, rec in items)
    pending = txn.space().pending
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


def delete(txn: WriteTxn, name: str) -> None:
    """Delete a snapshot and commit; the pages only it kept are freed."""
    txn.snapshot_record(name)
    txn.catalog.remove_snapshot(name)
    txn.commit_always()


def restore(txn: WriteTxn, name: str) -> None:
    """Make a new commit whose contents equal snapshot ``name``.

    Uncommitted changes are discarded.  Every snapshot (older or newer than
    ``name``) is kept.
    """
    txn.rollback()
    rec = txn.snapshot_record(name)
    snaps = txn.catalog.snapshots()
    store = txn.env.nodes
    cur_pages, cur_births = tree_pages(store, txn.tree.root)
    old_pages, _ = tree_pages(store, rec.root)
    alloc = txn.allocator
    gone = ~np.isin(cur_pages, old_pages)
    for page, birth in zip(cur_pages[gone].tolist(), cur_births[gone].tolist()):
        alloc.free(page, 1, birth)
    back = np.setdiff1d(old_pages, cur_pages)
    alloc.resurrect(np.sort(back))
    txn.tree.root = rec.root
    for snap_name, _rec in txn.catalog.snapshots():
        txn.catalog.remove_snapshot(snap_name)
    for snap_name, snap in snaps:
        txn.catalog.put_snapshot(snap_name, snap)
    txn.file_count = rec.file_count
    txn.dir_count = rec.dir_count
    txn.next_file_id = max(txn.next_file_id, rec.next_file_id)
    txn.forget_known_dirs()
    txn.commit_always()


def diff(txn: ReadTxn, a: str | None, b: str | None = None) -> DiffResult:
    """Paths added, removed and changed from ``a`` to ``b``.

    Each side is a snapshot name, or None for the state ``txn`` sees (a
    writer's includes its uncommitted changes).
    """
    ta = _side(txn, a)
    tb = _side(txn, b)
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


def _side(txn: ReadTxn, name: str | None) -> BTree:
    if name is None:
        return txn.tree
    return BTree(txn.env.nodes, txn.snapshot_record(name).root)
