"""What the VFS knows about one SQLite file: where its chunks lie, what is
not yet written.

SQLite reads a database a page at a time, and the same pages again and
again.  Going through :meth:`Cartridge.read` for each would walk the catalog
for every page; instead a :class:`FileState` remembers, per chunk, where the
chunk's bytes lie in the mapped file, so a read that stays inside one chunk
is a memoryview of the map (apsw copies it into SQLite's buffer: one copy, as
from the OS page cache).  A chunk's location is looked up, and its checksum
verified, the first time it is read; damaged pages then raise
``apsw.CorruptError`` instead of reaching SQLite, at a cost amortized over
the chunk's pages.  Holes, inline files and compressed or sealed chunks have
no location and are read through :meth:`Cartridge.read`.

Locations stay valid until the container moves: a writable handle's only
change is its own writes (the chunks a flush writes are forgotten), a
read-only handle moves to a newer commit at every SHARED lock, and then the
whole map is reloaded (``epoch`` records the commit it belongs to).

The same object buffers the file's writes (``buf``, with ``lo``/``hi`` the
byte range they cover so a read can tell cheaply whether it must flush
first); :mod:`.writeback` applies them.  One ``FileState`` per file and
container is shared by every open VFS file on it, so all connections of the
process see one another's buffered writes.
"""

from __future__ import annotations

import apsw

from ..container import Cartridge
from ..errors import NotFoundError
from ..filedata import plain_chunk
from ..layout import ENTRY_INLINE, PAGE_SIZE
from ..pager import checksum
from .writeback import apply_writes

__all__ = ["FileState"]


class FileState:
    """Where one file's chunks live and which writes wait, shared by every
    open VFS file on it.

    ``chunks`` maps a chunk index to ``(byte position in the map, stored
    length)``; ``None`` means a hole (reads as zeros) or a chunk to read
    through :meth:`Cartridge.read`.
    """

    __slots__ = ("path", "epoch", "size", "file_id", "inline", "chunks", "shift", "mask",
                 "buf", "lo", "hi", "stored", "live")

    def __init__(self, cart: Cartridge, epoch: int, path: str) -> None:
        self.path = path
        chunk = cart.chunk_size
        self.shift = chunk.bit_length() - 1
        self.mask = chunk - 1
        self.epoch = -1
        self.buf: list[tuple[int, bytes]] = []
        """Writes not yet applied, ``(offset, bytes)`` in SQLite's order."""
        self.lo = self.hi = 0
        """The byte range ``buf`` covers."""
        self.live = True
        """False once the file is deleted (its VFS files then look it up again)."""
        self.reload(cart, epoch)

    def reload(self, cart: Cartridge, epoch: int) -> None:
        """Read the file's entry again and forget every chunk location."""
        entry = cart.txn.entry(self.path)
        if entry is None:
            raise NotFoundError(f"no such file: {self.path}", self.path)
        self.size = self.stored = entry.size
        """``size`` as SQLite sees it; ``stored`` as the container holds it."""
        self.file_id = entry.file_id
        self.inline = bool(entry.flags & ENTRY_INLINE)
        self.chunks: dict[int, tuple[int, int] | None] = {}
        self.epoch = epoch

    def flush(self, cart: Cartridge, epoch: int) -> None:
        """Apply the buffered writes to the container's pending transaction."""
        writes, self.buf = self.buf, []
        self.lo = self.hi = 0
        written = apply_writes(cart, self.path, writes, stored=self.stored, size=self.size,
                               shift=self.shift)
        for index in written:
            self.chunks.pop(index, None)
        self.stored = max(self.stored, self.size)
        if self.inline:
            self.reload(cart, epoch)

    def discard(self) -> int:
        """Forget the buffered writes (the file was deleted); return their bytes."""
        dropped = sum(len(data) for _off, data in self.buf)
        self.buf = []
        self.lo = self.hi = 0
        return dropped

    def locate(self, cart: Cartridge, index: int) -> tuple[int, int] | None:
        """Where chunk ``index`` lives, its checksum verified the first time.

        The check (XXH64 of at most one chunk, numba) runs once per chunk
        location, so damaged pages raise ``apsw.CorruptError`` instead of
        reaching SQLite.
        """
        rec = cart.txn.catalog.chunk(self.file_id, index)
        if rec is None or not rec.page or not plain_chunk(rec):
            loc = None  # holes, and compressed or sealed chunks, are read through read()
        else:
            got = checksum(cart.env.pager.data_array(rec.page, rec.length))
            if got != rec.checksum:
                raise apsw.CorruptError(
                    f"cartridge VFS: {self.path} chunk {index} (data pages {rec.page}.."
                    f"{rec.end_page - 1}) fails its checksum; the container is damaged "
                    "(run cart check --data)")
            loc = (rec.page * PAGE_SIZE, rec.length)
        self.chunks[index] = loc
        return loc
