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

Files with a compression policy, and every file of an encrypted container,
are *encoded*: each chunk is compressed on its own (codec.py), then sealed
(crypto.py), and stored in its own page run; its record gives the logical
length, the stored length and the codec.  A read decodes only the chunks it
touches, through the decoded-chunk cache (cache.py); :attr:`FileData.decodes`
counts the decodes, so tests can check that a small random read decodes at
most one chunk.  Raw chunks of plain files bypass the cache: the OS page
cache already holds the mapped pages.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .allocator import Allocator
from .catalog import Catalog, ChunkRec, Entry
from .codec import compress, decompress
from .errors import ContainerFullError, CorruptionError
from .kernels.checksum import chunk_checksums
from .layout import (
    CHECKSUM_SEED,
    CHUNK_ENCRYPTED,
    CODEC_NONE,
    ENTRY_POLICY_MASK,
    ENTRY_POLICY_SHIFT,
    PAGE_SIZE,
)
from .pager import Pager, checksum


def entry_policy(entry: Entry) -> int:
    """The compression policy recorded in a file entry's flags."""
    return (entry.flags & ENTRY_POLICY_MASK) >> ENTRY_POLICY_SHIFT


def decode_chunk(pager: Pager, fid: int, idx: int, rec: ChunkRec, stored: Any) -> bytes:
    """Authenticate/decrypt and decompress a chunk's stored bytes (FORMAT.md section 8)."""
    if rec[5] & CHUNK_ENCRYPTED:
        sealer = pager.sealers.get(rec[5] >> 1)
        if sealer is None:
            raise CorruptionError(f"chunk {idx} of file id {fid} is sealed under an "
                                  "unknown key slot", page=rec[0])
        stored = sealer.open_chunk(stored, fid, idx, rec[7], rec[2], rec[4])
    return decompress(rec[4], stored, rec[2])


