"""The public API: :class:`Cartridge`, :func:`create` and :func:`open`.

A read-write handle is one implicit write transaction: ``write``, ``delete``
and friends change an in-memory copy-on-write version of the catalog and write
file bytes into pages no commit can reach yet; ``commit()`` makes the version
durable (see ``pager.py`` for the protocol), ``rollback()`` forgets it.  The
handle's own reads see its pending changes; other handles see the last commit.

This module only orchestrates.  It talks to the catalog (paths, entries, chunk
records) and the allocator (pages), which talk to the pager, which talks to
the mapped file.  File bytes are copied straight between the caller's buffer
and the mapped pages; chunk checksums are computed by numba kernels over the
mapped pages.

Thread safety: every public method takes the handle's lock, so one handle may
be shared by threads (calls are serialized); use one read-only handle per
thread for parallel reads.
"""

from __future__ import annotations

import builtins
import dataclasses
import os
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import paths
from .allocator import Allocator
from .arrayformat import decode_desc
from .arrays import ArrayMixin
from .btree import BTree, Node, NodeStore
from .cache import DEFAULT_CACHE_SIZE, ChunkCache
from .catalog import Catalog, Entry, decode_metadata, encode_metadata
from .codec import DEFAULT, parse_policy
from .codecapi import CodecMixin, RekeyMixin
from .compact import CompactMixin
from .crypto import check_key_arg
from .errors import (
    ClosedError,
    ContainerFullError,
    DirectoryNotEmptyError,
    FileExistsError,
    InvalidPathError,
    IsADirectoryError,
    IsAnArrayError,
    NotADirectoryError,
    NotFoundError,
    ReadOnlyError,
    StaleFileError,
)
from .files import FileData, entry_policy
from .layout import (
    CODEC_NAMES,
    DEFAULT_CHUNK_SIZE,
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
    META,
    META_COMMIT_SINGLE_SYNC,
    META_SYNC_MAX,
    PAGE_SIZE,
    PT_BRANCH,
    PT_LEAF,
)
from .mapfile import MappedFile
from .mvcc import MVCCMixin, _fence, _read_op, check_locking, open_locked
from .pager import Pager
from .readers import ReaderSlot, ReaderTable
from .snapshots import SnapshotMixin

__all__ = ["Cartridge", "FileInfo", "ContainerInfo", "create", "open"]

