"""Transactions: one generation of the container, read or being written.

py-lmdb's ``Transaction`` and LMDB's ``MDB_txn`` are the model.  A
:class:`ReadTxn` owns what one committed generation is: its meta record, its
B+tree, the catalog over it and the file data it reaches.  It is immutable
and many may exist at once (each pinned in the reader table by whoever holds
it).  A :class:`WriteTxn` is the one transaction of a read-write handle: it
owns the allocator and a copy-on-write version of the tree, changes them in
memory and in pages no commit reaches yet, and :meth:`WriteTxn.commit` makes
the version durable through the pager (``pager.py`` has the protocol).
After a commit the same object goes on as the next transaction, like
SQLite's implicit transactions; :meth:`WriteTxn.rollback` forgets every
change since the last commit.

Transactions do no locking and no access checks: the facade
(``container.py``) takes the handle's lock and passes each operation through
the choke point (``dispatch.py``) before calling them.  Services (snapshots,
compaction, rekey, arrays) work through the public surface here.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import paths
from .allocator import Allocator
from .arraydata import ArrayData
from .arrayformat import decode_desc
from .btree import BTree, Node, encode_node
from .catalog import Catalog, Entry, SnapshotRecord, decode_metadata, encode_metadata
from .env import Environment
from .errors import (
    ContainerFullError,
    DirectoryNotEmptyError,
    EncodedDataError,
    FileExistsError,
    InvalidPathError,
    IsADirectoryError,
    IsAnArrayError,
    NotADirectoryError,
    NotFoundError,
    SnapshotNotFoundError,
)
from .files import FileData, entry_policy
from .layout import (
    CODEC_NAMES,
    ENTRY_ARRAY,
    ENTRY_INLINE,
    ENTRY_POLICY_MASK,
    ENTRY_POLICY_SHIFT,
    ENTRY_STRUCT,
    INLINE_MAX,
    KIND_DIR,
    KIND_FILE,
    KIND_NAMES,
    MAX_CELL,
    PT_BRANCH,
    PT_LEAF,
)

__all__ = ["FileInfo", "ReadTxn", "WriteTxn", "byte_view", "file_info", "non_negative"]


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What :meth:`Cartridge.stat` reports about a path."""

    path: str
    """Normalized absolute path."""
    kind: str
    """``"file"`` or ``"dir"``."""
    size: int
    """Logical size in bytes (0 for directories)."""
    mtime: float
    """Last modification, seconds since the epoch."""
    ctime: float
    """Creation time, seconds since the epoch."""
    mode: int
    """POSIX permission bits."""
    metadata: dict = field(default_factory=dict)
    """User metadata given to ``write(..., metadata=)`` or ``set_metadata``."""
    stored_size: int | None = None
    """Bytes the file occupies on disk after compression and encryption (before
    page rounding): set by :meth:`Cartridge.stat` for files (``walk`` leaves it
    None, as it would cost a scan of every file's chunk records)."""
    compression: str | None = None
    """The file's compression policy: ``"lz4"``, ``"zstd"``, ``"auto"`` or None."""
    dtype: np.dtype | None = None
    """Element type of an array (see ``write_array``); None for plain files and dirs."""
    shape: tuple[int, ...] | None = None
    """Shape of an array; None for plain files and dirs."""
    chunks: tuple[int, ...] | None = None
    """Chunk shape of a chunked dataset; None otherwise."""

    @property
    def is_array(self) -> bool:
        """True for numpy arrays stored with ``write_array`` or ``create_dataset``."""
        return self.dtype is not None