def plain_chunk(rec: ChunkRec) -> bool:
    """True when a chunk's stored bytes are its logical bytes."""
    return rec[4] == CODEC_NONE and not rec[5] & CHUNK_ENCRYPTED


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
                 chunk_size: int, cache: Any = None, verify_reads: bool = False) -> None:
        self.pager = pager
        self.cat = catalog
        self.alloc = allocator
        self.chunk = chunk_size
        self.cache = cache
        self.verify_reads = verify_reads
        #: Chunks decoded (decompressed and/or decrypted) so far, cache misses only.
        self.decodes = 0

    def _stored(self, rec: ChunkRec, fid: int, idx: int) -> memoryview:
        """A chunk's stored bytes, checksum-verified when ``verify_reads`` is on."""
        raw = self.pager.data(rec[0], rec[1])[: rec[3]]
        if self.verify_reads and checksum(self.pager.data_array(rec[0], rec[3])) != rec[6]:
            raise CorruptionError(
                f"chunk {idx} of file id {fid} (data pages {rec[0]}..{rec[0] + rec[1] - 1}) "
                "fails its checksum", page=rec[0])
        return raw

    def chunk_bytes(self, fid: int, idx: int, rec: ChunkRec) -> Any:
        """The logical bytes of one chunk (a memoryview of the mapped pages for raw chunks)."""
        if plain_chunk(rec):
            return self._stored(rec, fid, idx)
        ident = (fid, idx, rec[0], rec[6], rec[7])
        cache = self.cache
        if cache is not None:
            hit = cache.get(ident)
            if hit is not None:
                return hit
        out = decode_chunk(self.pager, fid, idx, rec, self._stored(rec, fid, idx))
        self.decodes += 1
        if cache is not None:
            cache.put(ident, out)
        return out

    def is_raw(self, entry: Entry) -> bool:
        """True when a chunked file's bytes lie in the mapped pages as they are.

        That is: the container is not encrypted and the file has no
        compression policy (so all its chunks are stored raw).  Only such
        files can be viewed in place (``np.frombuffer`` on the mapping).
        """
        return not self.pager.encrypted and entry_policy(entry) == CODEC_NONE

    def stored_size(self, entry: Entry) -> int:
        """Bytes the file's chunks occupy on disk (before page rounding)."""
        return sum(rec[3] for _i, rec in self.cat.chunks(entry.file_id) if rec[0])

    # ---------------------------------------------------------------- read
    def read(self, entry: Entry, offset: int, end: int) -> bytes:
        """Bytes ``offset:end`` of a chunked file (``end <= entry.size``)."""
        ch = self.chunk
        fid = entry.file_id
        c0, c1 = offset // ch, (end - 1) // ch
        if c0 == c1:
            rec = self.cat.chunk(fid, c0)
            lo, hi = offset - c0 * ch, end - c0 * ch
            if rec is not None and hi <= rec[2] and rec[0]:
                return bytes(self.chunk_bytes(fid, c0, rec)[lo:hi])
        pieces: list[Any] = []  # joined once: one copy of every byte
        pos = offset
        for idx, rec in self.cat.chunks(fid, c0, c1 + 1):
            if not rec[0]:
                continue
            base = idx * ch
            lo, hi = max(offset, base), min(end, base + rec[2])
            if lo < hi:
                if lo > pos:
                    pieces.append(bytes(lo - pos))
                pieces.append(memoryview(self.chunk_bytes(fid, idx, rec))[lo - base : hi - base])
                pos = hi
        if pos < end:
            pieces.append(bytes(end - pos))
        return b"".join(pieces)

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

    def write(self, entry: Entry, offset: int, view: memoryview, generation: int,
              level: int = 0) -> None:
        """Copy-on-write ``view`` into the file at ``offset`` (see module doc)."""
        n = len(view)
        end = offset + n
        if n == 0:
            entry.size = max(entry.size, end)
            return
        if not self.is_raw(entry):
            self._write_encoded(entry, offset, view, generation, level)
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
                        buf[: old[c][2]] = self.chunk_bytes(entry.file_id, c, old[c])
                    buf[lo:hi] = view[base + lo - offset : base + hi - offset]
                    pager.write_data(starts[i], buf)
                sums.append(checksum(pager.data_array(starts[i], length)))
        for i, c in enumerate(range(c0, c1 + 1)):
            if c in old and old[c][0]:
                self.alloc.free(old[c][0], old[c][1], old[c][7])
            self.cat.put_chunk(entry.file_id, c, (starts[i], npages[i], lengths[i], lengths[i],
                                                  CODEC_NONE, 0, int(sums[i]), generation))
        entry.size = max(entry.size, end)

    def _encode(self, entry: Entry, idx: int, plain: Any, generation: int,
                level: int) -> tuple[int, int, Any]:
        """``(codec, flags, stored bytes)`` of one chunk: compressed, then sealed."""
        codec, data = compress(entry_policy(entry), level, plain)
        sealer = self.pager.sealer()
        if sealer is None:
            return codec, 0, data
        data = sealer.seal_chunk(data, entry.file_id, idx, generation, len(plain), codec)
        return codec, CHUNK_ENCRYPTED | (self.pager.slot << 1), data

    def _store(self, fid: int, pieces: list[tuple[int, int, int, int, Any]],
               generation: int) -> None:
        """Write encoded chunks ``(index, length, codec, flags, stored)`` to new pages."""
        npages = [-(-len(p[4]) // PAGE_SIZE) for p in pieces]
        starts = self._allocate(npages)
        hi = pieces[-1][0] + 1  # None past the last index (an array's attrs blob)
        old = dict(self.cat.chunks(fid, pieces[0][0], hi if hi < 1 << 64 else None))
        pager = self.pager
        for (idx, length, codec, flags, data), start, k in zip(pieces, starts, npages):
            pager.write_data(start, data)
            total = checksum(pager.data_array(start, len(data)))
            prev = old.get(idx)
            if prev is not None and prev[0]:
                self.alloc.free(prev[0], prev[1], prev[7])
            self.cat.put_chunk(fid, idx, (start, k, length, len(data), codec, flags, total,
                                          generation))

    def _write_encoded(self, entry: Entry, offset: int, view: memoryview, generation: int,
                       level: int) -> None:
        """:meth:`write` for compressed or encrypted files: chunk by chunk."""
        ch = self.chunk
        end = offset + len(view)
        c0, c1 = offset // ch, (end - 1) // ch
        fid = entry.file_id
        old = dict(self.cat.chunks(fid, c0, c1 + 1))
        pieces = []
        for c in range(c0, c1 + 1):
            base = c * ch
            prev = old.get(c)
            old_len = prev[2] if prev is not None and prev[0] else 0
            length = max(old_len, min(ch, end - base))
            lo, hi = max(offset, base) - base, min(end, base + length) - base
            if lo == 0 and hi == length:
                plain = view[base - offset : base - offset + length]
            else:
                buf = bytearray(length)
                if old_len:
                    buf[:old_len] = self.chunk_bytes(fid, c, prev)
                buf[lo:hi] = view[base + lo - offset : base + hi - offset]
                plain = buf
            pieces.append((c, length, *self._encode(entry, c, plain, generation, level)))
        self._store(fid, pieces, generation)
        entry.size = max(entry.size, end)

    def reseal(self, fid: int, idx: int, rec: ChunkRec, generation: int) -> None:
        """Copy a sealed chunk to new pages under the pager's current key slot.

        The compressed bytes are kept as they are (no recompression); only
        the seal changes, with ``generation`` in its associated data.  Used by
        ``rekey``.
        """
        old = self.pager.sealers[rec[5] >> 1]
        inner = old.open_chunk(self._stored(rec, fid, idx), fid, idx, rec[7], rec[2], rec[4])
        data = self.pager.sealer().seal_chunk(inner, fid, idx, generation, rec[2], rec[4])
        self._store(fid, [(idx, rec[2], rec[4], CHUNK_ENCRYPTED | (self.pager.slot << 1), data)],
                    generation)

    def shrink(self, entry: Entry, size: int, generation: int) -> None:
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
                if rec[2] > keep and rec[0] and not plain_chunk(rec):
                    plain = bytes(self.chunk_bytes(entry.file_id, last, rec)[:keep])
                    piece = (last, keep, *self._encode(entry, last, plain, generation, 0))
                    self._store(entry.file_id, [piece], generation)
                elif rec[2] > keep:
                    pages = -(-keep // PAGE_SIZE)
                    if rec[0] and pages < rec[1]:
                        self.alloc.free(rec[0] + pages, rec[1] - pages, rec[7])
                    total = checksum(self.pager.data_array(rec[0], keep)) if rec[0] else 0
                    self.cat.put_chunk(entry.file_id, last,
                                       (rec[0], pages, keep, keep, CODEC_NONE, 0, total, rec[7]))
        entry.size = size

    def free(self, entry: Entry) -> None:
        """Free every chunk of a file (nothing for inline files and dirs)."""
        if entry.file_id:
            self._drop_chunks(entry.file_id, 0)

    def _drop_chunks(self, file_id: int, first: int) -> None:
        """Free chunks ``first..`` of a file and delete their records."""
        for idx, rec in list(self.cat.chunks(file_id, first)):
            if rec[0]:
                self.alloc.free(rec[0], rec[1], rec[7])
            self.cat.remove_chunk(file_id, idx)
