"""The environment: one open container file, shared by its transactions.

py-lmdb's ``Environment`` and LMDB's ``MDB_env`` are the model.  The
environment owns what is the same for every transaction of a handle: the
mapped file and its write lock, the reader table, the pager (with the key
ring of an encrypted container), the cache of decoded B+tree nodes, the
decoded-chunk cache, the hooks of the choke point, and the handle's lock.  It
knows nothing of paths or files; transactions (``txn.py``) do.

Pins.  The writer returns a page to the free map only when no pin can reach
it.  Pins come from three places: the reader table (other processes' read
calls, read transactions and views), *pin sources* registered here by
services that hold mapped memory (the array service's view pins, consulted
directly so that ``locking=False`` handles are protected too), and the
snapshot records of the tree itself (the write transaction adds those).
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from .btree import NodeStore
from .cache import ChunkCache
from .dispatch import Hooks
from .errors import LockingUnsupportedError
from .mapfile import MappedFile
from .pager import Pager
from .readers import ReaderSlot, ReaderTable

__all__ = ["LOCKING_MODES", "Environment", "check_locking"]

LOCKING_MODES = (True, False, "best-effort")


def check_locking(locking: Any) -> None:
    """Reject a ``locking=`` value that is not one of :data:`LOCKING_MODES`."""
    if not any(locking is mode or (isinstance(mode, str) and locking == mode)
               for mode in LOCKING_MODES):
        raise ValueError(f"locking must be True, False or 'best-effort', got {locking!r}")


class Environment:
    """The open file of one handle: map, lock, reader table, pager, caches, hooks."""

    def __init__(self, path: str, writable: bool, create: bool, *, locking: bool | str,
                 timeout: float, cache_nodes: int, chunk_size: int, max_size: int | None,
                 policy: tuple[int, int], key: bytes | None, password: str | None,
                 verify_reads: bool, cache_size: int, principal: str | None = None,
                 context: Mapping[str, Any] | None = None,
                 lock: threading.RLock | None = None) -> None:
        self.path = path
        self.writable = writable
        #: The handle's lock: every call on the handle runs under it.
        self.lock = lock if lock is not None else threading.RLock()
        #: Hooks of the choke point (see ``dispatch.py``).
        self.hooks = Hooks()
        self.principal = principal
        self.context: Mapping[str, Any] = MappingProxyType(dict(context or {}))
        self.verify_reads = bool(verify_reads)
        self.chunk_cache = ChunkCache(cache_size)
        self._pin_sources: list[Callable[[], list[int]]] = []
        self._nested = _Depth()
        self._inside = _Inside(self)
        self.file, self.readers = _open_locked(path, writable, create, locking, timeout)
        try:
            if create:
                Pager.format_new(self.file, chunk_size, max_size or 0, *policy, key=key,
                                 password=password)
            self.pager = Pager(self.file, key, password)
            head_max = self.pager.header.max_size
            self.max_size: int | None = max_size if max_size is not None else (head_max or None)
            self.nodes = NodeStore(self.pager, cache_nodes)
            self.chunk_size = int(self.pager.header.chunk_size)
        except BaseException:
            self._close_files(unlock=True)
            raise
        #: The newest meta generation seen by :meth:`load_durable` (-1: unknown).
        self.probe = -1

    # --------------------------------------------------------------- choke point
    def dispatch(self, action: str, *paths: str) -> None:
        """Pass one operation through the hooks before it changes anything.

        Inside the body of an :meth:`operation` of this thread, nothing is
        dispatched: the calls an operation makes on its own handle are part
        of it, not operations of their own.
        """
        if self._nested.depth:
            return
        self.hooks.dispatch(action, paths, self.principal, self.context, self.path)

    def in_operation(self) -> bool:
        """True inside the body of an :meth:`operation` on this thread."""
        return bool(self._nested.depth)

    def operation(self, action: str, *paths: str) -> _Inside:
        """Dispatch ``action``, then a context that holds the handle's lock and
        runs its body as part of that one operation.

        For layers above the facade that implement one operation with several
        calls of the handle (the SQLite VFS: an ``xWrite`` may flush through
        ``write_at`` and commit): hooks see ``sqlite.write``, once.
        """
        self.dispatch(action, *paths)
        return self._inside

    def within(self) -> _Inside:
        """A context that runs its body as part of the operation already dispatched
        (lock held, the handle's calls not dispatched again)."""
        return self._inside

    # ------------------------------------------------------------------ commits
    def load_durable(self) -> tuple[int, np.ndarray]:
        """The newest valid commit: ``(generation, meta record)``."""
        gen, meta = self.pager.load_meta()
        self.probe = self.pager.newest_generation()
        return gen, meta

    def stale(self) -> bool:
        """True when a commit newer than the last :meth:`load_durable` may exist."""
        return self.pager.newest_generation() != self.probe

    def unchanged(self, generation: int) -> bool:
        """Is ``generation`` still the newest *valid* commit?

        A newer meta page that is not valid yet (its writer has not reached
        its release scan, or it is a torn leftover of a crash) does not count.
        """
        if self.pager.newest_generation() == generation:
            return True
        self.file.remap()
        return self.pager.load_meta()[0] == generation

    def pin(self, generation: int) -> bool:
        """Pin ``generation`` in the reader table; False if a newer commit may miss it."""
        if self.readers is None:
            return True
        return self.readers.pin_checked(generation, lambda: self.unchanged(generation))

    def unpin(self) -> None:
        """End this handle's pin (between read calls)."""
        if self.readers is not None:
            self.readers.unpin()

    # --------------------------------------------------------------------- pins
    def add_pin_source(self, source: Callable[[], list[int]]) -> None:
        """Also keep pages reachable from the generations ``source()`` returns."""
        self._pin_sources.append(source)

    def pinned_generations(self) -> list[int]:
        """Generations that live readers, views and read transactions pin."""
        pins = self.readers.pinned() if self.readers is not None else []
        for source in self._pin_sources:
            pins += source()
        return pins

    @property
    def reader_slot(self) -> int | None:
        """This handle's slot in the reader table (None for writers and without locks)."""
        if self.readers is None or self.readers.slot < 0:
            return None
        return self.readers.slot

    def reader_slots(self) -> list[ReaderSlot]:
        """Every owned slot of the reader table, live or stale."""
        return self.readers.list() if self.readers is not None else []

    def clear_stale_readers(self) -> list[ReaderSlot]:
        """Empty the slots of dead processes; return them."""
        return self.readers.clear_stale() if self.readers is not None else []

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Release the reader slot, the write lock and the map."""
        self.nodes.clear()
        self._close_files(unlock=True)

    def detach(self) -> None:
        """Forget what a forked child inherited, without releasing the parent's.

        The child shares the parent's open file descriptions, hence its locks:
        unlocking here would release the parent's slot and write lock.
        """
        if self.readers is not None:
            self.readers.detach()
            self.readers = None
        self.file.close(unlock=False)

    def _close_files(self, unlock: bool) -> None:
        if self.readers is not None:
            self.readers.close()
            self.readers = None
        self.file.close(unlock=unlock)


class _Depth(threading.local):
    """Per thread: how many :meth:`Environment.operation` bodies are running."""

    depth = 0


class _Inside:
    """The body of an :meth:`Environment.operation`: lock held, dispatch silenced."""

    __slots__ = ("env",)

    def __init__(self, env: Environment) -> None:
        self.env = env

    def __enter__(self) -> None:
        env = self.env
        env.lock.acquire()
        env._nested.depth += 1

    def __exit__(self, *exc: object) -> None:
        env = self.env
        env._nested.depth -= 1
        env.lock.release()


def _open_locked(path: str, writable: bool, create: bool, locking: bool | str,
                 timeout: float) -> tuple[MappedFile, ReaderTable | None]:
    """Open the container file and, with locking, the reader table."""
    try:
        return _open_files(path, writable, create, locking is not False, timeout)
    except LockingUnsupportedError as exc:
        if locking != "best-effort":
            raise
        warnings.warn(f"{exc}; continuing without locks (locking='best-effort')",
                      RuntimeWarning, stacklevel=5)
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