class ReadTxn:
    """One committed generation: its tree, catalog and file data, read-only."""

    writable = False

    def __init__(self, env: Environment, generation: int, meta: np.ndarray,
                 root: tuple[int, int] | None | Any = None, file_count: int | None = None,
                 dir_count: int | None = None, next_file_id: int | None = None,
                 allocator: Allocator | None = None) -> None:
        self.env = env
        #: The generation this transaction reads (a write transaction: the last commit).
        self.generation = generation
        #: The meta record loaded with it (for a snapshot, the newer commit it was found in).
        self.meta = meta
        self.meta_generation = generation
        if root is None and file_count is None:
            page = int(meta["root"]["page"])
            root = (page, int(meta["root"]["generation"])) if page else None
            file_count = int(meta["file_count"])
            dir_count = int(meta["dir_count"])
            next_file_id = int(meta["next_file_id"])
        self.allocator = allocator
        self.tree = BTree(env.nodes, root, allocator.free if allocator is not None else None)
        self.catalog = Catalog(self.tree)
        self.data = FileData(env.pager, self.catalog, allocator, env.chunk_size,
                             env.chunk_cache, env.verify_reads)
        #: The array layouts over the same catalog and file data.
        self.arrays = ArrayData(env.pager, self.catalog, allocator, env.chunk_size, self.data)
        self.file_count = int(file_count or 0)
        self.dir_count = int(dir_count or 0)
        self.next_file_id = int(next_file_id or 0)

    @classmethod
    def at(cls, env: Environment, meta_generation: int, meta: np.ndarray,
           rec: SnapshotRecord | tuple[Any, ...]) -> ReadTxn:
        """A transaction reading an older tree found through commit ``meta_generation``
        (a snapshot's, or a pickled read transaction's): ``rec`` is the snapshot
        record, or ``(generation, root, file_count, dir_count, next_file_id)``."""
        if isinstance(rec, SnapshotRecord):
            txn = cls(env, rec.generation, meta, rec.root, rec.file_count, rec.dir_count,
                      rec.next_file_id)
        else:
            gen, root, files, dirs, nfid = rec
            txn = cls(env, gen, meta, root, files, dirs, nfid)
        txn.meta_generation = meta_generation
        return txn

    def state(self) -> tuple[int, Any, int, int, int]:
        """What :meth:`at` needs to read this tree again: generation, root, counts."""
        return (self.generation, self.tree.root, self.file_count, self.dir_count,
                self.next_file_id)

    # ----------------------------------------------------------------- lookups
    def entry(self, path: str) -> Entry | None:
        """The catalog entry at normalized ``path``, or None."""
        return self.catalog.get(path)

    def file_entry(self, path: str) -> Entry:
        """The entry of a file; NotFoundError or IsADirectoryError otherwise."""
        entry = self.catalog.get(path)
        if entry is None:
            if path == "/":
                raise IsADirectoryError("'/' is a directory", path)
            raise NotFoundError(f"no such file in {self.env.path!r}: {path}", path)
        if entry.kind == KIND_DIR:
            raise IsADirectoryError(f"{path} is a directory", path)
        return entry

    def read_entry(self, entry: Entry, offset: int, size: int | None) -> bytes:
        """Bytes ``offset`` .. ``offset + size`` of a plain (non-array) file."""
        end = entry.size if size is None else min(entry.size, offset + size)
        if offset >= end:
            return b""
        if entry.flags & ENTRY_INLINE:
            return entry.inline[offset:end].ljust(end - offset, b"\0")
        return self.data.read(entry, offset, end)

    def why_not_raw(self, path: str) -> str:
        """Why the bytes of file ``path`` are not in the map as they are ("" when they are)."""
        entry = self.file_entry(path)
        if entry.flags & ENTRY_INLINE:
            return "it is small enough to be stored inline in the catalog"
        if self.data.is_raw(entry):
            return ""
        if self.env.pager.encrypted:
            return "the container is encrypted"
        return "it is stored compressed"

    def require_raw(self, path: str, what: str = "a view") -> None:
        """Raise :class:`EncodedDataError` unless ``path``'s bytes are raw in the map."""
        why = self.why_not_raw(path)
        if why:
            raise EncodedDataError(
                f"cannot make {what} of {path}: {why}, so its bytes are not in the mapped "
                f"file as they are; read it decoded with cart.array({path!r})[...] or "
                f"cart.read({path!r})")

    def exists(self, path: str) -> bool:
        """True when a file or directory exists at normalized ``path``."""
        return path == "/" or self.catalog.get(path) is not None

    def stat(self, path: str) -> FileInfo:
        """Describe the file or directory at normalized ``path``."""
        if path == "/":
            t = self.env.pager.header.created_ns / 1e9
            return FileInfo("/", "dir", 0, t, t, 0o755, {})
        entry = self.catalog.get(path)
        if entry is None:
            raise NotFoundError(f"no such file or directory: {path}", path)
        info = file_info(path, entry)
        if entry.kind == KIND_FILE:
            stored = entry.size if entry.flags & ENTRY_INLINE else self.data.stored_size(entry)
            info = dataclasses.replace(info, stored_size=stored)
        return info

    def scan(self, prefix: str, recursive: bool) -> list[tuple[str, bytes]]:
        """``(path, raw entry)`` under a directory, or matching a name prefix."""
        p = prefix
        entry = None if p == "/" else self.catalog.get(p)
        if p == "/" or (entry is not None and entry.kind == KIND_DIR):
            it = self.catalog.descendants(p) if recursive else self.catalog.children(p)
            return list(it)
        if entry is not None:
            return [(p, entry.encode())]
        parent = paths.parent(p)
        pentry = None if parent == "/" else self.catalog.get(parent)
        if parent != "/" and (pentry is None or pentry.kind != KIND_DIR):
            raise NotFoundError(f"no such directory: {parent}", parent)
        stem = paths.name(p).encode("utf-8")
        found = self.catalog.descendants(parent, stem)
        if recursive:
            return list(found)
        return [(q, e) for q, e in found if "/" not in q[len(parent.rstrip("/")) + 1:]]

    def default_policy(self) -> tuple[int, int]:
        """The container's default ``(policy, level)`` from the file header."""
        header = self.env.pager.header
        return header.codec, header.level

    # --------------------------------------------------------------- snapshots
    def snapshot_record(self, name: str) -> SnapshotRecord:
        """The record of snapshot ``name``; SnapshotNotFoundError if none."""
        rec = self.catalog.snapshot(name)
        if rec is None:
            raise SnapshotNotFoundError(f"no snapshot named {name!r} in {self.env.path!r}",
                                        name)
        return rec

    def snapshot_generations(self) -> list[int]:
        """Generations the snapshots of this tree pin."""
        return [rec.generation for _n, rec in self.catalog.snapshots()]

    # ------------------------------------------------------------------- space
    def own_meta(self) -> tuple[np.ndarray, bool]:
        """A meta record for what this transaction reads, and whether its free map is it.

        A snapshot's transaction (or one reopened in another process) reads a
        tree older than the meta page it was found through: the tree fields
        are replaced, and the free map, which describes the newer commit, is
        not this tree's.
        """
        if self.generation == self.meta_generation:
            return self.meta, True
        meta = self.meta.copy()
        root = self.tree.root
        meta["root"] = root if root is not None else (0, 0)
        meta["file_count"] = self.file_count
        meta["dir_count"] = self.dir_count
        return meta, False

    def space(self) -> Allocator:
        """The free map and pending list of this commit (a detached, read-only copy)."""
        if self.allocator is not None:
            return self.allocator
        return Allocator(self.env.pager, self.meta, None)

    def holders(self, pending: list[tuple[int, int, int, int]]) -> list[str]:
        """Describe each pin (reader slot or snapshot) that keeps pending pages."""
        pins: list[tuple[int, str]] = [
            (s.generation, f"reader pid {s.pid} (slot {s.slot})")
            for s in self.env.reader_slots() if s.alive and s.generation]
        pins += [(rec.generation, f"snapshot {name!r}")
                 for name, rec in self.catalog.snapshots()]
        out = []
        for gen, who in sorted(pins):
            held = sum(count for freed, _start, count, birth in pending
                       if birth <= gen < freed)
            if held:
                out.append(f"{who} pins generation {gen}, holding {held * 4096} bytes")
        return out


