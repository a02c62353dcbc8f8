"""Where an array's bytes live: one contiguous extent, or N-d chunks.

Both layouts reuse the file machinery's chunk records (``filedata.py``), keyed by
the array's file id, so deleting, renaming or replacing an array needs nothing
new, and ``verify`` checks their checksums like any file's:

* **contiguous** arrays (``write_array``, non-resizable datasets) keep their
  bytes, in C or Fortran order, in ONE run of pages, described by ordinary
  byte chunks of the container's chunk size that point into consecutive parts
  of the run.  ``view`` maps the whole run as one ndarray.  A partial write
  (``Dataset.__setitem__``) copies only the chunks it changes elsewhere, as any
  file write does; the descriptor then says *fragmented* and ``view`` refuses.
* **chunked** datasets cut the array into N-d chunks of a fixed chunk shape;
  chunk record ``i`` holds grid cell :func:`~cartridge.arrayformat.chunk_coords`
  ``(i)`` as the C-order bytes of a full chunk (edge chunks padded).  A missing
  record reads as the fill value.  Writes replace whole chunks, copy-on-write.

The external ``attrs`` blob, when an array's attrs outgrow its catalog entry, is
the chunk record at index :data:`~cartridge.arrayformat.ATTRS_INDEX`.

Arrays with a compression policy (entry flags, as for files), and every array
of an encrypted container, are *encoded*: each chunk record (contiguous byte
chunks, N-d chunks, the attrs blob) goes through the file layer's encoded
path (``FileData.encode``/``put_chunks``: compressed, then sealed with the
chunk's file id, index and generation in the associated data), and every read
decodes only the chunks it touches through ``FileData.chunk_bytes`` (the
decoded-chunk cache and decode counter are shared with files).  Raw arrays
keep one contiguous page run, which ``view`` maps; encoded ones cannot be
viewed.  Every chunk is stored through the file layer's one write path,
:meth:`~cartridge.filedata.FileData.put_chunk`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .allocator import Allocator
from .arrayformat import (
    ATTRS_INDEX,
    FLAG_ATTRS_EXTERNAL,
    LAYOUT_CHUNKED,
    decode_desc,
)
from .catalog import Catalog, ChunkRecord, Entry
from .errors import CartridgeError, CorruptionError, ReadOnlyError
from .filedata import ChunkWrite, FileData
from .layout import CODEC_NONE, PAGE_SIZE
from .pager import BytesLike, Pager
from .pager import checksum as checksum_of


class ArrayData:
    """Array bytes of one catalog version (see the module doc).

    Parameters
    ----------
    pager, catalog, allocator:
        The layers below (``allocator`` is None for read-only handles).
    chunk_size:
        The container's byte-chunk size (contiguous layout).
    files:
        The handle's file layer, whose write path, encoded path, decoded-chunk
        cache and decode counter arrays share.
    """

    def __init__(self, pager: Pager, catalog: Catalog, allocator: Allocator | None,
                 chunk_size: int, files: FileData) -> None:
        self.pager = pager
        self.cat = catalog
        self.alloc = allocator
        self.chunk = chunk_size
        self.files = files

    def stored(self, rec: ChunkRecord) -> memoryview:
        """The stored bytes of one raw chunk record, as they are on the mapped pages."""
        return self.pager.data(rec.page, rec.npages)[: rec.length]

    def encoded(self, entry: Entry) -> bool:
        """True when the array's chunks are compressed and/or sealed (not viewable)."""
        return not self.files.is_raw(entry)

    def decode(self, file_id: int, index: int, rec: ChunkRecord) -> memoryview | bytes:
        """The logical bytes of one chunk record (decoded, through the cache, if encoded)."""
        data: memoryview | bytes = self.files.chunk_bytes(file_id, index, rec)
        return data

    # ------------------------------------------------------------ contiguous
    def write_extent(self, file_id: int, data: memoryview, generation: int) -> int:
        """Store ``data`` in one new run of pages; return its first page (0 if empty)."""
        return self.files.put_run(file_id, data, generation)

    def write_encoded(self, entry: Entry, data: memoryview, generation: int,
                      level: int) -> None:
        """Store an encoded contiguous array's bytes as encoded byte chunks."""
        self.files.write(entry, 0, data, generation, level)

    def fill_encoded(self, entry: Entry, nbytes: int, item: bytes, generation: int,
                     level: int) -> None:
        """:meth:`fill_extent` for an encoded array: each byte chunk encoded on its
        own, stored in batches (never the whole array in memory)."""
        if nbytes == 0:
            return
        ch = self.chunk
        k = len(item)
        tile = item * (ch // k + 2)
        pieces: list[ChunkWrite] = []
        last = -(-nbytes // ch) - 1
        for c in range(last + 1):
            length = min(ch, nbytes - c * ch)
            o = c * ch % k
            plain = memoryview(tile)[o : o + length]
            pieces.append(ChunkWrite(c, length,
                                     *self.files.encode(entry, c, plain, generation, level)))
            if len(pieces) == 64 or c == last:
                self.files.put_chunks(entry.file_id, pieces, generation)
                pieces = []

    def fill_extent(self, file_id: int, nbytes: int, item: bytes, generation: int) -> None:
        """Store ``nbytes`` of ``item`` repeated in one new run of pages, chunk by
        chunk (a fill-valued dataset never exists whole in memory); chunks with
        the same contents share one checksum computation."""
        if nbytes == 0:
            return
        if self.alloc is None:
            raise ReadOnlyError("this handle is read-only: it cannot write array data")
        ch = self.chunk
        start = self.alloc.alloc(-(-nbytes // PAGE_SIZE))
        k = len(item)
        tile = item * (ch // k + 2)
        sums: dict[tuple[int, int], int] = {}
        for c in range(-(-nbytes // ch)):
            length = min(ch, nbytes - c * ch)
            o = c * ch % k
            piece = memoryview(tile)[o : o + length]
            total = sums.get((o, length))
            if total is None:
                total = sums[(o, length)] = checksum_of(np.frombuffer(piece, np.uint8))
            self.files.put_chunk(file_id, c, piece, generation, replaces=None,
                                 page=start + c * (ch // PAGE_SIZE), checksum=total)

    def extent(self, entry: Entry, nbytes: int) -> tuple[int, int]:
        """``(first page, pages)`` of a contiguous array's run of ``nbytes`` bytes."""
        rec = self.cat.chunk(entry.file_id, 0)
        if rec is None or not rec.page:
            raise CorruptionError(f"array data of file id {entry.file_id} is missing")
        self.stored(rec)
        npages = -(-nbytes // PAGE_SIZE)
        self.pager.data(rec.page, npages)  # bounds-checked: CorruptionError if outside
        return rec.page, npages

    # --------------------------------------------------------------- chunked
    def get_chunk(self, file_id: int, index: int) -> memoryview | bytes | None:
        """Logical bytes of chunk ``index`` (decoded if encoded), or None if missing."""
        rec = self.cat.chunk(file_id, index)
        return None if rec is None or not rec.page else self.decode(file_id, index, rec)

    def chunk_records(self, file_id: int) -> Iterator[tuple[int, ChunkRecord]]:
        """``(index, record)`` of every stored data chunk of a chunked dataset
        (nothing decoded: callers decode only the chunks they need)."""
        for idx, rec in self.cat.chunks(file_id, 0, ATTRS_INDEX):
            if rec.page:
                yield idx, rec

    def put_chunk(self, entry: Entry, index: int, data: BytesLike,
                  generation: int, level: int = 0) -> None:
        """Copy-on-write chunk ``index``: new pages for ``data`` (encoded if the
        array is), the old ones freed."""
        n = len(data)
        codec, flags, stored = CODEC_NONE, 0, data
        if n and self.encoded(entry):
            codec, flags, stored = self.files.encode(entry, index, data, generation, level)
        self.files.put_chunk(entry.file_id, index, stored, generation,
                             replaces=self.cat.chunk(entry.file_id, index), length=n,
                             codec=codec, flags=flags)

    def drop_chunk(self, file_id: int, index: int) -> None:
        """Free chunk ``index`` (nothing if missing)."""
        self.files.drop_chunk(file_id, index)

    # ----------------------------------------------------------------- attrs
    def read_attrs(self, file_id: int) -> bytes:
        """The external attrs blob (decoded if encoded)."""
        data = self.get_chunk(file_id, ATTRS_INDEX)
        if data is None:
            raise CorruptionError(f"attrs of array file id {file_id} are missing")
        return bytes(data)


def array_entry_problem(entry: Entry) -> str | None:
    """What ``verify`` finds wrong with an array entry's descriptor, or None."""
    try:
        desc = decode_desc(entry.inline)
    except CartridgeError as exc:
        return str(exc)
    if desc.layout != LAYOUT_CHUNKED and entry.size != desc.nbytes:
        return f"array holds {desc.nbytes} bytes, entry says {entry.size}"
    return None


def array_chunk_problem(entry: Entry, idx: int, length: int, chunk_size: int) -> str | None:
    """What ``verify`` finds wrong with one chunk record of an array, or None."""
    try:
        desc = decode_desc(entry.inline)
    except CartridgeError:
        return None  # reported once by array_entry_problem
    if idx == ATTRS_INDEX:
        return None if desc.flags & FLAG_ATTRS_EXTERNAL else "attrs blob the entry does not use"
    if desc.layout == LAYOUT_CHUNKED:
        return None if length == desc.chunk_nbytes else (
            f"{length} bytes, the chunk shape needs {desc.chunk_nbytes}")
    if idx * chunk_size >= max(entry.size, 1) or length > chunk_size:
        return f"lies outside the array's {entry.size} bytes"
    return None
