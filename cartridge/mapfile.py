"""The bottom layer: one open file descriptor, its memory map, its lock.

Why a memory map: readers get the container's bytes with no system call and no
copy, and numpy views (issue "zero-copy arrays") can point straight at pages.

Growth never moves or invalidates what callers hold.  Python's
``mmap.resize`` refuses while buffers are exported, so growing creates a *new*
mapping of the larger file and drops this object's reference to the old one;
any numpy array or memoryview still pointing into the old mapping keeps it
alive, and because the file only grows (shrinking is an explicit compaction
step that respects live views), the old mapping's pages stay valid.

Space is reserved with ``posix_fallocate`` when the file grows, so a full disk
surfaces as :class:`ContainerFullError` at growth time instead of as a SIGBUS
when a page of a sparse file is first touched through the map.

Locking: a read-write handle takes ``flock(LOCK_EX)`` on the container file.
flock locks belong to the open file description, so a second handle in the same
process conflicts exactly like a second process does.  ``locking=False`` skips
it for filesystems without lock support (the caller then guarantees a single
writer).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import mmap
import os
import stat
import time

import numpy as np

from .errors import (
    ContainerFullError,
    IsADirectoryError,
    LockedError,
    LockingUnsupportedError,
    NotFoundError,
)
from .layout import PAGE_SIZE

#: Once the file is this large, growth adds at most this much at a time instead
#: of doubling, so a 100 GiB container does not reserve another 100 GiB.
GROWTH_STEP_CAP = 1 << 30


class MappedFile:
    """An open container file and its current memory map.

    Parameters
    ----------
    path:
        Filesystem path of the container.
    writable:
        Open read-write and take the write lock.
    create:
        Create the file (``O_CREAT | O_EXCL``).
    locking:
        Take the ``flock`` write lock (read-write handles only).
    timeout:
        Seconds to wait for the write lock before raising :class:`LockedError`.
    """

    def __init__(
        self,
        path: str,
        *,
        writable: bool,
        create: bool = False,
        locking: bool = True,
        timeout: float = 0.0,
    ) -> None:
        self.path = path
        self.writable = writable
        flags = os.O_RDWR if writable else os.O_RDONLY
        if create:
            flags |= os.O_CREAT | os.O_EXCL
        flags |= getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(path, flags, 0o644)
        except FileNotFoundError:
            raise NotFoundError(f"container {path!r} does not exist", path) from None
        except builtins.IsADirectoryError:
            raise IsADirectoryError(f"{path!r} is a directory, not a container", path) from None
        if stat.S_ISDIR(os.fstat(self.fd).st_mode):
            os.close(self.fd)
            raise IsADirectoryError(f"{path!r} is a directory, not a container", path)
        self._map: mmap.mmap | None = None
        self.buf: np.ndarray = np.empty(0, np.uint8)
        self.view: memoryview = memoryview(b"")
        self.size = 0
        try:
            if writable and locking:
                self._lock(timeout)
            self.remap()
        except BaseException:
            os.close(self.fd)
            raise

    def _lock(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockedError(
                        f"container {self.path!r} is open for writing by another "
                        "handle or process; close it, open with mode='r', or pass "
                        "timeout= to wait"
                    ) from None
                time.sleep(0.005)
            except OSError as exc:
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise LockingUnsupportedError(
                        f"the filesystem holding {self.path!r} does not support "
                        f"file locks ({exc.strerror}); open with locking=\"best-effort\" or "
                        "locking=False if you guarantee a single writer yourself"
                    ) from None
                raise

    def file_size(self) -> int:
        """Current size of the file on disk, in bytes."""
        return os.fstat(self.fd).st_size

    def remap(self) -> None:
        """Map the whole file as it is now (after growth or another writer's).

        The writer may shrink the file (compaction) between our ``fstat`` and
        the ``mmap``; mapping past the new end fails, so measure again and retry.
        """
        size = self.file_size()
        if size == self.size and self._map is not None:
            return
        self.buf = np.empty(0, np.uint8)
        self.view = memoryview(b"")
        self._map = None
        access = mmap.ACCESS_WRITE if self.writable else mmap.ACCESS_READ
        while True:
            if size == 0:
                self.size = 0
                return
            try:
                self._map = mmap.mmap(self.fd, size, access=access)
                break
            except ValueError:
                now = self.file_size()
                if now >= size:
                    raise
                size = now  # truncated meanwhile: map what is there now
        self.buf = np.frombuffer(self._map, dtype=np.uint8)
        self.view = memoryview(self._map)
        self.size = size

    def grow(self, min_size: int, max_size: int | None) -> None:
        """Extend the file to at least ``min_size`` bytes and remap it.

        Doubles the file (by at most :data:`GROWTH_STEP_CAP` at a time), capped
        by ``max_size``; raises :class:`ContainerFullError` when ``min_size``
        itself is over the cap or the disk cannot hold it.
        """
        if min_size <= self.size:
            return
        if max_size is not None and min_size > max_size:
            raise ContainerFullError(
                f"container {self.path!r} needs {min_size} bytes but max_size is "
                f"{max_size}; commit less, delete files, or reopen with a larger "
                "max_size"
            )
        target = max(min_size, self.size + min(self.size, GROWTH_STEP_CAP))
        if max_size is not None:
            target = min(target, max_size)
        target = -(-target // PAGE_SIZE) * PAGE_SIZE
        old = self.size
        try:
            os.posix_fallocate(self.fd, old, target - old)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                os.ftruncate(self.fd, target)
            elif exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                os.ftruncate(self.fd, old)
                raise ContainerFullError(
                    f"no space to grow {self.path!r} to {target} bytes: "
                    f"{exc.strerror}; free disk space, then retry"
                ) from None
            else:
                raise
        self.remap()

    def sync(self) -> None:
        """Make every write so far (through the map or the fd) durable."""
        os.fdatasync(self.fd)

    def close(self, unlock: bool = True) -> None:
        """Drop the map (live views keep their own mapping) and close the fd.

        ``unlock=False`` is for a forked child forgetting what it inherited:
        the flock belongs to the open file description it shares with the
        parent, which must keep it.
        """
        self.buf = np.empty(0, np.uint8)
        self.view = memoryview(b"")
        if self._map is not None:
            # A live view may still use the mapping: it then closes when that view dies.
            with contextlib.suppress(BufferError):
                self._map.close()
            self._map = None
        if self.fd >= 0:
            if self.writable and unlock:
                # The mmap holds a dup of the fd (same open file description),
                # so a map kept alive by a view would keep the flock too.
                with contextlib.suppress(OSError):
                    fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1
