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

Every chunk write, of files and of arrays (arraydata.py), ends in
:meth:`FileData.put_chunk`: pages allocated (or handed over from a run the
caller allocated for many chunks), bytes copied, checksum computed, the pages
of the record it replaces freed, the new record put.  Allocation comes first,
so a full container fails before anything changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from .allocator import Allocator
from .catalog import Catalog, ChunkRecord, Entry
from .codec import compress, decompress
from .crypto import KeyRing
from .errors import ContainerFullError, CorruptionError, ReadOnlyError
from .kernels.checksum import chunk_checksums
from .layout import (
    CHECKSUM_SEED,
    CHUNK_ENCRYPTED,
    CODEC_NONE,
    ENTRY_POLICY_MASK,
    ENTRY_POLICY_SHIFT,
    PAGE_SIZE,
)
from .pager import BytesLike, Pager
from .pager import checksum as checksum_of

#: Runs at least this large checksum in a thread while their bytes are copied.
PARALLEL_CHECKSUM_BYTES = 4 << 20


class ChunkWrite(NamedTuple):
    """One chunk ready to be stored by :meth:`FileData.put_chunks`."""

    idx: int
    """Chunk index within the file (or array)."""
    length: int
    """Logical bytes of the chunk."""
    codec: int
    """``CODEC_*`` of :attr:`data`."""
    flags: int
    """CHUNK.flags (encryption bit and key slot)."""
    data: BytesLike
    """The bytes to store: compressed and sealed as :attr:`codec` and :attr:`flags` say."""


def entry_policy(entry: Entry) -> int:
    """The compression policy recorded in a file entry's flags."""
    return (entry.flags & ENTRY_POLICY_MASK) >> ENTRY_POLICY_SHIFT


def decode_chunk(pager: Pager, fid: int, idx: int, rec: ChunkRecord, stored: Any) -> bytes:
    """Authenticate/decrypt and decompress a chunk's stored bytes (FORMAT.md section 8)."""
    if rec.encrypted:
        keyring = pager.keyring
        sealer = keyring.sealer_for(rec.key_slot) if keyring is not None else None
        if sealer is None:
            raise CorruptionError(f"chunk {idx} of file id {fid} is sealed under an "
                                  "unknown key slot", page=rec.page)
        stored = sealer.open_chunk(stored, fid, idx, rec.generation, rec.length, rec.codec)
    return decompress(rec.codec, stored, rec.length)