_MODES = ("r", "r+", "a")


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


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """What :meth:`Cartridge.info` reports (cheap: no tree walk)."""

    path: str
    """Filesystem path of the container."""
    size: int
    """Bytes of the container file on disk."""
    page_size: int
    """Bytes per page (4096)."""
    total_pages: int
    """Pages in the logical container (the file may be larger after growth)."""
    used_pages: int
    """Pages in use, including pages awaiting release."""
    free: int
    """Bytes free inside the container: free pages plus unused file tail."""
    file_count: int
    """Files (not directories)."""
    dir_count: int
    """Directories, excluding the root."""
    generation: int
    """Generation of the last commit."""
    free_runs: int
    """Maximal runs of free pages."""
    largest_free_run: int
    """Pages in the largest free run."""
    fragmentation: float
    """``1 - largest_free_run / free_pages``: 0 when free space is one run."""
    pending_pages: int
    """Pages freed by recent commits, returned to the free map at the next one."""
    holders: list[str] = field(default_factory=list)
    """What keeps pending pages from reuse: one line per live reader, view or
    snapshot pin that can reach some, with the bytes it holds (empty when
    nothing holds space)."""
    encrypted: bool = False
    """True when every page and chunk is sealed with AES-256-GCM."""
    compression: str | None = None
    """Default compression policy of new files (set at ``create()``)."""
    cache: dict = field(default_factory=dict)
    """Decoded-chunk ARC cache: ``hits``, ``misses``, ``p``, ``bytes``, ``capacity``,
    ``entries`` and ``decodes`` (chunks decompressed/decrypted by this handle)."""

    def __getitem__(self, name: str) -> Any:
        """Dict-style access to a field: ``info["free"]``."""
        if name not in self.__dataclass_fields__:
            raise KeyError(name)
        return getattr(self, name)

    def as_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (what ``cart info --json`` prints)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class Cartridge(ArrayMixin, CodecMixin, RekeyMixin, MVCCMixin, SnapshotMixin, CompactMixin):
    """An open container.  Use :func:`cartridge.create` or :func:`cartridge.open`."""

    def __init__(self, path: str | os.PathLike[str], mode: str = "r+", *,
                 max_size: int | None = None, locking: bool | str = True,
                 timeout: float = 0.0, cache_nodes: int = 16384,
                 snapshot: str | None = None, _create: bool = False,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, key: bytes | None = None,
                 password: str | None = None, compression: str | None = None,
                 level: int | None = None, verify_reads: bool = False,
                 cache_size: int = DEFAULT_CACHE_SIZE, _fixed: Any = None) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        _check_sizes(max_size, chunk_size)
        check_locking(locking)
        check_key_arg(key, password)
        policy = parse_policy(compression, level, (0, 0))
        if snapshot is not None:
            if mode != "r":
                raise ValueError("snapshots open read-only: pass mode='r' with snapshot=")
            _fixed = ("snapshot", snapshot)
        self._chunk_cache = ChunkCache(cache_size)
        self._verify_reads = bool(verify_reads)
        self.path = os.fspath(path)
        self.mode = mode
        self._lock = threading.RLock()
        self._closed = True
        self._pid = os.getpid()
        # What a read transaction, a pickled copy or a forked child reopens with
        # (the key travels with a pickled handle of an encrypted container).
        self._options = {"max_size": max_size, "locking": locking, "timeout": timeout,
                         "cache_nodes": cache_nodes, "key": key, "password": password,
                         "verify_reads": bool(verify_reads), "cache_size": cache_size}
        self._fixed = _fixed
        self._home = threading.get_ident()
        self._threads = threading.local()  # other threads' own handles (mvcc.py)
        self._children: weakref.WeakSet = weakref.WeakSet()
        writable = mode != "r"
        create_file = _create or (mode == "a" and not os.path.exists(self.path))
        self._mf, self._table = open_locked(self.path, writable, create_file, locking, timeout)
        try:
            if create_file:
                Pager.format_new(self._mf, chunk_size, max_size or 0, *policy, key=key,
                                 password=password)
            self._pager = Pager(self._mf, key, password)
            head_max = self._pager.header.max_size
            self.max_size = max_size if max_size is not None else (head_max or None)
            self._store = NodeStore(self._pager, cache_nodes)
            self._chunk = self._pager.header.chunk_size
            self._load_durable()
            if self._fixed is not None:
                self._load_fixed()
        except BaseException:
            if self._table is not None:
                self._table.close()
            self._mf.close()
            raise
        self._closed = False

    # ------------------------------------------------------------- lifecycle
    def _load_durable(self) -> None:
        gen, meta = self._pager.load_meta()
        self._probe = self._pager.newest_generation()
        self._gen = gen
        self._meta = meta
        root = int(meta["root"]["page"])
        root_ref = (root, int(meta["root"]["generation"])) if root else None
        self._alloc = Allocator(self._pager, meta, self.max_size) if self.mode != "r" else None
        self._tree = BTree(self._store, root_ref, self._alloc.free if self._alloc else None)
        self._cat = Catalog(self._tree)
        self._data = FileData(self._pager, self._cat, self._alloc, self._chunk,
                              self._chunk_cache, self._verify_reads)
        self._file_count = int(meta["file_count"])
        self._dir_count = int(meta["dir_count"])
        self._next_fid = int(meta["next_file_id"])
        self._dirty = False
        self._wrote_data = False
        self._known_dirs: set[str] = set()
        if self._alloc is not None:
            # The newest meta page may be in the page cache only (its writer
            # died before syncing): make it durable before reusing the pages
            # it freed, which the older meta page still reaches.
            self._mf.sync()
            self._release()

    def _release(self) -> None:
        """Return pending pages that no reader pin, view and snapshot can reach."""
        pins = self._table.pinned() if self._table is not None else []
        self._alloc.release(self._gen,
                            pins + self._views_generations() + self._snapshot_generations())

    def _pin(self, table: ReaderTable) -> None:
        """Pin the newest valid commit for one read call.

        The pin counts only if no newer commit's release scan can have missed
        it.  The writer writes meta ``g+1``, syncs, *then* scans the pins.  So
        after pinning ``g`` (and a fence, so the store is visible before the
        check) the reader is safe when no newer meta page exists, or when the
        newer one is not yet valid (its writer has not reached its scan, or it
        is a torn leftover of a crash); otherwise it moves on and pins again.
        """
        pager = self._pager
        while True:
            if pager.newest_generation() != self._probe:
                self._mf.remap()
                self._load_durable()
            table.pin(self._gen)
            _fence()
            if pager.newest_generation() == self._gen:
                return
            self._mf.remap()
            if pager.load_meta()[0] == self._gen:
                return
            self._probe = -1

    def readers(self) -> builtins.list[ReaderSlot]:
        """Slots of the reader table: live and stale readers of this container."""
        with self._lock:
            self._check_open()
            return self._table.list() if self._table is not None else []

    def _refresh_if_stale(self) -> None:
        """Read-only handles follow the newest commit at the time of each call."""
        if self._alloc is None and self._fixed is None:
            if self._pager.newest_generation() != self._probe:
                self._mf.remap()
                self._load_durable()

    def refresh(self) -> None:
        """Move a read-only handle to the newest commit."""
        with self._lock:
            self._check_open()
            if self._alloc is None:
                self._refresh_if_stale()

    def _check_open(self) -> None:
        if self._pid != os.getpid():
            self._reopen()  # forked, or unpickled: reopen lazily in this process
        if self._closed:
            raise ClosedError(f"container {self.path!r} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._alloc is None:
            raise ReadOnlyError(
                f"container {self.path!r} is open read-only; open it with mode='r+'"
            )

    def close(self) -> None:
        """Commit pending changes (read-write handles) and release the file."""
        with self._lock:
            if self._pid != os.getpid():
                # Forked or unpickled: drop what was inherited, never commit
                # or release the parent's transaction, slot or lock.
                if not self._closed:
                    self._drop_inherited()
                self._pid = os.getpid()
                return
            if self._closed:
                return
            try:
                if self._alloc is not None and self._dirty:
                    self.commit()
            finally:
                self._closed = True
                self._close_thread_handles()
                self._store.clear()
                if self._table is not None:
                    self._table.close()
                self._mf.close()

    def __enter__(self) -> Cartridge:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and not self._closed and self._alloc is not None:
            self.rollback()
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"generation {self._gen}"
        return f"<Cartridge {self.path!r} mode={self.mode!r} {state}>"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    @property
    def generation(self) -> int:
        """Generation of the last commit this handle sees."""
        return self._gen

    # ------------------------------------------- TEMP shim (sqlitepkg branch)
    # Adapters over the private fields with the names of the environment /
    # transaction surface in PLAN.md, so the SQLite package can code against
    # them before the real Environment and transactions land.  Drop at merge.
    @property
    def env(self) -> _ShimEnv:
        """TEMP shim: the environment surface (see PLAN.md)."""
        shim = self.__dict__.get("_shim_env")
        if shim is None:
            shim = self.__dict__["_shim_env"] = _ShimEnv(self)
        return shim

    @property
    def txn(self) -> _ShimTxn:
        """TEMP shim: the handle's current transaction surface (see PLAN.md)."""
        return _ShimTxn(self)

    @property
    def chunk_size(self) -> int:
        """TEMP shim: the container's chunk size in bytes."""
        return self._chunk

    # ---------------------------------------------------------- transactions
    def commit(self) -> None:
        """Make every pending change durable; returns once it is on disk."""
        with self._lock:
            self._check_writable()
            if not self._dirty:
                return
            self._meta_written = False
            try:
                self._commit()
            except BaseException:
                if self._meta_written:
                    # The new meta page may already be what readers (and a
                    # reopen) see: never roll back to pages it reaches. Adopt
                    # whatever the file says now, as a reopen would.
                    self._load_durable()
                else:
                    self.rollback()
                raise

    def _commit(self) -> None:
        gen = self._gen + 1
        self._meta_written = False
        alloc = self._alloc
        pager = self._pager

        def write_node(page: int, node: Node) -> None:
            from .btree import encode_node

            count, body = encode_node(node)
            pager.write_headed(page, PT_LEAF if node.leaf else PT_BRANCH, gen, count, body)

        root, depth, node_pages = self._tree.flush(alloc.alloc_scattered, write_node, gen)
        fields, fm_pages = alloc.write_state(gen)
        written = node_pages + fm_pages
        meta = np.zeros((), META)
        meta["root"] = root if root is not None else (0, 0)
        meta["tree_depth"] = depth
        meta["next_file_id"] = self._next_fid
        meta["file_count"] = self._file_count
        meta["dir_count"] = self._dir_count
        meta["committed_ns"] = time.time_ns()
        for name, value in fields.items():
            if name in ("fm_ptrs", "pending_inline"):
                meta[name][: value.size] = value
            else:
                meta[name] = value
        single = not self._wrote_data and len(written) <= META_SYNC_MAX
        if single:
            meta["commit_flags"] = META_COMMIT_SINGLE_SYNC
            meta["sync_count"] = len(written)
            meta["sync_pages"][: len(written)] = written
            meta["sync_digest"] = pager.sync_digest(written)
        else:
            pager.sync()
        self._meta_written = True
        pager.write_meta(gen, meta)
        pager.sync()
        alloc.committed()
        self._gen = self._probe = gen
        self._meta = meta
        self._dirty = False
        self._wrote_data = False
        self._release()

    def rollback(self) -> None:
        """Discard every change since the last commit."""
        with self._lock:
            self._check_writable()
            kept = self._alloc.rollback()
            root = int(self._meta["root"]["page"])
            self._tree.root = (root, int(self._meta["root"]["generation"])) if root else None
            self._file_count = int(self._meta["file_count"])
            self._dir_count = int(self._meta["dir_count"])
            self._next_fid = int(self._meta["next_file_id"])
            self._dirty = bool(kept)  # pages live views read stay pending: commit that
            self._wrote_data = False
            self._known_dirs.clear()
            self._release()

    # ------------------------------------------------------------- helpers
    def _entry(self, path: str) -> Entry | None:
        return self._cat.get(path)

    def _file_entry(self, path: str) -> Entry:
        entry = self._entry(path)
        if entry is None:
            if path == "/":
                raise IsADirectoryError("'/' is a directory", path)
            raise NotFoundError(f"no such file in {self.path!r}: {path}", path)
        if entry.kind == KIND_DIR:
            raise IsADirectoryError(f"{path} is a directory", path)
        return entry

    def _missing_parents(self, path: str) -> list[str]:
        """Ancestors of ``path`` that must be created; raises if one is a file.

        Directories already seen in this transaction are remembered in
        ``_known_dirs`` (cleared by anything that can remove or move one), so
        writing many files into one directory looks the directory up once.
        """
        known = self._known_dirs
        missing: list[str] = []
        for anc in paths.ancestors(path):
            if missing:
                missing.append(anc)
            elif anc not in known:
                entry = self._entry(anc)
                if entry is None:
                    missing.append(anc)
                elif entry.kind != KIND_DIR:
                    raise NotADirectoryError(f"{anc} is a file, so {path} cannot exist", path)
                else:
                    known.add(anc)
        return missing

    def _make_dirs(self, dirs: list[str], now: int) -> None:
        self._known_dirs.update(dirs)
        for d in dirs:
            self._cat.put(d, Entry(KIND_DIR, 0, 0o755, 0, now, now, 0))
            self._dir_count += 1

    def _fits_inline(self, path: str, meta: bytes, size: int) -> bool:
        cell = 1 + len(path.encode("utf-8")) + ENTRY_STRUCT.size + len(meta) + size
        return size <= INLINE_MAX and cell <= MAX_CELL

    # --------------------------------------------------------------- writing
    def write(self, path: str, data: Any, *, metadata: dict | None = None,
              mode: int | None = None, compression: str | None = DEFAULT,
              level: int | None = None) -> None:
        """Create or replace the file at ``path`` with ``data`` (bytes-like).

        Missing parent directories are created.  ``metadata`` replaces the
        file's user metadata (kept from the old file when None).
        ``compression`` (``"lz4"``, ``"zstd"``, ``"auto"`` or None; the
        container's default when not given) and ``level`` choose how each
        chunk is compressed; later partial writes keep the file's policy.
        """
        with self._lock:
            self._check_writable()
            p = paths.normalize(path)
            policy, level = parse_policy(compression, level, self._default_policy())
            view = _byte_view(data)
            existing = self._entry(p)
            if p == "/" or (existing is not None and existing.kind == KIND_DIR):
                raise IsADirectoryError(f"{p} is a directory", p)
            missing = self._missing_parents(p)
            meta = encode_metadata(metadata) if metadata is not None else (
                existing.meta if existing else b"")
            now = time.time_ns()
            if mode is None:
                mode = existing.mode if existing else 0o644
            entry = Entry(KIND_FILE, policy << ENTRY_POLICY_SHIFT, mode & 0o7777, 0, now,
                          existing.ctime_ns if existing else now, 0, meta)
            if self._fits_inline(p, meta, len(view)):
                entry.flags |= ENTRY_INLINE
                entry.inline = bytes(view)
                entry.size = len(view)
            else:
                entry.file_id = self._next_fid
                self._next_fid += 1
                self._data_write(entry, 0, view, level)
            if existing is not None:
                self._data.free(existing)
            else:
                self._file_count += 1
            self._make_dirs(missing, now)
            self._cat.put(p, entry)
            self._dirty = True

    def append(self, path: str, data: Any) -> None:
        """Append ``data`` to a file, creating it if missing."""
        with self._lock:
            self._check_writable()
            p = paths.normalize(path)
            entry = self._entry(p)
            if entry is None:
                self.write(p, data)
                return
            view = _byte_view(data)
            self._update(p, entry, entry.size, view)

    def write_at(self, path: str, offset: int, data: Any) -> None:
        """Write ``data`` into an existing file at ``offset`` (like ``pwrite``).

        Writing past the end extends the file; a gap reads as zeros.  Only the
        chunks the write touches are copied.
        """
        with self._lock:
            self._check_writable()
            p = paths.normalize(path)
            offset = _non_negative(offset, "offset")
            entry = self._file_entry(p)
            view = _byte_view(data)
            if len(view):  # like pwrite: writing nothing changes nothing
                self._update(p, entry, offset, view)

    def _update(self, p: str, entry: Entry, offset: int, view: memoryview) -> None:
        """Write ``view`` at ``offset`` of an existing file and store its entry."""
        if entry.kind == KIND_DIR:
            raise IsADirectoryError(f"{p} is a directory", p)
        _refuse_array(p, entry)
        end = offset + len(view)
        if entry.flags & ENTRY_INLINE and self._fits_inline(p, entry.meta, max(entry.size, end)):
            buf = bytearray(entry.inline.ljust(max(entry.size, end), b"\0"))
            buf[offset:end] = view
            entry.inline = bytes(buf)
            entry.size = len(buf)
        elif len(view) or end > entry.size:
            converted = entry.flags & ENTRY_INLINE
            if converted:
                entry = self._to_chunked(entry)
            try:
                self._data_write(entry, offset, view)
            except ContainerFullError:
                if converted:
                    self._data.free(entry)
                raise
        entry.mtime_ns = time.time_ns()
        self._cat.put(p, entry)
        self._dirty = True

    def _data_write(self, entry: Entry, offset: int, view: memoryview, level: int = 0) -> None:
        self._data.write(entry, offset, view, self._gen + 1, level)
        self._wrote_data = True

    def _fit_cell(self, path: str, entry: Entry) -> Entry:
        """``entry`` ready to store under ``path``: inline data that would make the
        cell (longer path after a rename) too large moves to data pages."""
        if entry.flags & ENTRY_INLINE and not self._fits_inline(path, entry.meta, entry.size):
            return self._to_chunked(entry)
        return entry

    def _to_chunked(self, entry: Entry) -> Entry:
        """A chunked copy of an inline entry (its bytes moved to data pages)."""
        fresh = Entry(entry.kind, entry.flags & ENTRY_POLICY_MASK, entry.mode, 0,
                      entry.mtime_ns, entry.ctime_ns, self._next_fid, entry.meta)
        self._next_fid += 1
        self._data_write(fresh, 0, memoryview(entry.inline))
        fresh.size = entry.size
        return fresh

    def truncate(self, path: str, size: int) -> None:
        """Cut a file to ``size`` bytes, or extend it with zeros."""
        with self._lock:
            self._check_writable()
            p = paths.normalize(path)
            size = _non_negative(size, "size")
            entry = self._file_entry(p)
            self._truncate_entry(p, entry, size)

    def _truncate_entry(self, p: str, entry: Entry, size: int) -> None:
        _refuse_array(p, entry)
        if entry.flags & ENTRY_INLINE:
            if self._fits_inline(p, entry.meta, size):
                entry.inline = entry.inline[:size].ljust(size, b"\0")
                entry.size = size
            else:
                entry = self._to_chunked(entry)
                entry.size = size
        elif size < entry.size:
            self._data.shrink(entry, size, self._gen + 1)
            self._wrote_data = True
        else:
            entry.size = size
        entry.mtime_ns = time.time_ns()
        self._cat.put(p, entry)
        self._dirty = True

    def delete(self, path: str) -> None:
        """Remove a file (use :meth:`rmdir` for directories)."""
        with self._lock:
            self._check_writable()
            p = paths.normalize(path)
            entry = self._file_entry(p)
            self._data.free(entry)
            self._cat.remove(p)
            self._file_count -= 1
            self._dirty = True

    def mkdir(self, path: str, parents: bool = True, exist_ok: bool = False) -> None:
        """Create a directory (and, with ``parents``, its missing ancestors)."""
        with self._lock:
            self._check_writable()
            p = paths.normalize(path)
            entry = self._entry(p) if p != "/" else Entry(KIND_DIR, 0, 0, 0, 0, 0, 0)
            if entry is not None:
                if entry.kind == KIND_DIR and exist_ok:
                    return
                raise FileExistsError(f"{p} already exists", p)
            missing = self._missing_parents(p)
            if missing and not parents:
                raise NotFoundError(f"parent directory {missing[0]} does not exist", p)
            now = time.time_ns()
            self._make_dirs(missing + [p], now)
            self._dirty = True

    def rmdir(self, path: str) -> None:
        """Remove an empty directory."""
        with self._lock:
            self._check_writable()
            p = paths.normalize(path)
            if p == "/":
                raise InvalidPathError("the root directory cannot be removed")
            entry = self._entry(p)
            if entry is None:
                raise NotFoundError(f"no such directory: {p}", p)
            if entry.kind != KIND_DIR:
                raise NotADirectoryError(f"{p} is not a directory", p)
            if self._cat.has_children(p):
                raise DirectoryNotEmptyError(f"directory {p} is not empty", p)
            self._cat.remove(p)
            self._known_dirs.clear()
            self._dir_count -= 1
            self._dirty = True

    def rename(self, src: str, dst: str) -> None:
        """Move a file or directory (with everything under it) to ``dst``.

        An existing file at ``dst`` is replaced by a file; an existing empty
        directory by a directory.
        """
        with self._lock:
            self._check_writable()
            s, d = paths.normalize(src), paths.normalize(dst)
            self._known_dirs.clear()
            if s == "/":
                raise InvalidPathError("the root directory cannot be renamed")
            entry = self._entry(s)
            if entry is None:
                raise NotFoundError(f"no such file or directory: {s}", s)
            if s == d:
                return
            if d == "/" or d.startswith(s + "/"):
                raise InvalidPathError(f"cannot move {s} into itself ({d})")
            target = self._entry(d)
            if target is not None:
                if target.kind == KIND_DIR and entry.kind != KIND_DIR:
                    raise IsADirectoryError(f"{d} is a directory", d)
                if target.kind != KIND_DIR and entry.kind == KIND_DIR:
                    raise NotADirectoryError(f"{d} is not a directory", d)
                if target.kind == KIND_DIR and self._cat.has_children(d):
                    raise DirectoryNotEmptyError(f"directory {d} is not empty", d)
            missing = self._missing_parents(d)
            now = time.time_ns()
            if target is not None:
                self._data.free(target)
                if target.kind == KIND_DIR:
                    self._dir_count -= 1
                else:
                    self._file_count -= 1
            self._make_dirs(missing, now)
            if entry.kind == KIND_DIR:
                moved = builtins.list(self._cat.descendants(s))
                for old_path, raw in moved:
                    self._cat.remove(old_path)
                    new_path = d + old_path[len(s):]
                    self._cat.put(new_path, self._fit_cell(new_path, Entry.decode(raw)))
            self._cat.remove(s)
            self._cat.put(d, self._fit_cell(d, entry))
            self._dirty = True

    def set_metadata(self, path: str, metadata: dict) -> None:
        """Replace the user metadata of a file or directory."""
        with self._lock:
            self._check_writable()
            p = paths.normalize(path)
            entry = self._entry(p)
            if entry is None:
                raise NotFoundError(f"no such file or directory: {p}", p)
            entry.meta = encode_metadata(metadata)
            if entry.flags & ENTRY_INLINE and not self._fits_inline(p, entry.meta, entry.size):
                entry = self._to_chunked(entry)
            self._cat.put(p, entry)
            self._dirty = True

    # --------------------------------------------------------------- reading
    @_read_op
    def read(self, path: str, offset: int = 0, size: int | None = None) -> bytes:
        """Return ``size`` bytes of a file from ``offset`` (all of it by default)."""
        p = paths.normalize(path)
        offset = _non_negative(offset, "offset")
        if size is not None:
            size = _non_negative(size, "size")
        entry = self._file_entry(p)
        return self._read_entry(entry, offset, size)

    @_read_op
    def _file_version(self, path: str) -> tuple[int, int, int]:
        """What identifies one version of a file: (size, mtime_ns, ctime_ns)."""
        entry = self._file_entry(paths.normalize(path))
        return entry.size, entry.mtime_ns, entry.ctime_ns

    @_read_op
    def _read_version(self, path: str, offset: int, size: int,
                      version: tuple[int, int, int]) -> bytes:
        """``read`` of one version of a file, in one pinned call (file objects)."""
        p = paths.normalize(path)
        entry = self._entry(p)
        if entry is None or entry.kind != KIND_FILE or (
                entry.size, entry.mtime_ns, entry.ctime_ns) != version:
            raise StaleFileError(
                f"{p} changed in a newer commit while a file object was reading it; "
                "reopen the file object to read the new version", p)
        return self._read_entry(entry, offset, size)

    def _read_entry(self, entry: Entry, offset: int, size: int | None) -> bytes:
        end = entry.size if size is None else min(entry.size, offset + size)
        if offset >= end:
            return b""
        if entry.flags & ENTRY_INLINE:
            return entry.inline[offset:end].ljust(end - offset, b"\0")
        if entry.flags & ENTRY_ARRAY:
            return self._array_bytes(entry, offset, end)
        return self._data.read(entry, offset, end)

    @_read_op
    def exists(self, path: str) -> bool:
        """True when a file or directory exists at ``path``."""
        p = paths.normalize(path)
        return p == "/" or self._entry(p) is not None

    @_read_op
    def stat(self, path: str) -> FileInfo:
        """Describe a file or directory."""
        p = paths.normalize(path)
        if p == "/":
            t = self._pager.header.created_ns / 1e9
            return FileInfo("/", "dir", 0, t, t, 0o755, {})
        entry = self._entry(p)
        if entry is None:
            raise NotFoundError(f"no such file or directory: {p}", p)
        info = _info(p, entry)
        if entry.kind == KIND_FILE:
            stored = entry.size if entry.flags & ENTRY_INLINE else self._data.stored_size(entry)
            info = dataclasses.replace(info, stored_size=stored)
        return info

    def list(self, prefix: str = "/", recursive: bool = False) -> builtins.list[str]:
        """Sorted absolute paths under a directory, or matching a name prefix.

        ``prefix`` naming a directory lists its children (all descendants with
        ``recursive``); naming a file gives ``[prefix]``; otherwise it is a
        partial name: the entries of its parent directory whose name starts
        with the last component (and, with ``recursive``, everything below
        those).
        """
        return [p for p, _ in self._scan(prefix, recursive)]

    @_read_op
    def _scan(self, prefix: str, recursive: bool) -> builtins.list[tuple[str, bytes]]:
        """``(path, raw entry)`` pairs for :meth:`list` and :meth:`walk`."""
        p = paths.normalize(prefix)
        entry = None if p == "/" else self._entry(p)
        if p == "/" or (entry is not None and entry.kind == KIND_DIR):
            it = self._cat.descendants(p) if recursive else self._cat.children(p)
            return builtins.list(it)
        if entry is not None:
            return [(p, entry.encode())]
        parent = paths.parent(p)
        pentry = None if parent == "/" else self._entry(parent)
        if parent != "/" and (pentry is None or pentry.kind != KIND_DIR):
            raise NotFoundError(f"no such directory: {parent}", parent)
        stem = paths.name(p).encode("utf-8")
        found = self._cat.descendants(parent, stem)
        if recursive:
            return builtins.list(found)
        return [(q, e) for q, e in found if "/" not in q[len(parent.rstrip("/")) + 1:]]

    def walk(self, prefix: str = "/") -> Iterator[tuple[str, FileInfo]]:
        """``(path, FileInfo)`` for everything under ``prefix``, in path order."""
        for p, raw in self._scan(prefix, True):
            yield p, _info(p, Entry.decode(raw))

    def open_file(self, path: str, mode: str = "rb", *, compression: str | None = DEFAULT,
                  level: int | None = None) -> Any:
        """A binary file object on a file inside the container.

        Modes ``"rb"``, ``"wb"``, ``"ab"`` and ``"r+b"``.  Data streams through
        a buffer; nothing loads the whole file.  ``compression``/``level``
        apply to a file that ``"wb"`` (or ``"ab"`` on a missing file) creates.
        """
        from .fileobj import open_file

        if compression != DEFAULT or level is not None:
            parse_policy(compression, level, (0, 0))
        return open_file(self, path, mode, compression=compression, level=level)

    # ------------------------------------------------------------ reporting
    @_read_op
    def info(self) -> ContainerInfo:
        """Cheap summary of the container (no tree walk)."""
        file_size = self._mf.file_size()
        alloc, holders = self._space()
        runs, largest, free_pages = alloc.stats()
        total = alloc.nbits
        pending = sum(rec[2] for rec in alloc.pending)
        tail = max(0, file_size // PAGE_SIZE - total)
        return ContainerInfo(
            path=self.path,
            size=file_size,
            page_size=PAGE_SIZE,
            total_pages=total,
            used_pages=total - free_pages,
            free=(free_pages + tail) * PAGE_SIZE,
            file_count=self._file_count,
            dir_count=self._dir_count,
            generation=self._gen,
            free_runs=runs,
            largest_free_run=largest,
            fragmentation=0.0 if free_pages == 0 else 1.0 - largest / free_pages,
            pending_pages=pending,
            holders=holders,
            encrypted=self._pager.encrypted,
            compression=CODEC_NAMES[self._pager.header.codec],
            cache={**self._chunk_cache.stats(), "decodes": self._data.decodes},
        )

    @_read_op
    def verify(self, data: bool = True) -> Any:
        """Check every reachable page; see :class:`cartridge.verify.VerifyReport`."""
        from .verify import verify

        meta, full = self._own_meta()
        return verify(self._pager, self._store, meta, self._gen, data=data, free_map=full)

    def _default_policy(self) -> tuple[int, int]:
        """The container's default ``(policy, level)`` from the file header."""
        return self._pager.header.codec, self._pager.header.level


# ---------------------------------------------------------------- helpers
@dataclass(frozen=True, slots=True)
class _ShimOperation:
    """TEMP shim: what a dispatch hook receives."""

    action: str
    paths: tuple[str, ...]


class _ShimEnv:
    """TEMP shim: ``cart.env`` over the handle's private fields."""

    def __init__(self, cart: Cartridge) -> None:
        self._cart = cart
        self.hooks: builtins.list[Any] = []

    @property
    def path(self) -> str:
        return self._cart.path

    @property
    def writable(self) -> bool:
        return self._cart.mode != "r"

    @property
    def lock(self) -> threading.RLock:
        return self._cart._lock

    @property
    def pager(self) -> Pager:
        return self._cart._pager

    @property
    def file(self) -> MappedFile:
        return self._cart._mf

    def dispatch(self, action: str, *paths: str) -> None:
        for hook in self.hooks:
            hook(_ShimOperation(action, paths))


class _ShimTxn:
    """TEMP shim: ``cart.txn`` over the handle's private fields."""

    def __init__(self, cart: Cartridge) -> None:
        self._cart = cart

    @property
    def generation(self) -> int:
        return self._cart._gen

    @property
    def catalog(self) -> Catalog:
        return self._cart._cat

    def entry(self, path: str) -> Entry | None:
        return self._cart._cat.get(path)


def _byte_view(data: Any) -> memoryview:
    if isinstance(data, str):
        raise TypeError("data must be bytes-like, not str; encode it first")
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"data must be bytes-like, got {type(data).__name__}") from None
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def _check_sizes(max_size: Any, chunk_size: Any) -> None:
    """Validate size options before anything touches the disk."""
    if max_size is not None:
        if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)):
            raise TypeError(f"max_size must be an int or None, got {type(max_size).__name__}")
        if max_size < 4 * PAGE_SIZE:
            raise ValueError(f"max_size must be at least {4 * PAGE_SIZE} bytes (an empty "
                             f"container), got {max_size}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise TypeError(f"chunk_size must be an int, got {type(chunk_size).__name__}")
    if chunk_size % PAGE_SIZE or not PAGE_SIZE <= chunk_size <= 1 << 24:
        raise ValueError(f"chunk_size must be a multiple of {PAGE_SIZE} up to 16 MiB, "
                         f"got {chunk_size}")


def _non_negative(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def _info(path: str, entry: Entry) -> FileInfo:
    dtype = shape = chunks = None
    if entry.flags & ENTRY_ARRAY:
        desc = decode_desc(entry.inline)
        dtype, shape, chunks = desc.dtype, desc.shape, desc.chunks
    return FileInfo(path, KIND_NAMES.get(entry.kind, "unknown"), entry.size,
                    entry.mtime_ns / 1e9, entry.ctime_ns / 1e9, entry.mode,
                    decode_metadata(entry.meta),
                    compression=CODEC_NAMES[entry_policy(entry)] if entry.kind == KIND_FILE
                    else None, dtype=dtype, shape=shape, chunks=chunks)


def _refuse_array(path: str, entry: Entry) -> None:
    """Byte-level writes would tear an array from its descriptor."""
    if entry.flags & ENTRY_ARRAY:
        raise IsAnArrayError(
            f"{path} is a numpy array; change it with cart.array({path!r})[...] = values, "
            "or replace it with write() or write_array()", path)


def create(path: str | os.PathLike[str], *, overwrite: bool = False,
           max_size: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
           locking: bool | str = True, timeout: float = 0.0, key: bytes | None = None,
           password: str | None = None, compression: str | None = None,
           level: int | None = None, verify_reads: bool = False,
           cache_size: int = DEFAULT_CACHE_SIZE) -> Cartridge:
    """Create a new, empty container (16 KiB) and open it read-write.

    ``key`` (32 bytes) or ``password`` (through scrypt) encrypts it;
    ``compression``/``level`` set the default policy of new files.
    """
    fs_path = os.fspath(path)
    _check_sizes(max_size, chunk_size)
    check_key_arg(key, password)
    parse_policy(compression, level, (0, 0))
    if os.path.exists(fs_path):
        if not overwrite:
            raise FileExistsError(f"{fs_path!r} already exists; pass overwrite=True", fs_path)
        # Replace, never truncate in place: other processes may still map the
        # old file (truncating it under them is a SIGBUS). Taking the write
        # lock first refuses to pull a container from under a live writer.
        old = MappedFile(fs_path, writable=True, locking=locking is True, timeout=timeout)
        try:
            os.unlink(fs_path)
        finally:
            old.close()
    return Cartridge(fs_path, "r+", max_size=max_size, locking=locking, timeout=timeout,
                     _create=True, chunk_size=chunk_size, key=key, password=password,
                     compression=compression, level=level, verify_reads=verify_reads,
                     cache_size=cache_size)


def open(path: str | os.PathLike[str], mode: str = "r+", *, max_size: int | None = None,  # noqa: A001
         locking: bool | str = True, timeout: float = 0.0, cache_nodes: int = 16384,
         snapshot: str | None = None, key: bytes | None = None, password: str | None = None,
         verify_reads: bool = False, cache_size: int = DEFAULT_CACHE_SIZE) -> Cartridge:
    """Open a container: ``"r"`` read-only, ``"r+"`` read-write, ``"a"`` open or create.

    ``snapshot=name`` (with ``mode="r"``) opens a snapshot taken with
    :meth:`Cartridge.snapshot`.  ``locking`` is ``True`` (take the writer
    lock and use the reader table; fail with :class:`LockingUnsupportedError`
    where the filesystem has no locks), ``"best-effort"`` (the same, but carry
    on without locks, with a warning, where they are unsupported) or ``False``
    (no locks: you guarantee that no process writes while another reads).
    Encrypted containers need ``key`` or ``password`` (WrongKeyError otherwise).
    ``verify_reads`` checks every data chunk's checksum as it is read;
    ``cache_size`` bounds the decoded-chunk ARC cache in bytes.
    """
    return Cartridge(path, mode, max_size=max_size, locking=locking, timeout=timeout,
                     cache_nodes=cache_nodes, snapshot=snapshot, key=key, password=password,
                     verify_reads=verify_reads, cache_size=cache_size)