class WriteTxn(ReadTxn):
    """The write transaction of a read-write handle."""

    writable = True

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.meta_written = False
        self._load()

    def _load(self) -> None:
        """(Re)start from the newest durable commit, as an open does."""
        env = self.env
        gen, meta = env.load_durable()
        alloc = Allocator(env.pager, meta, env.max_size)
        ReadTxn.__init__(self, env, gen, meta, allocator=alloc)
        self.allocator: Allocator = alloc
        #: True once anything changed since the last commit.
        self.dirty = False
        #: True once raw data pages were written (a commit then syncs twice).
        self.wrote_data = False
        self._known_dirs: set[str] = set()
        # The newest meta page may be in the page cache only (its writer died
        # before syncing): make it durable before reusing the pages it freed,
        # which the older meta page still reaches.
        env.file.sync()
        self.release()

    # ----------------------------------------------------------------- commits
    def commit(self) -> None:
        """Make every change durable; a no-op when nothing changed."""
        if not self.dirty:
            return
        pager = self.env.pager
        pager.meta_written = False
        try:
            self._commit()
        except BaseException:
            if pager.meta_written:
                # The new meta page may already be what readers (and a
                # reopen) see: never roll back to pages it reaches. Adopt
                # whatever the file says now, as a reopen would.
                self._load()
            else:
                self.rollback()
            raise

    def _commit(self) -> None:
        gen = self.generation + 1
        alloc = self.allocator
        pager = self.env.pager

        def write_node(page: int, node: Node) -> None:
            count, body = encode_node(node)
            pager.write_headed(page, PT_LEAF if node.leaf else PT_BRANCH, gen, count, body)

        root, depth, node_pages = self.tree.flush(alloc.alloc_scattered, write_node, gen)
        fields, fm_pages = alloc.write_state(gen)
        fields = dict(fields, root=root if root is not None else (0, 0), tree_depth=depth,
                      next_file_id=self.next_file_id, file_count=self.file_count,
                      dir_count=self.dir_count)
        meta = pager.commit(gen, fields, node_pages + fm_pages, self.wrote_data)
        alloc.committed()
        self.generation = self.meta_generation = gen
        self.env.probe = gen
        self.meta = meta
        self.dirty = False
        self.wrote_data = False
        self.release()

    def commit_always(self) -> None:
        """Commit even when nothing changed (writes a new meta page)."""
        self.dirty = True
        self.commit()

    def rollback(self) -> None:
        """Discard every change since the last commit."""
        kept = self.allocator.rollback()
        meta = self.meta
        root = int(meta["root"]["page"])
        self.tree.root = (root, int(meta["root"]["generation"])) if root else None
        self.file_count = int(meta["file_count"])
        self.dir_count = int(meta["dir_count"])
        self.next_file_id = int(meta["next_file_id"])
        self.dirty = bool(kept)  # pages live views read stay pending: commit that
        self.wrote_data = False
        self._known_dirs.clear()
        self.release()

    def release(self) -> None:
        """Return pending pages that no reader, view or snapshot pin can reach."""
        pins = self.env.pinned_generations() + self.snapshot_generations()
        self.allocator.release(self.generation, pins)

    # ------------------------------------------------------ building blocks
    def mark_dirty(self, wrote_data: bool = False) -> None:
        """Record a change (``wrote_data``: raw data pages were written too)."""
        self.dirty = True
        if wrote_data:
            self.wrote_data = True

    def new_file_id(self) -> int:
        """A file id no file of any generation ever had."""
        fid = self.next_file_id
        self.next_file_id += 1
        return fid

    def forget_known_dirs(self) -> None:
        """Anything that may remove or move a directory clears the lookup memo."""
        self._known_dirs.clear()

    def missing_parents(self, path: str) -> list[str]:
        """Ancestors of ``path`` that must be created; raises if one is a file.

        Directories already seen in this transaction are remembered (cleared
        by anything that can remove or move one), so writing many files into
        one directory looks the directory up once.
        """
        known = self._known_dirs
        missing: list[str] = []
        for anc in paths.ancestors(path):
            if missing:
                missing.append(anc)
            elif anc not in known:
                entry = self.catalog.get(anc)
                if entry is None:
                    missing.append(anc)
                elif entry.kind != KIND_DIR:
                    raise NotADirectoryError(f"{anc} is a file, so {path} cannot exist", path)
                else:
                    known.add(anc)
        return missing

    def make_dirs(self, dirs: list[str], now: int) -> None:
        """Create the directories ``dirs`` (from :meth:`missing_parents`)."""
        self._known_dirs.update(dirs)
        for d in dirs:
            self.catalog.put(d, Entry(KIND_DIR, 0, 0o755, 0, now, now, 0))
            self.dir_count += 1

    def replace_entry(self, path: str, entry: Entry, existing: Entry | None,
                      missing: list[str], now: int) -> None:
        """Store a new file entry at ``path``, freeing what ``existing`` held."""
        if existing is not None:
            self.data.free(existing)
        else:
            self.file_count += 1
        self.make_dirs(missing, now)
        self.catalog.put(path, entry)
        self.dirty = True

    def write_data(self, entry: Entry, offset: int, view: memoryview, level: int = 0) -> None:
        """Write bytes of a chunked file through the file-data layer."""
        self.data.write(entry, offset, view, self.generation + 1, level)
        self.wrote_data = True

    @staticmethod
    def fits_inline(path: str, meta: bytes, size: int) -> bool:
        """Can a file of ``size`` bytes live in its catalog cell?"""
        cell = 1 + len(path.encode("utf-8")) + ENTRY_STRUCT.size + len(meta) + size
        return size <= INLINE_MAX and cell <= MAX_CELL

    def _fit_cell(self, path: str, entry: Entry) -> Entry:
        """``entry`` ready to store under ``path``: inline data that would make the
        cell (longer path after a rename) too large moves to data pages."""
        if entry.flags & ENTRY_INLINE and not self.fits_inline(path, entry.meta, entry.size):
            return self._to_chunked(entry)
        return entry

    def _to_chunked(self, entry: Entry) -> Entry:
        """A chunked copy of an inline entry (its bytes moved to data pages)."""
        fresh = Entry(entry.kind, entry.flags & ENTRY_POLICY_MASK, entry.mode, 0,
                      entry.mtime_ns, entry.ctime_ns, self.new_file_id(), entry.meta)
        self.write_data(fresh, 0, memoryview(entry.inline))
        fresh.size = entry.size
        return fresh

    # ------------------------------------------------------------------ writes
    def write(self, p: str, view: memoryview, metadata: dict | None, mode: int | None,
              policy: int, level: int) -> None:
        """Create or replace the file at ``p`` (see :meth:`Cartridge.write`)."""
        existing = self.catalog.get(p)
        if p == "/" or (existing is not None and existing.kind == KIND_DIR):
            raise IsADirectoryError(f"{p} is a directory", p)
        missing = self.missing_parents(p)
        meta = encode_metadata(metadata) if metadata is not None else (
            existing.meta if existing else b"")
        now = time.time_ns()
        if mode is None:
            mode = existing.mode if existing else 0o644
        entry = Entry(KIND_FILE, policy << ENTRY_POLICY_SHIFT, mode & 0o7777, 0, now,
                      existing.ctime_ns if existing else now, 0, meta)
        if self.fits_inline(p, meta, len(view)):
            entry.flags |= ENTRY_INLINE
            entry.inline = bytes(view)
            entry.size = len(view)
        else:
            entry.file_id = self.new_file_id()
            self.write_data(entry, 0, view, level)
        self.replace_entry(p, entry, existing, missing, now)

    def update(self, p: str, entry: Entry, offset: int, view: memoryview) -> None:
        """Write ``view`` at ``offset`` of an existing file and store its entry."""
        if entry.kind == KIND_DIR:
            raise IsADirectoryError(f"{p} is a directory", p)
        refuse_array(p, entry)
        end = offset + len(view)
        if entry.flags & ENTRY_INLINE and self.fits_inline(p, entry.meta, max(entry.size, end)):
            buf = bytearray(entry.inline.ljust(max(entry.size, end), b"\0"))
            buf[offset:end] = view
            entry.inline = bytes(buf)
            entry.size = len(buf)
        elif len(view) or end > entry.size:
            converted = entry.flags & ENTRY_INLINE
            if converted:
                entry = self._to_chunked(entry)
            try:
                self.write_data(entry, offset, view)
            except ContainerFullError:
                if converted:
                    self.data.free(entry)
                raise
        entry.mtime_ns = time.time_ns()
        self.catalog.put(p, entry)
        self.dirty = True

    def truncate(self, p: str, size: int) -> None:
        """Cut the file at ``p`` to ``size`` bytes, or extend it with zeros."""
        entry = self.file_entry(p)
        refuse_array(p, entry)
        if entry.flags & ENTRY_INLINE:
            if self.fits_inline(p, entry.meta, size):
                entry.inline = entry.inline[:size].ljust(size, b"\0")
                entry.size = size
            else:
                entry = self._to_chunked(entry)
                entry.size = size
        elif size < entry.size:
            self.data.shrink(entry, size, self.generation + 1)
            self.wrote_data = True
        else:
            entry.size = size
        entry.mtime_ns = time.time_ns()
        self.catalog.put(p, entry)
        self.dirty = True

    def delete(self, p: str) -> None:
        """Remove the file at ``p``."""
        entry = self.file_entry(p)
        self.data.free(entry)
        self.catalog.remove(p)
        self.file_count -= 1
        self.dirty = True

    def mkdir(self, p: str, parents: bool, exist_ok: bool) -> None:
        """Create directory ``p`` (and, with ``parents``, its missing ancestors)."""
        entry = self.catalog.get(p) if p != "/" else Entry(KIND_DIR, 0, 0, 0, 0, 0, 0)
        if entry is not None:
            if entry.kind == KIND_DIR and exist_ok:
                return
            raise FileExistsError(f"{p} already exists", p)
        missing = self.missing_parents(p)
        if missing and not parents:
            raise NotFoundError(f"parent directory {missing[0]} does not exist", p)
        self.make_dirs(missing + [p], time.time_ns())
        self.dirty = True

    def rmdir(self, p: str) -> None:
        """Remove the empty directory ``p``."""
        if p == "/":
            raise InvalidPathError("the root directory cannot be removed")
        entry = self.catalog.get(p)
        if entry is None:
            raise NotFoundError(f"no such directory: {p}", p)
        if entry.kind != KIND_DIR:
            raise NotADirectoryError(f"{p} is not a directory", p)
        if self.catalog.has_children(p):
            raise DirectoryNotEmptyError(f"directory {p} is not empty", p)
        self.catalog.remove(p)
        self._known_dirs.clear()
        self.dir_count -= 1
        self.dirty = True

    def rename(self, s: str, d: str) -> None:
        """Move the file or directory ``s`` (with everything under it) to ``d``."""
        self._known_dirs.clear()
        if s == "/":
            raise InvalidPathError("the root directory cannot be renamed")
        entry = self.catalog.get(s)
        if entry is None:
            raise NotFoundError(f"no such file or directory: {s}", s)
        if s == d:
            return
        if d == "/" or d.startswith(s + "/"):
            raise InvalidPathError(f"cannot move {s} into itself ({d})")
        target = self.catalog.get(d)
        if target is not None:
            if target.kind == KIND_DIR and entry.kind != KIND_DIR:
                raise IsADirectoryError(f"{d} is a directory", d)
            if target.kind != KIND_DIR and entry.kind == KIND_DIR:
                raise NotADirectoryError(f"{d} is not a directory", d)
            if target.kind == KIND_DIR and self.catalog.has_children(d):
                raise DirectoryNotEmptyError(f"directory {d} is not empty", d)
        missing = self.missing_parents(d)
        now = time.time_ns()
        if target is not None:
            self.data.free(target)
            if target.kind == KIND_DIR:
                self.dir_count -= 1
            else:
                self.file_count -= 1
        self.make_dirs(missing, now)
        if entry.kind == KIND_DIR:
            moved = list(self.catalog.descendants(s))
            for old_path, raw in moved:
                self.catalog.remove(old_path)
                new_path = d + old_path[len(s):]
                self.catalog.put(new_path, self._fit_cell(new_path, Entry.decode(raw)))
        self.catalog.remove(s)
        self.catalog.put(d, self._fit_cell(d, entry))
        self.dirty = True

    def copy_attributes(self, p: str, source: Entry) -> None:
        """Give the entry at ``p`` the metadata, mode and times of ``source`` (copies)."""
        entry = self.file_entry(p) if source.kind == KIND_FILE else self.catalog.get(p)
        if entry is None:
            raise NotFoundError(f"no such file or directory: {p}", p)
        entry.meta = source.meta
        entry.mode = source.mode
        entry.mtime_ns = source.mtime_ns
        entry.ctime_ns = source.ctime_ns
        self.catalog.put(p, self._fit_cell(p, entry))
        self.dirty = True

    def set_metadata(self, p: str, metadata: dict) -> None:
        """Replace the user metadata of the file or directory ``p``."""
        entry = self.catalog.get(p)
        if entry is None:
            raise NotFoundError(f"no such file or directory: {p}", p)
        entry.meta = encode_metadata(metadata)
        if entry.flags & ENTRY_INLINE and not self.fits_inline(p, entry.meta, entry.size):
            entry = self._to_chunked(entry)
        self.catalog.put(p, entry)
        self.dirty = True


