"""File contents: chunk records and the data pages they point to.

A chunked file's bytes are cut into chunks of ``chunk_size`` bytes (64 KiB by
default); chunk ``c`` has one record in the catalog (first page, page count,
stored length, XXH64, generation).  This module owns everything about them:
where a write's bytes go, how a read gathers them, what truncation and
deletion free.  Small files stored inline in their catalog entry never reach
it.

Writes are copy-on-write at chunk granularity: the chunks a write touches get
new pages (allocated before anything else changes, so a full container fails
cleanly with nothing half-done), the old pages are freed, and untouched
chunks are shared with the previous commit.  A write therefore costs
O(bytes written + 2 chunks) whatever the file's size.  A large write gets one
contiguous run of pages when free space allows, copied from the caller in one
piece, with every chunk's checksum computed by one kernel call.
"""

from __future__ import annotations

import numpy as np

from .allocator import Allocator
from .catalog import Catalog, ChunkRec, Entry
from .errors import ContainerFullError
from .kernels.checksum import chunk_checksums
from .layout import CHECKSUM_SEED, PAGE_SIZE
from .pager import Pager, checksum


class FileData:
    """Chunked file contents of one catalog version.

    Parameters
    ----------
    pager:
        Page access.
    catalog:
        Where the chunk records live.
    allocator:
        Page allocation (None for read-only handles).
    chunk_size:
        Bytes per chunk, from the file header.
    """

    def __init__(self, pager: Pager, catalog: Catalog, allocator: Allocator | None,
                 chunk_size: int) -> None:
        self.pager = pager
        self.cat = catalog
        self.alloc = allocator
        self.chunk = chunk_size

    def _bytes(self, rec: ChunkRec, lo: int, hi: int) -> memoryview:
        """Bytes ``lo:hi`` of a chunk's stored data (``hi <= rec length``)."""
        return self.pager.data(rec[0], rec[1])[lo:hi]

    # ---------------------------------------------------------------- read
    def read(self, entry: Entry, offset: int, end: int) -> bytes:
        """Bytes ``offset:end`` of a chunked file (``end <= entry.size``)."""
        ch = self.chunk
        c0, c1 = offset // ch, (end - 1) // ch
        if c0 == c1:
            rec = self.cat.chunk(entry.file_id, c0)
            lo, hi = offset - c0 * ch, end - c0 * ch
            if rec is not None and hi <= rec[2] and rec[0]:
                return bytes(self._bytes(rec, lo, hi))
        out = bytearray(end - offset)
        for idx, rec in self.cat.chunks(entry.file_id, c0, c1 + 1):
            if not rec[0]:
                continue
            base = idx * ch
            lo, hi = max(offset, base), min(end, base + rec[2])
            if lo < hi:
                out[lo - offset : hi - offset] = self._bytes(rec, lo - base, hi - base)
        return bytes(out)

    # --------------------------------------------------------------- write
    def _allocate(self, npages: list[int]) -> list[int]:
        """First page of each chunk's run: one contiguous run if possible."""
        total = sum(npages)
        try:
            start = self.alloc.alloc(total)
        except ContainerFullError:
            starts: list[int] = []
            try:
                for k in npages:
                    starts.append(self.alloc.alloc(k))
            except ContainerFullError:
                for first, k in zip(starts, npages):
                    self.alloc.free(first, k)
                raise
            return starts
        starts = []
        for k in npages:
            starts.append(start)
            start += k
        return starts

    def write(self, entry: Entry, offset: int, view: memoryview, generation: int) -> None:
        """Copy-on-write ``view`` into the file at ``offset`` (see module doc)."""
        n = len(view)
        end = offset + n
        if n == 0:
            entry.size = max(entry.size, end)
            return
        ch = self.chunk
        c0, c1 = offset // ch, (end - 1) // ch
        old = dict(self.cat.chunks(entry.file_id, c0, c1 + 1))
        lengths = [max(old[c][2] if c in old else 0, min(ch, end - c * ch))
                   for c in range(c0, c1 + 1)]
        npages = [-(-length // PAGE_SIZE) for length in lengths]
        starts = self._allocate(npages)
        pager = self.pager
        contiguous = all(b == a + k for a, b, k in zip(starts, starts[1:], npages))
        if contiguous and offset == c0 * ch and not old:
            # Whole chunks back to back, straight from the caller, one kernel call.
            pager.write_data(starts[0], view)
            sums = chunk_checksums(pager.data_array(starts[0], n), ch, np.uint64(CHECKSUM_SEED))
        else:
            sums = []
            for i, c in enumerate(range(c0, c1 + 1)):
                base, length = c * ch, lengths[i]
                lo, hi = max(offset, base) - base, min(end, base + length) - base
                if lo == 0 and hi == length:
                    pager.write_data(starts[i], view[base - offset : base - offset + length])
                else:
                    buf = bytearray(length)
                    if c in old and old[c][0]:
                        buf[: old[c][2]] = self._bytes(old[c], 0, old[c][2])
                    buf[lo:hi] = view[base + lo - offset : base + hi - offset]
                    pager.write_data(starts[i], buf)
                sums.append(checksum(pager.data_array(starts[i], length)))
        for i, c in enumerate(range(c0, c1 + 1)):
            if c in old and old[c][0]:
                self.alloc.free(old[c][0], old[c][1], old[c][4])
            self.cat.put_chunk(entry.file_id, c,
                               (starts[i], npages[i], lengths[i], int(sums[i]), generation))
        entry.size = max(entry.size, end)

    def shrink(self, entry: Entry, size: int) -> None:
        """Cut a chunked file to ``size < entry.size`` bytes.

        Whole chunks past the end are freed; the new last chunk keeps its
        pages (they are unchanged), loses the pages past the new length and
        gets the checksum of its shorter contents.
        """
        ch = self.chunk
        last = (size - 1) // ch if size else -1
        self._drop_chunks(entry.file_id, last + 1)
        keep = size - last * ch
        if size % ch:
            for _idx, rec in list(self.cat.chunks(entry.file_id, last, last + 1)):
                if rec[2] > keep:
                    pages = -(-keep // PAGE_SIZE)
                    if rec[0] and pages < rec[1]:
                        self.alloc.free(rec[0] + pages, rec[1] - pages, rec[4])
                    total = checksum(self.pager.data_array(rec[0], keep)) if rec[0] else 0
                    self.cat.put_chunk(entry.file_id, last, (rec[0], pages, keep, total, rec[4]))
        entry.size = size

    def free(self, entry: Entry) -> None:
        """Free every chunk of a file (nothing for inline files and dirs)."""
        if entry.file_id:
            self._drop_chunks(entry.file_id, 0)

    def _drop_chunks(self, file_id: int, first: int) -> None:
        """Free chunks ``first..`` of a file and delete their records."""
        for idx, rec in list(self.cat.chunks(file_id, first)):
            if rec[0]:
                self.alloc.free(rec[0], rec[1], rec[4])
            self.cat.remove_chunk(file_id, idx)