def plain_chunk(rec: ChunkRecord) -> bool:
    """True when a chunk's stored bytes are its logical bytes."""
    return rec.codec == CODEC_NONE and not rec.flags & CHUNK_ENCRYPTED


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
    cache:
        The decoded-chunk cache (:class:`~cartridge.cache.ChunkCache`), or None.
    verify_reads:
        Check every chunk's checksum when it is read.
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

    def _allocator(self) -> Allocator:
        """The allocator of a writable handle (ReadOnlyError for a read-only one)."""
        if self.alloc is None:
            raise ReadOnlyError("this handle is read-only: it cannot write file data")
        return self.alloc

    def _keyring(self) -> KeyRing:
        """The key ring, for a sealed chunk (whose container must then be encrypted)."""
        keyring = self.pager.keyring
        if keyring is None:
            raise CorruptionError("a sealed chunk in a container that is not encrypted")
        return keyring

    def _stored(self, rec: ChunkRecord, fid: int, idx: int) -> memoryview:
        """A chunk's stored bytes, checksum-verified when ``verify_reads`` is on."""
        raw = self.pager.data(rec.page, rec.npages)[: rec.stored]
        if (self.verify_reads
                and checksum_of(self.pager.data_array(rec.page, rec.stored)) != rec.checksum):
            raise CorruptionError(
                f"chunk {idx} of file id {fid} (data pages {rec.page}..{rec.end_page - 1}) "
                "fails its checksum", page=rec.page)
        return raw

    def chunk_bytes(self, fid: int, idx: int, rec: ChunkRecord) -> Any:
        """The logical bytes of one chunk (a memoryview of the mapped pages for raw chunks)."""
        if plain_chunk(rec):
            return self._stored(rec, fid, idx)
        ident = (fid, idx, rec.page, rec.checksum, rec.generation)
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
        return sum(rec.stored for _i, rec in self.cat.chunks(entry.file_id) if rec.page)

    # ---------------------------------------------------------------- read
    def read(self, entry: Entry, offset: int, end: int) -> bytes:
        """Bytes ``offset:end`` of a chunked file (``end <= entry.size``)."""
        ch = self.chunk
        fid = entry.file_id
        c0, c1 = offset // ch, (end - 1) // ch
        if c0 == c1:
            one = self.cat.chunk(fid, c0)
            lo, hi = offset - c0 * ch, end - c0 * ch
            if one is not None and hi <= one.length and one.page:
                return bytes(self.chunk_bytes(fid, c0, one)[lo:hi])
        pieces: list[Any] = []  # joined once: one copy of every byte
        pos = offset
        for idx, rec in self.cat.chunks(fid, c0, c1 + 1):
            if not rec.page:
                continue
            base = idx * ch
            lo, hi = max(offset, base), min(end, base + rec.length)
            if lo < hi:
                if lo > pos:
                    pieces.append(bytes(lo - pos))
                pieces.append(memoryview(self.chunk_bytes(fid, idx, rec))[lo - base : hi - base])
                pos = hi
        if pos < end:
            pieces.append(bytes(end - pos))
        return b"".join(pieces)

    # --------------------------------------------------------------- store
    def put_chunk(self, fid: int, index: int, data: BytesLike | None, generation: int, *,
                  replaces: ChunkRecord | None, length: int | None = None,
                  codec: int = CODEC_NONE, flags: int = 0, page: int | None = None,
                  stored: int | None = None, checksum: int | None = None) -> ChunkRecord:
        """Store one chunk in new pages and point its record at them (copy-on-write).

        The one path of every chunk write, in this order:

        1. pages: ``page`` when the caller allocated one run for many chunks,
           else ``ceil(len(data) / 4096)`` new ones (none for empty data: a hole);
        2. ``data`` copied there; ``data=None`` means the caller already copied
           ``stored`` bytes to ``page`` (one copy for a whole run);
        3. the checksum of the stored bytes, unless the caller gives it
           (computed by one kernel call over a whole run);
        4. the pages of ``replaces`` (the record being replaced, None if none) freed;
        5. the new record put and returned.

        ``length`` is the logical length (default: the stored length, a raw
        chunk); ``codec`` and ``flags`` describe encoded bytes.
        """
        if data is not None:
            stored = len(data)
        elif stored is None or page is None or checksum is None:
            raise TypeError("put_chunk(data=None) needs page=, stored= and checksum=")
        npages = -(-stored // PAGE_SIZE)
        if page is None:
            page = self._allocator().alloc(npages) if npages else 0
        if data is not None and stored:
            self.pager.write_data(page, data)
        if checksum is None:
            checksum = checksum_of(self.pager.data_array(page, stored)) if stored else 0
        if replaces is not None and replaces.page:
            self._allocator().free(replaces.page, replaces.npages, replaces.generation)
        rec = ChunkRecord(page, npages, stored if length is None else length, stored, codec,
                          flags, checksum, generation)
        self.cat.put_chunk(fid, index, rec)
        return rec

    def move_chunk(self, fid: int, idx: int, rec: ChunkRecord, page: int, *,
                   copy: bool = True) -> ChunkRecord:
        """Move a chunk's stored bytes, unchanged, to ``page`` (allocated by the caller).

        The record keeps its checksum and its generation: the generation is in
        a sealed chunk's associated data, and as the birth of the new pages it
        is only ever too old, which is safe.  ``copy=False``: the caller
        already copied the bytes (one copy for a whole run).  Used by compaction.
        """
        data = self.pager.data(rec.page, rec.npages)[: rec.stored] if copy else None
        return self.put_chunk(fid, idx, data, rec.generation, replaces=rec, length=rec.length,
                              codec=rec.codec, flags=rec.flags, page=page, stored=rec.stored,
                              checksum=rec.checksum)

    def put_chunks(self, fid: int, pieces: Sequence[ChunkWrite], generation: int,
                   old: Mapping[int, ChunkRecord] | None = None) -> None:
        """:meth:`put_chunk` for several chunks (by increasing index), in one run of new
        pages when free space allows.  ``old``: their current records (looked up if None)."""
        if not pieces:
            return
        npages = [-(-len(p.data) // PAGE_SIZE) for p in pieces]
        starts = self._allocate(npages)
        if old is None:
            hi = pieces[-1].idx + 1  # None past the last index (an array's attrs blob)
            old = dict(self.cat.chunks(fid, pieces[0].idx, hi if hi < 1 << 64 else None))
        for piece, start in zip(pieces, starts):
            self.put_chunk(fid, piece.idx, piece.data, generation, replaces=old.get(piece.idx),
                           length=piece.length, codec=piece.codec, flags=piece.flags, page=start)

    def put_run(self, fid: int, data: BytesLike, generation: int, first: int = 0) -> int:
        """Store ``data`` as raw chunks ``first, first + 1, ...`` in ONE new run of pages.

        Returns the run's first page (0 when ``data`` is empty).  One copy of
        the bytes and one checksum kernel call for the whole run (in a thread
        beside the copy when it is large).  Raises ContainerFullError, with
        nothing changed, when no run that long is free.  Those chunks must
        have no records yet (a new file or array, or chunks past the end).
        """
        n = len(data)
        if n == 0:
            return 0
        ch = self.chunk
        start = self._allocator().alloc(-(-n // PAGE_SIZE))
        # Checksums from the caller's bytes, not the fresh pages (reading those
        # back through the map would fault every page in a second time).
        src = np.frombuffer(data, np.uint8)
        seed = np.uint64(CHECKSUM_SEED)
        if n >= PARALLEL_CHECKSUM_BYTES:
            with ThreadPoolExecutor(1) as pool:
                pending = pool.submit(chunk_checksums, src, ch, seed)
                self.pager.write_data(start, data)
                sums = pending.result()
        else:
            self.pager.write_data(start, data)
            sums = chunk_checksums(src, ch, seed)
        per = ch // PAGE_SIZE
        for c, total in enumerate(sums.tolist()):
            self.put_chunk(fid, first + c, None, generation, replaces=None, page=start + c * per,
                           stored=min(ch, n - c * ch), checksum=total)
        return start

    def _allocate(self, npages: list[int]) -> list[int]:
        """First page of each chunk's run: one contiguous run if possible."""
        alloc = self._allocator()
        try:
            start = alloc.alloc(sum(npages))
        except ContainerFullError:
            starts: list[int] = []
            try:
                for k in npages:
                    starts.append(alloc.alloc(k))
            except ContainerFullError:
                for first, k in zip(starts, npages):
                    alloc.free(first, k)
                raise
            return starts
        starts = []
        for k in npages:
            starts.append(start)
            start += k
        return starts

    # --------------------------------------------------------------- write
    def write(self, entry: Entry, offset: int, view: memoryview, generation: int,
              level: int = 0) -> None:
        """Copy-on-write ``view`` into the file at ``offset`` (see module doc)."""
        n = len(view)
        end = offset + n
        if n == 0:
            entry.size = max(entry.size, end)
            return
        ch = self.chunk
        fid = entry.file_id
        c0, c1 = offset // ch, (end - 1) // ch
        old = dict(self.cat.chunks(fid, c0, c1 + 1))
        raw = self.is_raw(entry)
        if raw and not old and offset == c0 * ch:
            # Whole chunks back to back, straight from the caller; when no
            # single run is free (nothing changed), chunk by chunk below.
            with contextlib.suppress(ContainerFullError):
                self.put_run(fid, view, generation, c0)
                entry.size = max(entry.size, end)
                return
        pieces = []
        for c in range(c0, c1 + 1):
            plain = self._patched(fid, c, old.get(c), view, offset)
            if raw:
                pieces.append(ChunkWrite(c, len(plain), CODEC_NONE, 0, plain))
            else:
                pieces.append(ChunkWrite(c, len(plain),
                                         *self.encode(entry, c, plain, generation, level)))
        self.put_chunks(fid, pieces, generation, old)
        entry.size = max(entry.size, end)

    def _patched(self, fid: int, c: int, prev: ChunkRecord | None, view: memoryview,
                 offset: int) -> BytesLike:
        """The new logical bytes of chunk ``c`` after writing ``view`` at ``offset``:
        a slice of ``view`` when it covers the chunk, else the old bytes patched."""
        ch = self.chunk
        base = c * ch
        end = offset + len(view)
        old_len = prev.length if prev is not None and prev.page else 0
        length = max(prev.length if prev is not None else 0, min(ch, end - base))
        lo, hi = max(offset, base) - base, min(end, base + length) - base
        if lo == 0 and hi == length:
            return view[base - offset : base - offset + length]
        buf = bytearray(length)
        if prev is not None and old_len:
            buf[:old_len] = self.chunk_bytes(fid, c, prev)
        buf[lo:hi] = view[base + lo - offset : base + hi - offset]
        return buf

    def encode(self, entry: Entry, idx: int, plain: BytesLike, generation: int,
               level: int) -> tuple[int, int, BytesLike]:
        """``(codec, flags, stored bytes)`` of one chunk: compressed, then sealed."""
        codec, data = compress(entry_policy(entry), level, plain)
        keyring = self.pager.keyring
        if keyring is None:
            return codec, 0, data
        data = keyring.sealer.seal_chunk(data, entry.file_id, idx, generation, len(plain), codec)
        return codec, keyring.chunk_flags, data

    def reseal(self, fid: int, idx: int, rec: ChunkRecord, generation: int) -> None:
        """Copy a sealed chunk to new pages under the key ring's current key slot.

        The compressed bytes are kept as they are (no recompression); only
        the seal changes, with ``generation`` in its associated data.  Used by
        ``rekey``.
        """
        keyring = self._keyring()
        old = keyring.sealer_for(rec.key_slot)
        if old is None:
            raise CorruptionError(f"chunk {idx} of file id {fid} is sealed under an "
                                  "unknown key slot", page=rec.page)
        inner = old.open_chunk(self._stored(rec, fid, idx), fid, idx, rec.generation,
                               rec.length, rec.codec)
        data = keyring.sealer.seal_chunk(inner, fid, idx, generation, rec.length, rec.codec)
        self.put_chunk(fid, idx, data, generation, replaces=rec, length=rec.length,
                       codec=rec.codec, flags=keyring.chunk_flags)

    def shrink(self, entry: Entry, size: int, generation: int) -> None:
        """Cut a chunked file to ``size < entry.size`` bytes.

        Whole chunks past the end are freed; the new last chunk keeps its
        pages (they are unchanged), loses the pages past the new length and
        gets the checksum of its shorter contents.
        """
        ch = self.chunk
        fid = entry.file_id
        last = (size - 1) // ch if size else -1
        self._drop_chunks(fid, last + 1)
        keep = size - last * ch
        if size % ch:
            for _idx, rec in list(self.cat.chunks(fid, last, last + 1)):
                if rec.length > keep and rec.page and not plain_chunk(rec):
                    plain = bytes(self.chunk_bytes(fid, last, rec)[:keep])
                    codec, flags, data = self.encode(entry, last, plain, generation, 0)
                    self.put_chunk(fid, last, data, generation, replaces=rec, length=keep,
                                   codec=codec, flags=flags)
                elif rec.length > keep:
                    # In place: the kept pages are unchanged, so the record keeps
                    # its generation (the birth of those pages).
                    pages = -(-keep // PAGE_SIZE)
                    if rec.page and pages < rec.npages:
                        self._allocator().free(rec.page + pages, rec.npages - pages,
                                               rec.generation)
                    total = checksum_of(self.pager.data_array(rec.page, keep)) if rec.page else 0
                    self.cat.put_chunk(fid, last, rec._replace(
                        npages=pages, length=keep, stored=keep, codec=CODEC_NONE, flags=0,
                        checksum=total))
        entry.size = size

    def free(self, entry: Entry) -> None:
        """Free every chunk of a file (nothing for inline files and dirs)."""
        if entry.file_id:
            self._drop_chunks(entry.file_id, 0)

    def drop_chunk(self, fid: int, index: int) -> None:
        """Free chunk ``index`` of a file and delete its record (nothing if missing)."""
        rec = self.cat.chunk(fid, index)
        if rec is not None:
            self._drop(fid, index, rec)

    def _drop_chunks(self, fid: int, first: int) -> None:
        """Free chunks ``first..`` of a file and delete their records."""
        for idx, rec in list(self.cat.chunks(fid, first)):
            self._drop(fid, idx, rec)

    def _drop(self, fid: int, idx: int, rec: ChunkRecord) -> None:
        if rec.page:
            self._allocator().free(rec.page, rec.npages, rec.generation)
        self.cat.remove_chunk(fid, idx)