# ---------------------------------------------------------------- helpers
def byte_view(data: Any) -> memoryview:
    """A flat byte view of a bytes-like argument (TypeError for anything else)."""
    if isinstance(data, str):
        raise TypeError("data must be bytes-like, not str; encode it first")
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"data must be bytes-like, got {type(data).__name__}") from None
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def non_negative(value: Any, name: str) -> int:
    """``value`` as an int >= 0 (TypeError/ValueError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def file_info(path: str, entry: Entry) -> FileInfo:
    """The :class:`FileInfo` of a catalog entry (no chunk scan)."""
    dtype = shape = chunks = None
    if entry.flags & ENTRY_ARRAY:
        desc = decode_desc(entry.inline)
        dtype, shape, chunks = desc.dtype, desc.shape, desc.chunks
    return FileInfo(path, KIND_NAMES.get(entry.kind, "unknown"), entry.size,
                    entry.mtime_ns / 1e9, entry.ctime_ns / 1e9, entry.mode,
                    decode_metadata(entry.meta),
                    compression=CODEC_NAMES[entry_policy(entry)] if entry.kind == KIND_FILE
                    else None, dtype=dtype, shape=shape, chunks=chunks)


def refuse_array(path: str, entry: Entry) -> None:
    """Byte-level writes would tear an array from its descriptor."""
    if entry.flags & ENTRY_ARRAY:
        raise IsAnArrayError(
            f"{path} is a numpy array; change it with cart.array({path!r})[...] = values, "
            "or replace it with write() or write_array()", path)


def walk_infos(items: list[tuple[str, bytes]]) -> Iterator[tuple[str, FileInfo]]:
    """``(path, FileInfo)`` for scanned ``(path, raw entry)`` pairs."""
    for p, raw in items:
        yield p, file_info(p, Entry.decode(raw))
