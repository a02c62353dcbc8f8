"""The public API: the :class:`Cartridge` facade, :func:`create` and :func:`open`.

A :class:`Cartridge` is a friendly handle over two objects of its own: an
:class:`~cartridge.env.Environment` (the open file: map, locks, reader table,
pager, caches, hooks) and the transaction it currently works in.  A
read-write handle has one :class:`~cartridge.txn.WriteTxn`: ``write``,
``delete`` and friends change it, ``commit()`` makes it durable and
``rollback()`` forgets it; its own reads see its pending changes, other
handles see the last commit.  A read-only handle reads committed generations
through :class:`~cartridge.txn.ReadTxn` objects:

* a plain read-only handle follows the newest commit: each call pins the
  newest generation in the reader table for its duration;
* a *read transaction*, ``with cart.reader() as r:``, pins the newest commit
  when it starts and reads only it until it is closed;
* a *snapshot handle*, ``cartridge.open(path, "r", snapshot=name)``, pins the
  generation a named snapshot records.

Every public operation does the same three things before it touches a
transaction: take the handle's lock, check the handle is open (reopening
lazily after fork or unpickling), and pass the operation through the choke
point, ``env.dispatch(action, *paths)`` (``dispatch.py``), where access
control and audit hooks attach.  Then it delegates: file and directory
operations to the transaction, everything else to a service module
(``snapshots``, ``compaction``, ``rekey``, ``arrays``, ``verify``).

Threads.  Every call runs under the handle's lock, so one handle may be
shared by threads; calls are serialized.  A plain read-only handle used from
a thread other than the one that opened it passes the call to that thread's
own read-only handle (LMDB's per-thread read transactions), so threads
sharing one read-only object read in parallel.

Processes.  Handles pickle their constructor arguments (never a key or
password: see ``key_file=``/``password_env=``) and what they pin (a snapshot
name, or the generation and tree root of a read transaction), and reopen
lazily in the receiving process on first use.  A handle whose process id
changed (``fork``) reopens the same way; the child never touches the
parent's reader slot or write lock.
"""

from __future__ import annotations

import builtins
import os
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import compaction, paths, rekey, snapshots
from .arrayformat import ArrayDesc, encode_attrs
from .arrays import ArrayService, Dataset, plan_dataset
from .arrays.shapes import check_dtype
from .cache import DEFAULT_CACHE_SIZE
from .catalog import Entry
from .codec import DEFAULT, parse_policy
from .compaction import Callback, CompactResult
from .crypto import check_key_arg, resolve_key_source
from .env import Environment, check_locking
from .errors import (
    ClosedError,
    FileExistsError,
    ReadOnlyError,
    StaleFileError,
    UncommittedChangesWarning,
    WrongKeyError,
)
from .layout import CODEC_NAMES, DEFAULT_CHUNK_SIZE, ENTRY_ARRAY, PAGE_SIZE
from .mapfile import MappedFile
from .readers import ReaderSlot
from .snapshots import DiffResult, SnapshotInfo
from .txn import (
    FileInfo,
    ReadTxn,
    WriteTxn,
    byte_view,
    non_negative,
    walk_infos,
)

__all__ = ["Cartridge", "ContainerInfo", "FileInfo", "create", "open"]

_MODES = ("r", "r+", "a")


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


class _Pending:
    """Uncommitted changes of a read-write handle, shared with its finalizer.

    The finalizer must not hold the handle itself (it would never be
    collected), so what it reports lives here.
    """

    __slots__ = ("changes", "path", "live", "pid")

    def __init__(self, path: str) -> None:
        self.changes = 0
        self.path = path
        self.live = True
        self.pid = os.getpid()


def _warn_dropped(pending: _Pending) -> None:
    """At collection or interpreter exit: say that uncommitted changes are lost."""
    if pending.live and pending.changes and pending.pid == os.getpid():
        warnings.warn(
            f"cartridge: {pending.changes} uncommitted change(s) to {pending.path!r} were "
            "dropped: the handle was never committed or closed (call commit() or close(), "
            "or use 'with cartridge.open(...) as cart:')", UncommittedChangesWarning,
            stacklevel=2)


