"""Multi-version concurrency: pinned read transactions, pickling, fork, locking modes.

Readers never wait for the writer.  Every commit is a complete, immutable
tree, so a reader only has to keep the writer from *reusing* the pages of the
commit it reads; it does so by pinning that generation in the reader table
(``readers.py``).  Three kinds of read-only handle exist:

* a plain read-only handle follows the newest commit: each call pins the
  newest generation for its duration (``_read_op``);
* a *read transaction*, ``with cart.reader() as r:``, pins the newest commit
  when it starts and reads only it until it is closed;
* a *snapshot handle*, ``cartridge.open(path, "r", snapshot=name)``, pins the
  generation a named snapshot records.

Thread safety.  Every public method of a handle takes the handle's lock, so
one handle may be shared by any number of threads; each call is atomic and
sees one commit.  Calls on one handle are serialized.  To read in parallel,
give each thread its own read transaction (``cart.reader()``): transactions
are independent handles with their own lock and pin, and never wait for each
other or for the writer.  Writes are serialized by the writer's lock.

Processes.  Handles pickle their constructor arguments (path, mode, options)
and what they pin (a snapshot name, or the generation and tree root of a read
transaction), and reopen lazily in the receiving process on first use.  A
handle whose process id changed (``fork``) reopens the same way; the child
never touches the parent's reader slot or write lock, which it shares through
the inherited open file descriptions.

Locking modes (``locking=``): ``True`` takes the writer's ``flock`` and uses
the reader table, failing with :class:`LockingUnsupportedError` on a
filesystem without locks; ``"best-effort"`` does the same but carries on
without locks (with a warning) there; ``False`` takes no locks at all.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

from .btree import BTree
from .catalog import Catalog
from .errors import LockingUnsupportedError, StaleFileError
from .filedata import FileData
from .mapfile import MappedFile
from .readers import ReaderSlot, ReaderTable

LOCKING_MODES = (True, False, "best-effort")

_FENCE_LOCK = threading.Lock()


def _fence() -> None:
    """A full memory barrier: taking a lock is an atomic read-modify-write."""
    _FENCE_LOCK.acquire()
    _FENCE_LOCK.release()


def _read_op(method: Callable) -> Callable:
    """Run a read method under the handle lock, on one pinned generation.

    A plain read-only handle first moves to the newest commit, then pins it in
    the reader table for the duration of the call (see ``readers.py``), so the
    writer cannot reuse a page the call may still read.  Called from a thread
    other than the one that opened it, a plain read-only handle passes the
    call to that thread's own handle (see :meth:`MVCCMixin._thread_handle`), so
    threads sharing one object read in parallel.  A read-write handle
    reads its own transaction and needs no pin; read transactions and snapshot
    handles hold their pin for their whole life.
    """

    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        other = self._thread_handle()
        if other is not None:
            return getattr(other, name)(*args, **kwargs)
        with self._lock:
            self._check_open()
            table = self._table
            if self._alloc is not None or self._fixed is not None:
                return method(self, *args, **kwargs)
            if table is None:
                self._refresh_if_stale()
                return method(self, *args, **kwargs)
            self._pin(table)
            try:
                return method(self, *args, **kwargs)
            finally:
                table.unpin()

    return wrapper


def check_locking(locking: Any) -> None:
    """Reject a ``locking=`` value that is not one of :data:`LOCKING_MODES`."""
    if not any(locking is mode or (isinstance(mode, str) and locking == mode)
               for mode in LOCKING_MODES):
        raise ValueError(f"locking must be True, False or 'best-effort', got {locking!r}")


def open_locked(path: str, writable: bool, create: bool, locking: bool | str,
                timeout: float) -> tuple[MappedFile, ReaderTable | None]:
    """Open the container file and, with locking, the reader table."""
    try:
        return _open_files(path, writable, create, locking is not False, timeout)
    except LockingUnsupportedError as exc:
        if locking != "best-effort":
            raise
        warnings.warn(f"{exc}; continuing without locks (locking='best-effort')",
                      RuntimeWarning, stacklevel=4)
        return _open_files(path, writable, create and not os.path.exists(path), False, timeout)


def _open_files(path: str, writable: bool, create: bool, use_locks: bool,
                timeout: float) -> tuple[MappedFile, ReaderTable | None]:
    mf = MappedFile(path, writable=writable, create=create, locking=use_locks, timeout=timeout)
    table = None
    try:
        if use_locks:
            table = ReaderTable(path)
            if not writable:
                table.acquire()
    except BaseException:
        if table is not None:
            table.close()
        mf.close()
        raise
    return mf, table


class MVCCMixin:
    """Read transactions, reader-table maintenance, pickling and fork safety."""

    # ------------------------------------------------------------ threads
    def _thread_handle(self) -> Any:
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
        local = self.__dict__.get("_threads")
        if (local is None or self.mode != "r" or self._fixed is not None
                or threading.get_ident() == self._home):
            return None
        other = getattr(local, "handle", None)
        if other is None or other._closed:
            with self._lock:
                self._check_open()
                other = type(self)(self.path, "r", **self._options)
                self._children.add(other)
            local.handle = other
        return other

    def _close_thread_handles(self) -> None:
        for other in list(self.__dict__.get("_children", ())):
            other.close()

    # ------------------------------------------------------ read transactions
    def reader(self) -> Any:
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
            opts = dict(self._options, max_size=None)
            return type(self)(self.path, "r", _fixed=("pin",), **opts)

    def _load_fixed(self) -> None:
        """Pin what a read transaction or snapshot handle reads, for its life."""
        kind = self._fixed[0]
        table = self._table
        if kind == "pin":
            if table is not None:
                self._pin(table)
            root = self._tree.root
            self._fixed = ("generation", self._gen, root, self._file_count,
                           self._dir_count, self._next_fid)
            return
        if kind == "snapshot":
            while True:
                rec = self._snapshot_record(self._fixed[1])
                if table is None or self._pin_checked(table, rec.generation):
                    break
                self._mf.remap()
                self._load_durable()
            self._use_root(rec.generation, rec.root, rec.file_count, rec.dir_count,
                           rec.next_file_id)
            return
        _kind, gen, root, files, dirs, next_fid = self._fixed
        if table is not None and not (self._pin_checked(table, gen) and gen == self._gen):
            if not self._held_elsewhere(table, gen):
                table.unpin()
                raise StaleFileError(
                    f"generation {gen} of {self.path!r} is no longer kept (its read "
                    "transaction ended and no snapshot holds it); pickle a snapshot "
                    "handle to send an old state to another process")
        self._use_root(gen, root, files, dirs, next_fid)

    def _pin_checked(self, table: ReaderTable, gen: int) -> bool:
        """Pin ``gen``; True when no commit newer than the loaded one can have missed it."""
        table.pin(gen)
        _fence()
        if self._pager.newest_generation() == self._gen:
            return True
        self._mf.remap()
        return self._pager.load_meta()[0] == self._gen

    def _held_elsewhere(self, table: ReaderTable, gen: int) -> bool:
        """Is ``gen`` pinned by another live reader or by a snapshot (after our pin)?"""
        self._mf.remap()
        self._load_durable()
        if any(s.alive and s.generation == gen and s.slot != table.slot for s in table.list()):
            return True
        return gen in self._snapshot_generations()

    def _own_meta(self) -> tuple[Any, bool]:
        """A meta record for what this handle reads, and whether its free map is it.

        A snapshot handle (or a transaction reopened in another process)
        reads a tree older than the meta page it loaded: the tree fields are
        replaced, and the free map, which describes the newer commit, is not
        this tree's.
        """
        if self._fixed is None or self._gen == getattr(self, "_meta_gen", self._gen):
            return self._meta, True
        meta = self._meta.copy()
        root = self._tree.root
        meta["root"] = root if root is not None else (0, 0)
        meta["file_count"] = self._file_count
        meta["dir_count"] = self._dir_count
        return meta, False

    def _space(self) -> tuple[Any, list[str]]:
        """The free map this handle may read safely, and what holds space in it.

        A snapshot handle's own meta page may be recycled by now (it pins
        only the snapshot's tree), so it asks a fresh plain handle.
        """
        from .allocator import Allocator

        if self._alloc is not None:
            return self._alloc, self._holders(self._alloc.pending)
        meta, full = self._own_meta()
        if full:
            alloc = Allocator(self._pager, meta, None)
            return alloc, self._holders(alloc.pending)
        with type(self)(self.path, "r", **dict(self._options, max_size=None)) as fresh:
            return fresh._read_space()

    def _read_space(self) -> tuple[Any, list[str]]:
        """``_space`` of this handle's newest commit, loaded under a pin."""
        from .allocator import Allocator

        with self._lock:
            self._check_open()
            if self._table is not None:
                self._pin(self._table)
            try:
                alloc = Allocator(self._pager, self._meta, None)
                return alloc, self._holders(alloc.pending)
            finally:
                if self._table is not None:
                    self._table.unpin()

    def _holders(self, pending: list) -> list[str]:
        """Describe each pin (reader slot or snapshot) that keeps pending pages."""
        pins: list[tuple[int, str]] = []
        if self._table is not None:
            pins += [(s.generation, f"reader pid {s.pid} (slot {s.slot})")
                     for s in self._table.list() if s.alive and s.generation]
        pins += [(rec.generation, f"snapshot {name!r}") for name, rec in self._snapshot_items()]
        out = []
        for gen, who in sorted(pins):
            held = sum(count for freed, _start, count, birth in pending
                       if birth <= gen < freed)
            if held:
                out.append(f"{who} pins generation {gen}, holding {held * 4096} bytes")
        return out

    def _use_root(self, gen: int, root: tuple[int, int] | None, files: int, dirs: int,
                  next_fid: int) -> None:
        self._meta_gen = self._gen
        self._gen = gen
        self._tree = BTree(self._store, root, None)
        self._cat = Catalog(self._tree)
        self._data = FileData(self._pager, self._cat, None, self._chunk)
        self._file_count = files
        self._dir_count = dirs
        self._next_fid = next_fid

    # ------------------------------------------------------- reader table
    def clear_stale_readers(self) -> list[ReaderSlot]:
        """Empty the reader-table slots of dead processes; return them.

        A stale slot already holds nothing back (the writer ignores slots
        whose owner's lock vanished); clearing tidies the table and what
        :meth:`readers` and ``cart check`` report.
        """
        with self._lock:
            self._check_open()
            return self._table.clear_stale() if self._table is not None else []

    def __del__(self) -> None:
        # A forgotten read-only handle must not pin its generation (and hold
        # space) until the process exits.  Writers are left alone: closing
        # one would commit.
        if (getattr(self, "mode", None) == "r" and getattr(self, "_pid", None) == os.getpid()
                and getattr(self, "_closed", True) is False):
            try:
                self.close()
            except Exception:  # noqa: BLE001 - never raise from a finalizer
                pass

    # ------------------------------------------------------ pickling / fork
    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {"path": self.path, "mode": self.mode, "options": dict(self._options),
                    "fixed": self._fixed, "generation": self._gen, "closed": self._closed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.mode = state["mode"]
        self._options = state["options"]
        self._fixed = state["fixed"]
        self._gen = state["generation"]
        self._closed = state["closed"]
        self._lock = threading.RLock()
        self._mf = None
        self._table = None
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
            self._drop_inherited()
            type(self).__init__(self, self.path, self.mode, _fixed=self._fixed, **self._options)

    def _drop_inherited(self) -> None:
        """Forget what a forked child inherited, without releasing the parent's."""
        if self._table is not None:
            self._table.detach()
            self._table = None
        if self._mf is not None:
            self._mf.close(unlock=False)
            self._mf = None
        self._closed = True
        self._pid = os.getpid()
