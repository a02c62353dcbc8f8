"""Streaming binary file objects on files inside a container.

``Cartridge.open_file`` returns a standard :mod:`io` buffered object
(``BufferedReader``, ``BufferedWriter`` or ``BufferedRandom``) over a small
raw file that turns ``readinto`` into ``Cartridge.read`` at the current offset
and ``write`` into ``Cartridge.write_at``.  Buffers are one chunk for reading
and 1 MiB for writing, so streaming a large file never loads it whole and a
sequential write copies each chunk once.

Writes become part of the container's pending transaction like any other
write: closing the file object flushes its buffer but does not commit.
"""

from __future__ import annotations

import io
import os
from typing import Any

from . import paths
from .errors import NotFoundError

_WRITE_BUFFER = 1 << 20


class _RawCartFile(io.RawIOBase):
    """Unbuffered file on one container path."""

    def __init__(self, cart: Any, path: str, mode: str) -> None:
        super().__init__()
        self._cart = cart
        self.name = path
        self.mode = mode
        self._pos = 0
        self._append = mode == "ab"
        # A read-only handle follows new commits; remember which version of
        # the file this object started reading so it never splices two.
        self._version = cart.file_version(path) if cart.mode == "r" else None

    def readable(self) -> bool:
        return self.mode in ("rb", "r+b")

    def writable(self) -> bool:
        return self.mode in ("wb", "ab", "r+b")

    def seekable(self) -> bool:
        return True

    def _size(self) -> int:
        return self._cart.stat(self.name).size

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._version is None:
            data = self._cart.read(self.name, self._pos, len(view))
        else:
            data = self._cart.read(self.name, self._pos, len(view), version=self._version)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self._append:
            self._pos = self._size()
        self._cart.write_at(self.name, self._pos, view)
        self._pos += len(view)
        return len(view)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self._size() + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def tell(self) -> int:
        return self._pos

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        self._cart.truncate(self.name, size)
        return size


def open_file(cart: Any, path: str, mode: str = "rb", **codec: Any) -> io.BufferedIOBase:
    """Open ``path`` inside ``cart`` as a buffered binary file (see module doc)."""
    if mode not in ("rb", "wb", "ab", "r+b", "rb+"):
        raise ValueError(f"mode must be 'rb', 'wb', 'ab' or 'r+b', got {mode!r}")
    mode = "r+b" if mode == "rb+" else mode
    p = paths.normalize(path)
    if mode == "wb":
        cart.write(p, b"", **codec)
    elif mode == "ab":
        if not cart.exists(p):
            cart.write(p, b"", **codec)
        else:
            cart.stat(p)
    else:
        info = cart.stat(p)
        if info.kind == "dir":
            cart.read(p)  # raises IsADirectoryError with the usual message
        if mode == "rb" and not cart.exists(p):
            raise NotFoundError(f"no such file: {p}", p)
    raw = _RawCartFile(cart, p, mode)
    if mode == "rb":
        return io.BufferedReader(raw, buffer_size=cart.chunk_size)
    if mode == "r+b":
        return io.BufferedRandom(raw, buffer_size=_WRITE_BUFFER)
    return io.BufferedWriter(raw, buffer_size=_WRITE_BUFFER)