class Cartridge:
    """An open container.  Use :func:`cartridge.create` or :func:`cartridge.open`."""

    def __init__(self, path: str | os.PathLike[str], mode: str = "r+", *,
                 max_size: int | None = None, locking: bool | str = True,
                 timeout: float = 0.0, cache_nodes: int = 16384,
                 snapshot: str | None = None, _create: bool = False,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, key: bytes | None = None,
                 password: str | None = None, key_file: str | os.PathLike[str] | None = None,
                 password_env: str | None = None, compression: str | None = None,
                 level: int | None = None, verify_reads: bool = False,
                 cache_size: int = DEFAULT_CACHE_SIZE, principal: str | None = None,
                 context: Mapping[str, Any] | None = None, _fixed: Any = None) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        _check_sizes(max_size, chunk_size)
        check_locking(locking)
        if key_file is not None:
            key_file = os.path.abspath(os.fspath(key_file))  # workers may run elsewhere
        key, password = resolve_key_source(key, password, key_file, password_env)
        policy = parse_policy(compression, level, (0, 0))
        if snapshot is not None:
            if mode != "r":
                raise ValueError("snapshots open read-only: pass mode='r' with snapshot=")
            _fixed = ("snapshot", snapshot)
        self.path = os.fspath(path)
        self.mode = mode
        self._lock = threading.RLock()
        self._closed = True
        self._pid = os.getpid()
        # What a read transaction, a pickled copy or a forked child reopens with.
        # Secrets stay in memory only: a pickle carries key_file/password_env.
        self._options: dict[str, Any] = {
            "max_size": max_size, "locking": locking, "timeout": timeout,
            "cache_nodes": cache_nodes, "key_file": key_file, "password_env": password_env,
            "verify_reads": bool(verify_reads), "cache_size": cache_size,
            "principal": principal, "context": dict(context or {})}
        self._secrets = {"key": key, "password": password} if (
            key_file is None and password_env is None) else {}
        self._fixed = _fixed
        self._home = threading.get_ident()
        self._threads = threading.local()  # other threads' own handles
        self._children: weakref.WeakSet[Cartridge] = weakref.WeakSet()
        writable = mode != "r"
        create_file = _create or (mode == "a" and not os.path.exists(self.path))
        self._env = Environment(
            self.path, writable, create_file, locking=locking, timeout=timeout,
            cache_nodes=cache_nodes, chunk_size=chunk_size, max_size=max_size, policy=policy,
            key=key, password=password, verify_reads=verify_reads, cache_size=cache_size,
            principal=principal, context=context, lock=self._lock)
        self._pending = _Pending(self.path)
        try:
            self._txn: ReadTxn = WriteTxn(self._env) if writable else self._load_read()
            if self._fixed is not None:
                self._load_fixed()
        except BaseException:
            self._env.close()
            raise
        if isinstance(self._txn, WriteTxn):
            weakref.finalize(self, _warn_dropped, self._pending)
        self._closed = False
        self._start_services()

    # ------------------------------------------------------------- surface
    @property
    def env(self) -> Environment:
        """The open file this handle works on (map, locks, pager, hooks)."""
        self._check_open()
        return self._env

    @property
    def txn(self) -> ReadTxn:
        """The transaction this handle currently reads or writes.

        A read-write handle's is its :class:`~cartridge.txn.WriteTxn`.  A
        plain read-only handle's is the commit its last call read (pinned
        only during calls: use :meth:`reader` to hold one).
        """
        self._check_open()
        return self._txn

    @property
    def hooks(self) -> Any:
        """The choke point's hooks: ``cart.hooks.add(hook)`` runs ``hook(op)`` first
        on every operation (see :mod:`cartridge.dispatch`)."""
        return self.env.hooks

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    @property
    def generation(self) -> int:
        """Generation of the last commit this handle sees."""
        self._check_open()
        return self._txn.generation

    @property
    def max_size(self) -> int | None:
        """The container's size limit in bytes (None: unlimited)."""
        return self.env.max_size

    @property
    def chunk_size(self) -> int:
        """Bytes per data chunk of files (set at ``create()``)."""
        return self.env.chunk_size

    @property
    def reader_slot(self) -> int | None:
        """This handle's slot in the reader table (None for writers, without locks)."""
        return self.env.reader_slot

    # ------------------------------------------------------------- lifecycle
    def _load_read(self) -> ReadTxn:
        gen, meta = self._env.load_durable()
        return ReadTxn(self._env, gen, meta)

    def _start_services(self) -> None:
        """Services that keep state per handle: the arrays' view pins and caches."""
        self._arrays = ArrayService(self.path, self._env.readers is not None)
        self._env.add_pin_source(self._arrays.pins.generations)

    def _pin(self) -> ReadTxn:
        """The transaction a read call uses, pinned for the call.

        Read-write handles read their own transaction; read transactions and
        snapshot handles hold their pin for their whole life.  A plain
        read-only handle moves to the newest commit and pins it; the pin
        counts only if no newer commit's release scan can have missed it
        (``ReaderTable.pin_checked``), otherwise it moves on and pins again.
        """
        env = self._env
        if self._fixed is not None or env.writable:
            return self._txn
        while True:
            if env.stale():
                env.file.remap()
                self._txn = self._load_read()
            if env.pin(self._txn.generation):
                return self._txn
            env.probe = -1

    def _unpin(self) -> None:
        if self._fixed is None and not self._env.writable:
            self._env.unpin()

    def _check_open(self) -> None:
        if self._pid != os.getpid():
            self._reopen()  # forked, or unpickled: reopen lazily in this process
        if self._closed:
            raise ClosedError(f"container {self.path!r} is closed")

    def _writer(self, action: str, *names: str) -> WriteTxn:
        """Check the handle is writable, dispatch ``action``, return the write transaction."""
        self._check_open()
        txn = self._txn
        if not isinstance(txn, WriteTxn):
            raise ReadOnlyError(
                f"container {self.path!r} is open read-only; open it with mode='r+'")
        self._env.dispatch(action, *names)
        return txn

    def _changed(self) -> None:
        """Count one uncommitted change (reported if the handle is dropped)."""
        self._pending.changes += 1

    def _committing(self, action: str, names: tuple[str, ...], func: Callable[..., Any],
                    *args: Any) -> Any:
        """An operation that commits (snapshots, compaction, rekey): dispatch, run
        ``func(write txn, *args)``, then settle the change count however it ended."""
        with self._lock:
            txn = self._writer(action, *names)
            try:
                return func(txn, *args)
            finally:
                self._settled(txn)

    def _settled(self, txn: WriteTxn) -> None:
        """After anything that may commit or roll back: forget the change count
        once the transaction holds no change of the user's any more."""
        if not txn.dirty:
            self._pending.changes = 0

    def _reading(self, action: str, names: tuple[str, ...], func: Callable[..., Any],
                 *args: Any) -> Any:
        """Dispatch ``action``, then run ``func(txn, *args)`` on a pinned transaction."""
        self._env.dispatch(action, *names)
        txn = self._pin()
        try:
            return func(txn, *args)
        finally:
            self._unpin()

    def _on_path(self, action: str, path: str, func: Callable[..., Any], *args: Any) -> Any:
        """One read call on ``path``: lock, check, normalize, dispatch ``action``, then
        ``func(txn, normalized path, *args)`` on a pinned transaction."""
        with self._lock:
            self._check_open()
            p = paths.normalize(path)
            return self._reading(action, (p,), func, p, *args)

    @property
    def _array_service(self) -> ArrayService:
        """The array service, after ``_check_open`` (an unpickled handle gets its
        service when it reopens)."""
        self._check_open()
        return self._arrays

    def _on_write(self, action: str, path: str, func: Callable[..., Any], *args: Any) -> None:
        """One write call on ``path``: lock, check, normalize, dispatch ``action``, then
        ``func(write txn, normalized path, *args)``; counts one uncommitted change."""
        with self._lock:
            self._check_open()
            p = paths.normalize(path)
            func(self._writer(action, p), p, *args)
            self._changed()

    def refresh(self) -> None:
        """Move a read-only handle to the newest commit."""
        with self._lock:
            self._check_open()
            self._env.dispatch("container.refresh")
            if self._fixed is None and not self._env.writable and self._env.stale():
                self._env.file.remap()
                self._txn = self._load_read()

    def readers(self) -> builtins.list[ReaderSlot]:
        """Slots of the reader table: live and stale readers of this container."""
        with self._lock:
            self._check_open()
            self._env.dispatch("container.readers")
            return self._env.reader_slots()

    def clear_stale_readers(self) -> builtins.list[ReaderSlot]:
        """Empty the reader-table slots of dead processes; return them.

        A stale slot already holds nothing back (the writer ignores slots
        whose owner's lock vanished); clearing tidies the table and what
        :meth:`readers` and ``cart check`` report.
        """
        with self._lock:
            self._check_open()
            self._env.dispatch("container.clear_stale_readers")
            return self._env.clear_stale_readers()

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
                if isinstance(self._txn, WriteTxn) and self._txn.dirty:
                    self.commit()
            finally:
                self._closed = True
                self._pending.live = False
                self._arrays.forget()
                self._close_thread_handles()
                self._env.close()

    def __enter__(self) -> Cartridge:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is not None:
                self._discard()
        finally:
            self.close()

    def _discard(self) -> None:
        """Leaving a ``with`` block on an exception: forget the transaction.

        Part of closing, not an operation of its own (no dispatch): a hook
        must not be able to keep an aborted block's changes, nor the handle
        open.
        """
        with self._lock:
            if self._pid != os.getpid() or self._closed:
                return
            txn = self._txn
            if isinstance(txn, WriteTxn):
                txn.rollback()
                self._pending.changes = 0

    def __repr__(self) -> str:
        txn = self.__dict__.get("_txn")
        state = "closed" if self._closed or txn is None else f"generation {txn.generation}"
        return f"<Cartridge {self.path!r} mode={self.mode!r} {state}>"

    def __del__(self) -> None:
        # A forgotten read-only handle must not pin its generation (and hold
        # space) until the process exits.  Writers are left alone: closing
        # one would commit (their finalizer warns about dropped changes).
        if (getattr(self, "mode", None) == "r" and getattr(self, "_pid", None) == os.getpid()
                and getattr(self, "_closed", True) is False):
            try:
                self.close()
            except Exception:  # noqa: BLE001 - never raise from a finalizer
                pass

    # ---------------------------------------------------------- transactions
    def commit(self) -> None:
        """Make every pending change durable; returns once it is on disk."""
        with self._lock:
            txn = self._writer("container.commit")
            try:
                txn.commit()
            finally:
                # Committed, or rolled back (a failed commit): nothing of the
                # user's is pending either way.
                self._pending.changes = 0

    def rollback(self) -> None:
        """Discard every change since the last commit."""
        with self._lock:
            txn = self._writer("container.rollback")
            txn.rollback()
            self._pending.changes = 0

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
            self._check_open()
            p = paths.normalize(path)
            txn = self._writer("file.write", p)
            policy, lvl = parse_policy(compression, level, txn.default_policy())
            txn.write(p, byte_view(data), metadata, mode, policy, lvl)
            self._changed()

    def append(self, path: str, data: Any) -> None:
        """Append ``data`` to a file, creating it if missing."""
        with self._lock:
            self._check_open()
            p = paths.normalize(path)
            txn = self._writer("file.append", p)
            entry = txn.entry(p)
            view = byte_view(data)
            if entry is None:
                policy, lvl = txn.default_policy()
                txn.write(p, view, None, None, policy, lvl)
            else:
                txn.update(p, entry, entry.size, view)
            self._changed()

    def write_at(self, path: str, offset: int, data: Any) -> None:
        """Write ``data`` into an existing file at ``offset`` (like ``pwrite``).

        Writing past the end extends the file; a gap reads as zeros.  Only the
        chunks the write touches are copied.
        """
        with self._lock:
            self._check_open()
            p = paths.normalize(path)
            offset = non_negative(offset, "offset")
            txn = self._writer("file.write_at", p)
            entry = txn.file_entry(p)
            view = byte_view(data)
            if len(view):  # like pwrite: writing nothing changes nothing
                txn.update(p, entry, offset, view)
                self._changed()

    def truncate(self, path: str, size: int) -> None:
        """Cut a file to ``size`` bytes, or extend it with zeros."""
        with self._lock:
            self._check_open()
            p = paths.normalize(path)
            size = non_negative(size, "size")
            self._writer("file.truncate", p).truncate(p, size)
            self._changed()

    def delete(self, path: str) -> None:
        """Remove a file (use :meth:`rmdir` for directories)."""
        self._on_write("file.delete", path, WriteTxn.delete)

    def mkdir(self, path: str, parents: bool = True, exist_ok: bool = False) -> None:
        """Create a directory (and, with ``parents``, its missing ancestors)."""
        self._on_write("dir.create", path, WriteTxn.mkdir, parents, exist_ok)

    def rmdir(self, path: str) -> None:
        """Remove an empty directory."""
        self._on_write("dir.delete", path, WriteTxn.rmdir)

    def rename(self, src: str, dst: str) -> None:
        """Move a file or directory (with everything under it) to ``dst``.

        An existing file at ``dst`` is replaced by a file; an existing empty
        directory by a directory.
        """
        with self._lock:
            self._check_open()
            s, d = paths.normalize(src), paths.normalize(dst)
            self._writer("path.rename", s, d).rename(s, d)
            self._changed()

    def set_metadata(self, path: str, metadata: dict) -> None:
        """Replace the user metadata of a file or directory."""
        self._on_write("path.set_metadata", path, WriteTxn.set_metadata, metadata)

    # --------------------------------------------------------------- reading
    def _thread_handle(self) -> Cartridge | None:
        """This thread's own handle on the same container, or None to use ``self``.

        LMDB gives each thread its own read transaction; a plain read-only
        ``Cartridge`` does the same behind the scenes.  Calls from the thread
        that opened it run on it; every other thread gets (once) a read-only
        handle of its own, with its own lock, mapping and reader slot, so
        reads from many threads run in parallel instead of queueing on one
        lock.  Each such handle dies with its thread (it lives in a
        thread-local) or when this one closes.  Read-write handles, read
        transactions and snapshot handles are not delegated: their calls are
        serialized by the handle's lock.
        """
        self._check_open()  # also reopens a forked or unpickled handle first
        if (self.mode != "r" or self._fixed is not None
                or threading.get_ident() == self._home or self._env.in_operation()):
            return None
        local = self._threads
        other = getattr(local, "handle", None)
        if other is None or other._closed:
            with self._lock:
                self._check_open()
                other = Cartridge(self.path, "r", **self._reopen_options())
                other._env.hooks = self._env.hooks
                self._children.add(other)
            local.handle = other
        return other

    def _close_thread_handles(self) -> None:
        for other in list(self._children):
            other.close()

    def read(self, path: str, offset: int = 0, size: int | None = None, *,
             version: tuple[int, int, int] | None = None) -> bytes:
        """Return ``size`` bytes of a file from ``offset`` (all of it by default).

        ``version`` (from :meth:`file_version`) reads only that version of the
        file: :class:`StaleFileError` if a newer commit changed it (file
        objects on read-only handles use this so they never splice two).
        """
        other = self._thread_handle()
        if other is not None:
            return other.read(path, offset, size, version=version)
        with self._lock:
            self._check_open()
            p = paths.normalize(path)
            offset = non_negative(offset, "offset")
            if size is not None:
                size = non_negative(size, "size")
            return self._reading("file.read", (p,), self._read_file, p, offset, size, version)

    def _read_file(self, txn: ReadTxn, p: str, offset: int, size: int | None,
                   version: tuple[int, int, int] | None) -> bytes:
        entry = txn.file_entry(p)
        if version is not None and (entry.size, entry.mtime_ns, entry.ctime_ns) != version:
            raise StaleFileError(
                f"{p} changed in a newer commit while a file object was reading it; "
                "reopen the file object to read the new version", p)
        if entry.flags & ENTRY_ARRAY:
            end = entry.size if size is None else min(entry.size, offset + size)
            return self._arrays.read_bytes(txn, entry, offset, end) if offset < end else b""
        return txn.read_entry(entry, offset, size)

    def file_version(self, path: str) -> tuple[int, int, int]:
        """What identifies one version of a file: ``(size, mtime_ns, ctime_ns)``."""
        other = self._thread_handle()
        if other is not None:
            return other.file_version(path)
        entry: Entry = self._on_path("path.stat", path, ReadTxn.file_entry)
        return entry.size, entry.mtime_ns, entry.ctime_ns

    def exists(self, path: str) -> bool:
        """True when a file or directory exists at ``path``."""
        other = self._thread_handle()
        if other is not None:
            return other.exists(path)
        return bool(self._on_path("path.exists", path, ReadTxn.exists))

    def stat(self, path: str) -> FileInfo:
        """Describe a file or directory."""
        other = self._thread_handle()
        if other is not None:
            return other.stat(path)
        info: FileInfo = self._on_path("path.stat", path, ReadTxn.stat)
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

    def walk(self, prefix: str = "/") -> Iterator[tuple[str, FileInfo]]:
        """``(path, FileInfo)`` for everything under ``prefix``, in path order."""
        return walk_infos(self._scan(prefix, True))

    def _scan(self, prefix: str, recursive: bool) -> builtins.list[tuple[str, bytes]]:
        other = self._thread_handle()
        if other is not None:
            return other._scan(prefix, recursive)
        items: builtins.list[tuple[str, bytes]] = self._on_path("dir.list", prefix, ReadTxn.scan,
                                                                recursive)
        return items

    def is_raw(self, path: str) -> bool:
        """True when ``path``'s bytes lie uncompressed and unencrypted in data pages.

        Inline files (small, kept in their catalog entry) are not raw either:
        they have no data pages to map.  Zero-copy views are possible only then.
        """
        return bool(self._on_path("path.stat", path, _is_raw))

    def require_raw(self, path: str, what: str = "a view") -> None:
        """Raise :class:`EncodedDataError` unless :meth:`is_raw` holds for ``path``."""
        self._on_path("path.stat", path, ReadTxn.require_raw, what)

    def open_file(self, path: str, mode: str = "rb", *, compression: str | None = DEFAULT,
                  level: int | None = None) -> Any:
        """A binary file object on a file inside the container.

        Modes ``"rb"``, ``"wb"``, ``"ab"`` and ``"r+b"``.  Data streams through
        a buffer; nothing loads the whole file.  ``compression``/``level``
        apply to a file that ``"wb"`` (or ``"ab"`` on a missing file) creates.
        Each read or write of the object passes the choke point as
        ``file.read``/``file.write_at``.
        """
        from .fileobj import open_file

        with self._lock:
            self._check_open()
            p = paths.normalize(path)
            self._env.dispatch("file.open", p)
        if compression != DEFAULT or level is not None:
            parse_policy(compression, level, (0, 0))
        return open_file(self, p, mode, compression=compression, level=level)

    # ----------------------------------------------------------------- arrays
    def write_array(self, path: str, arr: Any, *, attrs: dict | None = None,
                    compression: str | None = DEFAULT, level: int | None = None) -> None:
        """Store a numpy array at ``path`` (replacing what is there).

        Any non-object dtype (numbers, bool, complex, ``S``/``U`` strings,
        datetime64/timedelta64, nested structured dtypes) keeps its byte order;
        the bytes go to one contiguous page-aligned extent in C order (Fortran
        order for Fortran-contiguous arrays), so :meth:`view` can map them.
        ``attrs`` is a JSON-able dict.  Raises :class:`TypeError`
        (:class:`~cartridge.UnsupportedDtypeError`) for object dtypes and
        variable-width strings.

        ``compression`` (``"lz4"``, ``"zstd"``, ``"auto"`` or None; the
        container's default when not given) and ``level`` compress each chunk
        on its own, as for files.  A compressed array, and every array of an
        encrypted container, is read by decoding only the chunks a read
        touches; it cannot be viewed (:class:`~cartridge.EncodedDataError`).
        """
        arr = np.asarray(arr)
        check_dtype(arr.dtype)
        if attrs is not None:
            encode_attrs(attrs)
        with self._lock:
            self._check_open()
            p = paths.normalize(path)
            txn = self._writer("array.write", p)
            policy, lvl = parse_policy(compression, level, txn.default_policy())
            self._arrays.write_array(txn, p, arr, attrs, policy, lvl)
            self._changed()

    def create_dataset(self, path: str, shape: Any, dtype: Any = np.float64, *,
                       maxshape: Any = None, chunks: Any = None, fill_value: Any = 0,
                       attrs: dict | None = None, compression: str | None = DEFAULT,
                       level: int | None = None) -> Dataset:
        """Create an array without data (h5py-style) and return its :class:`Dataset`.

        ``maxshape`` (a tuple, ``None`` entries meaning unlimited) makes it
        resizable, which needs chunked storage: ``chunks`` is a chunk shape or
        ``True`` for an automatic one (implied by ``maxshape``).  Without
        either, the array is contiguous (viewable), filled with ``fill_value``.
        ``compression``/``level`` as for :meth:`write_array`; ``level`` applies
        to the chunks this call writes (later writes use the codec's default
        level, as partial writes of files do).
        """
        plan = plan_dataset(shape, dtype, maxshape, chunks, fill_value, attrs)
        with self._lock:
            self._check_open()
            p = paths.normalize(path)
            txn = self._writer("array.create", p)
            policy, lvl = parse_policy(compression, level, txn.default_policy())
            self._arrays.create_dataset(txn, p, plan, policy, lvl)
            self._changed()
        return Dataset(self, p)

    def array(self, path: str) -> Dataset:
        """A lazy :class:`Dataset` on the array at ``path`` (checked to exist)."""
        self._on_path("array.open", path, self._array_service.describe)
        return Dataset(self, paths.normalize(path))

    def view(self, path: str) -> np.ndarray:
        """A read-only, zero-copy ndarray on the mapped pages of the array at ``path``.

        O(1) in the array's size.  The view shows the generation it was taken
        from and stays valid and unchanged whatever happens to the file or the
        container afterwards (see the README's Caveats).
        Chunked datasets and arrays changed in place are not one extent: read
        them with ``cart.array(path)[...]`` (raises :class:`NotContiguousError`).
        Compressed arrays and every array of an encrypted container are not in
        the map as they are (raises :class:`EncodedDataError`).
        """
        other = self._thread_handle()
        if other is not None:
            return other.view(path)
        out: np.ndarray = self._on_path("array.view", path, self._array_service.view)
        return out

    @property
    def mapping(self) -> np.ndarray:
        """The current memory map as a read-only uint8 array.

        Views returned by :meth:`view` point into it (``np.shares_memory(view,
        cart.mapping)`` holds until the container grows and is remapped).
        """
        with self._lock:
            self._check_open()
            self._env.dispatch("container.mapping")
            out = self._env.file.buf[:]
            out.flags.writeable = False
            return out

    def describe_array(self, path: str) -> ArrayDesc:
        """The descriptor of the array at ``path``: dtype, shape, maxshape, chunks,
        fill value, order and layout (what :class:`Dataset` properties read)."""
        other = self._thread_handle()
        if other is not None:
            return other.describe_array(path)
        desc: ArrayDesc = self._on_path("array.read", path, self._array_service.describe)
        return desc

    def read_array(self, path: str, key: Any = ...) -> Any:
        """``array[key]`` of the array at ``path`` as a new ndarray (or scalar);
        only the chunks the index touches are read (``Dataset.__getitem__``)."""
        other = self._thread_handle()
        if other is not None:
            return other.read_array(path, key)
        with self._lock:
            self._check_open()
            p = paths.normalize(path)
            env = self._env
            if self._fixed is not None or env.writable or isinstance(key, (str, list)):
                return self._reading("array.read", (p,), self._arrays.getitem, p, key)
            env.dispatch("array.read", p)
            found, view = self._arrays.kept_view(p, env.pager.newest_generation())
            if found and view is not None:
                out = view[key]
                if isinstance(out, np.ndarray) and np.may_share_memory(out, view):
                    out = out.copy()
                return out
            txn = self._pin()
            try:
                out = self._arrays.getitem(txn, p, key)
                if not found:
                    self._arrays.keep_view(txn, p)
                return out
            finally:
                self._unpin()

    def array_attrs(self, path: str) -> dict:
        """The JSON-able attributes of the array at ``path`` (``Dataset.attrs``)."""
        other = self._thread_handle()
        if other is not None:
            return other.array_attrs(path)
        attrs: dict = self._on_path("array.read", path, self._array_service.attrs)
        return attrs

    def update_array(self, path: str, key: Any, value: Any) -> None:
        """``array[key] = value`` on the array at ``path``, copying on write only the
        chunks that change (``Dataset.__setitem__``)."""
        self._on_write("array.update", path, self._array_service.setitem, key, value)

    def resize_array(self, path: str, shape: Any) -> None:
        """Change the shape of the chunked dataset at ``path`` (``Dataset.resize``)."""
        self._on_write("array.resize", path, self._array_service.resize, shape)

    def append_array(self, path: str, values: Any, axis: int = 0) -> None:
        """Grow the chunked dataset at ``path`` along ``axis`` by ``values``
        (``Dataset.append``): one operation, ``array.resize``; if writing the
        values fails, the dataset keeps its shape."""
        self._on_write("array.resize", path, self._array_service.append, values, axis)

    def set_array_attrs(self, path: str, attrs: dict) -> None:
        """Replace the attributes of the array at ``path`` (``Dataset.attrs[...] = v``)."""
        encode_attrs(attrs)
        self._on_write("array.set_attrs", path, self._array_service.set_attrs, attrs)

    # ------------------------------------------------------------ reporting
    def info(self) -> ContainerInfo:
        """Cheap summary of the container (no tree walk)."""
        other = self._thread_handle()
        if other is not None:
            return other.info()
        with self._lock:
            self._check_open()
            info: ContainerInfo = self._reading("container.info", (), self._info)
            return info

    def _info(self, txn: ReadTxn) -> ContainerInfo:
        file_size = self._env.file.file_size()
        alloc, holders = self._space(txn)
        runs, largest, free_pages = alloc.stats()
        total = alloc.nbits
        pending = sum(rec[2] for rec in alloc.pending)
        tail = max(0, file_size // PAGE_SIZE - total)
        pager = self._env.pager
        return ContainerInfo(
            path=self.path,
            size=file_size,
            page_size=PAGE_SIZE,
            total_pages=total,
            used_pages=total - free_pages,
            free=(free_pages + tail) * PAGE_SIZE,
            file_count=txn.file_count,
            dir_count=txn.dir_count,
            generation=txn.generation,
            free_runs=runs,
            largest_free_run=largest,
            fragmentation=0.0 if free_pages == 0 else 1.0 - largest / free_pages,
            pending_pages=pending,
            holders=holders,
            encrypted=pager.encrypted,
            compression=CODEC_NAMES[pager.header.codec],
            cache={**self._env.chunk_cache.stats(), "decodes": txn.data.decodes},
        )

    def _space(self, txn: ReadTxn) -> tuple[Any, builtins.list[str]]:
        """The free map this handle may read safely, and what holds space in it.

        A snapshot handle's own meta page may be recycled by now (it pins
        only the snapshot's tree), so it asks a fresh plain handle.
        """
        _meta, full = txn.own_meta()
        if full:
            alloc = txn.space()
            return alloc, txn.holders(alloc.pending)
        with Cartridge(self.path, "r", **self._reopen_options()) as fresh:
            with fresh._lock:
                fresh._check_open()
                ftxn = fresh._pin()
                try:
                    alloc = ftxn.space()
                    return alloc, ftxn.holders(alloc.pending)
                finally:
                    fresh._unpin()

    def verify(self, data: bool = True) -> Any:
        """Check every reachable page; see :class:`cartridge.verify.VerifyReport`."""
        from .verify import verify

        with self._lock:
            self._check_open()
            return self._reading("container.verify", (), self._verify, data, verify)

    def _verify(self, txn: ReadTxn, data: bool, verify: Any) -> Any:
        meta, full = txn.own_meta()
        return verify(self._env.pager, self._env.nodes, meta, txn.generation, data=data,
                      free_map=full)

    # ------------------------------------------------------------- snapshots
    def snapshot(self, name: str) -> SnapshotInfo:
        """Pin the current state under ``name``, in O(1) whatever the size.

        Pending changes are committed first (they become part of the
        snapshot); then one more commit records the snapshot.  Its pages stay
        in the file, shared with the live tree, until :meth:`delete_snapshot`.
        """
        return self._committing("snapshot.create", (name,), snapshots.take, name)

    def snapshots(self) -> builtins.list[SnapshotInfo]:
        """Every snapshot, oldest first: name, generation, time, bytes only it holds."""
        other = self._thread_handle()
        if other is not None:
            return other.snapshots()
        with self._lock:
            self._check_open()
            out: builtins.list[SnapshotInfo] = self._reading(
                "snapshot.list", (), snapshots.list_snapshots)
            return out

    def delete_snapshot(self, name: str) -> None:
        """Delete a snapshot and commit; the pages only it kept are freed."""
        self._committing("snapshot.delete", (name,), snapshots.delete, name)

    def restore(self, name: str) -> None:
        """Make a new commit whose contents equal snapshot ``name``.

        Uncommitted changes are discarded.  Every snapshot (older or newer
        than ``name``) is kept.
        """
        self._committing("snapshot.restore", (name,), snapshots.restore, name)

    def diff(self, a: str | None, b: str | None = None) -> DiffResult:
        """Paths added, removed and changed from ``a`` to ``b``.

        Each side is a snapshot name, or None for the state this handle sees
        now (a writer's includes its uncommitted changes).
        """
        other = self._thread_handle()
        if other is not None:
            return other.diff(a, b)
        with self._lock:
            self._check_open()
            names = tuple(n for n in (a, b) if n is not None)
            out: DiffResult = self._reading("snapshot.diff", names, snapshots.diff, a, b)
            return out

    # ------------------------------------------------- compaction, copy, rekey
    def compact(self, max_pages: int | None = None,
                callback: Callback | None = None) -> CompactResult:
        """Move live pages from the end of the file into holes, then truncate it.

        ``max_pages`` bounds the pages moved by this call (None: as many as it
        takes); call again to continue.  Pending changes are committed
        first.  ``callback(moved, to_move)`` reports progress.
        """
        return self._committing("container.compact", (), compaction.compact, max_pages, callback)

    def copy(self, dest: str | os.PathLike[str], compact: bool = True, *,
             overwrite: bool = False, callback: Callback | None = None) -> None:
        """Write the state this handle reads to a new container at ``dest``.

        A read-write handle copies its last commit (pending changes are
        committed first), a plain read-only handle the newest commit, a read
        transaction or snapshot handle the state it pins.  With
        ``compact=True`` (like ``mdb_copy -c``) the copy is a fresh,
        defragmented container holding the files and directories with their
        metadata and times, and no snapshots; it keeps the source's
        encryption (same key or password) and default compression.  With
        ``compact=False`` it is the pages of that commit as they are,
        snapshots included (not for a snapshot handle: its tree is not a
        whole commit).  ``callback(done, total)`` reports progress in bytes.
        The whole copy is one operation (``container.copy``) for the hooks.
        """
        dest = os.fspath(dest)
        with self._lock:
            self._check_open()
            self._env.dispatch("container.copy", dest)
            txn = self._txn
            if isinstance(txn, WriteTxn) and txn.dirty:
                try:
                    txn.commit()
                finally:
                    self._settled(txn)
            if self._fixed is not None and not compact and not txn.own_meta()[1]:
                raise ValueError("a snapshot's tree is not a whole commit: copy a snapshot "
                                 "handle with compact=True")
            # The source's reads are part of this one operation: a reader of
            # this handle's own (no hooks), or this handle when it pins a state.
            fixed = self._fixed is not None
            src = self if fixed else Cartridge(self.path, "r", _fixed=("pin",),
                                              **dict(self._reopen_options(), max_size=None))
        try:
            with self._env.within():
                if not compact:
                    compaction.copy_raw(src.txn, dest, overwrite, callback)
                    return
                codec, level = src.txn.default_policy()
                with create(dest, overwrite=overwrite, chunk_size=src.chunk_size,
                            compression=CODEC_NAMES[codec], level=level or None,
                            **self._secret_args()) as out:
                    compaction.copy_tree(src, out, callback)
        finally:
            if not fixed:
                src.close()

    def rekey(self, new_key: bytes | str | None = None, *,
              new_password: str | None = None) -> None:
        """Re-encrypt every page and chunk under ``new_key`` or ``new_password``.

        ``new_key`` is the new 32-byte key; a ``str`` there is taken as a new
        password (``rekey("s3cret")`` = ``rekey(new_password="s3cret")``).
        Crash-safe (see :mod:`cartridge.rekey`).  Pending changes are
        committed first.  Other handles must reopen with the new key.
        """
        with self._lock:
            self._committing("container.rekey", (), rekey.rekey, new_key, new_password)
            self._secrets = ({"key": new_key, "password": None} if isinstance(new_key, bytes)
                             else {"key": None, "password": new_password or new_key})
            self._options.update(key_file=None, password_env=None)

    def _secret_args(self) -> dict[str, Any]:
        """How to open this container's key again: a key source, or the key itself."""
        out = {k: v for k, v in self._secrets.items() if v is not None}
        for name in ("key_file", "password_env"):
            if self._options.get(name) is not None:
                out[name] = self._options[name]
        return out

    # ------------------------------------------------------ read transactions
    def reader(self) -> Cartridge:
        """A read transaction: a read-only handle pinned to the newest commit.

        Use it as a context manager (``with cart.reader() as r:``); it has the
        whole read API (``read``, ``exists``, ``stat``, ``list``, ``walk``,
        ``open_file``, ``snapshots``...) and sees that one commit until it is
        closed, however many commits the writer makes meanwhile.  A
        read-write handle's transaction sees its last commit, not its
        uncommitted changes.  Each transaction has its own lock and pin, so
        transactions in different threads read in parallel.
        """
        with self._lock:
            self._check_open()
            self._env.dispatch("container.reader")
            out = Cartridge(self.path, "r", _fixed=("pin",),
                            **dict(self._reopen_options(), max_size=None))
            out._env.hooks = self._env.hooks
            return out

    def _reopen_options(self) -> dict[str, Any]:
        opts = {k: v for k, v in self._options.items() if k not in ("key_file", "password_env")}
        return dict(opts, **self._secret_args())

    def _load_fixed(self) -> None:
        """Pin what a read transaction or snapshot handle reads, for its life."""
        env = self._env
        kind = self._fixed[0]
        if kind == "pin":
            while not env.pin(self._txn.generation):
                env.file.remap()
                self._txn = self._load_read()
            self._fixed = ("generation", *self._txn.state())
            return
        if kind == "snapshot":
            while True:
                rec = self._txn.snapshot_record(self._fixed[1])
                if env.readers is None or env.readers.pin_checked(
                        rec.generation, lambda: env.unchanged(self._txn.generation)):
                    break
                env.file.remap()
                self._txn = self._load_read()
            self._txn = ReadTxn.at(env, self._txn.generation, self._txn.meta, rec)
            return
        state = self._fixed[1:]
        gen = state[0]
        loaded = self._txn
        if env.readers is not None and not (
                env.readers.pin_checked(gen, lambda: env.unchanged(loaded.generation))
                and gen == loaded.generation):
            if not self._held_elsewhere(gen):
                env.unpin()
                raise StaleFileError(
                    f"generation {gen} of {self.path!r} is no longer kept (its read "
                    "transaction ended and no snapshot holds it); pickle a snapshot "
                    "handle to send an old state to another process")
        self._txn = ReadTxn.at(env, self._txn.generation, self._txn.meta, state)

    def _held_elsewhere(self, gen: int) -> bool:
        """Is ``gen`` pinned by another live reader or by a snapshot (after our pin)?"""
        env = self._env
        env.file.remap()
        self._txn = self._load_read()
        own = env.reader_slot
        if any(s.alive and s.generation == gen and s.slot != own for s in env.reader_slots()):
            return True
        return gen in self._txn.snapshot_generations()

    # ------------------------------------------------------ pickling / fork
    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {"path": self.path, "mode": self.mode, "options": dict(self._options),
                    "fixed": self._fixed, "closed": self._closed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.mode = state["mode"]
        self._options = state["options"]
        self._fixed = state["fixed"]
        self._closed = state["closed"]
        self._secrets = {}
        self._lock = threading.RLock()
        self._home = threading.get_ident()
        self._threads = threading.local()
        self._children = weakref.WeakSet()
        self._pid = -1  # reopen lazily, on first use

    def _reopen(self) -> None:
        """Reopen in a new process (after fork or unpickling).

        What the handle inherited is dropped without releasing it: the
        parent still owns its reader slot and write lock.
        """
        with self._lock:
            if self._pid == os.getpid():
                return
            if self._closed:  # nothing inherited is open
                self._pid = os.getpid()
                return
            hooks = None
            if "_env" in self.__dict__:
                hooks = self._env.hooks  # forked: the same hooks guard the child
                self._drop_inherited()
            opts = self._reopen_options()
            try:
                Cartridge.__init__(self, self.path, self.mode, _fixed=self._fixed, **opts)
            except WrongKeyError as exc:
                self._closed = True
                raise WrongKeyError(
                    f"{exc}. A pickled handle never carries a key or password: open the "
                    "container with key_file= or password_env= so that other processes "
                    "can reopen it") from None
            if hooks is not None:
                self._env.hooks = hooks

    def _drop_inherited(self) -> None:
        """Forget what a forked child inherited, without releasing the parent's."""
        if "_env" in self.__dict__:
            self._arrays.forget()
            self._env.detach()
            self._pending.live = False
        self._closed = True
        self._pid = os.getpid()


# ---------------------------------------------------------------- helpers
def _is_raw(txn: ReadTxn, p: str) -> bool:
    return not txn.why_not_raw(p)


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


def create(path: str | os.PathLike[str], *, overwrite: bool = False,
           max_size: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
           locking: bool | str = True, timeout: float = 0.0, key: bytes | None = None,
           password: str | None = None, key_file: str | os.PathLike[str] | None = None,
           password_env: str | None = None, compression: str | None = None,
           level: int | None = None, verify_reads: bool = False,
           cache_size: int = DEFAULT_CACHE_SIZE, principal: str | None = None,
           context: Mapping[str, Any] | None = None) -> Cartridge:
    """Create a new, empty container (16 KiB) and open it read-write.

    ``key`` (32 bytes) or ``password`` (through scrypt) encrypts it, as do
    ``key_file`` (a file holding the key) and ``password_env`` (the name of an
    environment variable holding the password), which pickled handles carry
    so worker processes can reopen it.  ``compression``/``level`` set the
    default policy of new files.  ``principal``/``context`` describe who
    works through this handle, for the hooks of the choke point.
    """
    fs_path = os.fspath(path)
    _check_sizes(max_size, chunk_size)
    check_key_arg(key, password)
    resolve_key_source(key, password, key_file, password_env)
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
                     key_file=key_file, password_env=password_env, compression=compression,
                     level=level, verify_reads=verify_reads, cache_size=cache_size,
                     principal=principal, context=context)


def open(path: str | os.PathLike[str], mode: str = "r+", *, max_size: int | None = None,  # noqa: A001
         locking: bool | str = True, timeout: float = 0.0, cache_nodes: int = 16384,
         snapshot: str | None = None, key: bytes | None = None, password: str | None = None,
         key_file: str | os.PathLike[str] | None = None, password_env: str | None = None,
         verify_reads: bool = False, cache_size: int = DEFAULT_CACHE_SIZE,
         principal: str | None = None, context: Mapping[str, Any] | None = None) -> Cartridge:
    """Open a container: ``"r"`` read-only, ``"r+"`` read-write, ``"a"`` open or create.

    ``snapshot=name`` (with ``mode="r"``) opens a snapshot taken with
    :meth:`Cartridge.snapshot`.  ``locking`` is ``True`` (take the writer
    lock and use the reader table; fail with :class:`LockingUnsupportedError`
    where the filesystem has no locks), ``"best-effort"`` (the same, but carry
    on without locks, with a warning, where they are unsupported) or ``False``
    (no locks: you guarantee that no process writes while another reads).
    Encrypted containers need ``key``, ``password``, ``key_file`` or
    ``password_env`` (WrongKeyError otherwise); only the last two survive
    pickling.  ``verify_reads`` checks every data chunk's checksum as it is
    read; ``cache_size`` bounds the decoded-chunk ARC cache in bytes.
    ``principal``/``context`` describe who works through this handle, for the
    hooks of the choke point (:mod:`cartridge.dispatch`).
    """
    return Cartridge(path, mode, max_size=max_size, locking=locking, timeout=timeout,
                     cache_nodes=cache_nodes, snapshot=snapshot, key=key, password=password,
                     key_file=key_file, password_env=password_env, verify_reads=verify_reads,
                     cache_size=cache_size, principal=principal, context=context)
