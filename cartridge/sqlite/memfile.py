"""Temp files SQLite opens without a name: private heap memory.

Sort spills, temp tables, statement journals and the like are opened with
no name, are private to one connection and are deleted on close.  Keeping
them in the container would cost commits for data nobody can see, and a
read-only container could not hold them at all, so they live in a
``bytearray`` of this process.  They are not container files, so they do
not pass the choke point.
"""

from __future__ import annotations

from .basefile import UnlockedFile

__all__ = ["MemoryFile"]


class MemoryFile(UnlockedFile):
    """A temp file in process memory."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def xRead(self, amount: int, offset: int) -> bytes:  # noqa: N802 - SQLite's name
        return bytes(self.buf[offset : offset + amount])

    def xWrite(self, data: bytes, offset: int) -> None:  # noqa: N802
        end = offset + len(data)
        if end > len(self.buf):
            self.buf.extend(bytes(end - len(self.buf)))
        self.buf[offset:end] = data

    def xTruncate(self, size: int) -> None:  # noqa: N802
        del self.buf[size:]

    def xFileSize(self) -> int:  # noqa: N802
        return len(self.buf)

    def xSync(self, flags: int) -> None:  # noqa: N802
        return None

    def xClose(self) -> None:  # noqa: N802
        self.buf = bytearray()

    def xFileControl(self, op: int, ptr: int) -> bool:  # noqa: N802
        return False
