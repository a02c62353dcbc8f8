"""Compaction: give deleted space back to the filesystem.

Copy-on-write never moves a live page, so space freed in the middle of the
file is reused but the file never shrinks by itself.  ``compact()`` moves
the live pages that lie past the point where everything would fit (the
*boundary*: the first page below which there are at least as many free pages
as there are used pages above it) into holes below it, then cuts the file.

Each step is an ordinary commit, so a kill at any moment loses nothing
committed: a chunk is copied into new pages and its record repointed; a
B+tree node is moved by copying its root-to-leaf path (copy-on-write does
that when the path is dirtied); free-map segments are rewritten.  The old
pages go to the pending-free list like any other freed page, so a live
reader, view or snapshot that can reach them keeps them (and the file cannot
shrink past them until it lets go).  Pages a snapshot reaches are not moved
at all: the snapshot keeps the original, so a copy would only add space.
``max_pages`` bounds the pages moved by one call, so a writer can interleave
compaction with its own work.

Cutting the file: the logical size (``total_pages``) shrinks with a commit;
the file itself is truncated only to the larger size of the two meta pages,
so the fallback commit always stays readable.  ``copy(dest, compact=True)``
is the other way to defragment: it writes a fresh container holding the
current files only (like ``mdb_copy -c``).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arrayformat import ATTRS_INDEX, FLAG_FRAGMENTED, LAYOUT_CONTIGUOUS, decode_desc
from .catalog import Entry
from .errors import EncodedDataError, FileExistsError, NotContiguousError
from .files import entry_policy
from .layout import (
    CHUNK_STRUCT,
    ENTRY_ARRAY,
    FM_BITS,
    KEY_CHUNK,
    KEY_PATH,
    PAGE_SIZE,
)
from .txn import ReadTxn, WriteTxn

#: Signature of progress callbacks: ``callback(done, total)`` in pages (compact)
#: or bytes (copy).
Callback = Callable[[int, int], Any]


@dataclass(frozen=True, slots=True)
class CompactResult:
    """What :meth:`Cartridge.compact` did."""

    moved_pages: int
    """Live pages copied to lower positions."""
    size_before: int
    """Bytes of the file before."""
    size_after: int
    """Bytes of the file after."""
    done: bool
    """True when nothing more can be moved now (False when ``max_pages`` stopped it)."""
    commits: int
    """Commits made (each step is one, crash-safe on its own)."""


def compact(txn: WriteTxn, max_pages: int | None = None,
            callback: Callback | None = None) -> CompactResult:
    """Move live pages from the end of the file into holes, then truncate it.

    ``max_pages`` bounds the pages moved by this call (None: as many as it
    takes); call again to continue.  Pending changes are committed first.
    ``callback(moved, to_move)`` reports progress after each step (each step
    is one commit, crash-safe on its own).
    """
    if max_pages is not None:
        if isinstance(max_pages, bool) or not isinstance(max_pages, (int, np.integer)):
            raise TypeError(f"max_pages must be an int or None, got {max_pages!r}")
        if max_pages < 1:
            raise ValueError(f"max_pages must be at least 1, got {max_pages}")
        max_pages = int(max_pages)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    mf = txn.env.file
    txn.commit()
    before = mf.file_size()
    start_gen = txn.generation
    moved = 0
    done = False
    while True:
        budget = None if max_pages is None else max_pages - moved
        if budget is not None and budget <= 0:
            break
        step, remaining = _compact_step(txn, budget)
        moved += step
        if callback is not None:
            callback(moved, moved + remaining)
        if step == 0:
            done = True
            break
    _compact_truncate(txn)
    return CompactResult(moved, before, mf.file_size(), done, txn.generation - start_gen)


def _boundary(txn: WriteTxn) -> tuple[int, int]:
    """(first page of the tail to empty, used pages at or past it)."""
    alloc = txn.allocator
    nbits = alloc.nbits
    used = np.unpackbits(alloc.words.view(np.uint8), bitorder="little")[:nbits].astype(bool)
    free_below = np.concatenate(([0], np.cumsum(~used)))
    used_from = used.sum() - np.concatenate(([0], np.cumsum(used)))
    b = int(np.argmax(free_below >= used_from))
    return b, int(used_from[b])


def _compact_step(txn: WriteTxn, budget: int | None) -> tuple[int, int]:
    """Move up to ``budget`` pages below the boundary in one commit."""
    alloc = txn.allocator
    boundary, tail_used = _boundary(txn)
    if tail_used == 0:
        return 0, 0
    nodes: list[bytes] = []
    chunks: list[tuple[bytes, tuple]] = []
    viewable: set[int] = set()
    store = txn.env.nodes
    # A page a snapshot reaches stays where it is whatever we do: moving
    # it would only add a copy.  (Pages under readers and views are
    # moved: their old copies stay pending until the pin goes.)
    newest_snap = max(txn.snapshot_generations(), default=-1)
    pager = txn.env.pager
    encrypted = pager.encrypted  # then every array is encoded chunk by chunk

    def first_key(node: Any) -> bytes | None:
        while not node.leaf:
            node = store.load(node.vals[0])
        return node.keys[0] if node.keys else None

    def visit(page: int, gen: int, node: Any, _depth: int) -> None:
        if page >= boundary and gen > newest_snap:
            key = first_key(node)
            if key is not None:
                nodes.append(key)
        if node.leaf:
            for key, val in zip(node.keys, node.vals):
                if key[:1] == KEY_PATH and not encrypted and _viewable(val):
                    viewable.add(Entry.decode(val).file_id)
                if key[:1] == KEY_CHUNK:
                    rec = CHUNK_STRUCT.unpack(val)
                    if rec[0] and rec[0] + rec[1] > boundary and rec[7] > newest_snap:
                        chunks.append((key, rec))

    txn.tree.walk(visit)
    moved = 0
    extents = _viewable_extents(txn.catalog, chunks, viewable)
    for fid, recs in extents.items():
        if budget is not None and moved >= budget:
            break
        # A viewable array is one page run (FORMAT.md 12.3): move it whole.
        first = min(rec[0] for _idx, rec in recs)
        npages = max(rec[0] + rec[1] for _idx, rec in recs) - first
        new = alloc.alloc_below(npages, first)
        if new is None:
            continue
        pager.write_data(new, pager.data(first, npages))
        for idx, rec in recs:
            # The record keeps its generation: it is in an encrypted chunk's
            # associated data, and as a birth it is only ever too old (safe).
            txn.catalog.put_chunk(fid, idx, (new + rec[0] - first, *rec[1:]))
            alloc.free(rec[0], rec[1], rec[7])
        txn.mark_dirty(wrote_data=True)
        moved += npages
    for key, rec in chunks:
        if budget is not None and moved >= budget:
            break
        if int.from_bytes(key[1:9], "big") in extents:
            continue
        page, npages = rec[0], rec[1]
        new = alloc.alloc_below(npages, page)
        if new is None:
            continue
        pager.write_data(new, pager.data(page, npages)[: rec[3]])
        fid = int.from_bytes(key[1:9], "big")
        idx = int.from_bytes(key[9:17], "big")
        txn.catalog.put_chunk(fid, idx, (new, *rec[1:]))  # generation kept: see above
        alloc.free(page, npages, rec[7])
        txn.mark_dirty(wrote_data=True)
        moved += npages
    for key in nodes:
        if budget is not None and moved >= budget:
            break
        txn.tree.touch(key)
        moved += 1
    for seg, (page, _g) in enumerate(alloc.fm_ptrs):
        if page >= boundary:
            alloc.dirty_segs.add(seg)
            moved += 1
    runs = [alloc.pending_run, alloc.dir_run]
    moved += sum(n for p, n in runs if n and p + n > boundary)
    if not moved:
        return 0, 0
    alloc.limit = boundary
    try:
        txn.commit_always()
    finally:
        alloc.limit = 0
    return moved, max(0, tail_used - moved)


def _compact_truncate(txn: WriteTxn) -> None:
    """Shrink the logical size, then the file, as far as both meta pages allow."""
    alloc = txn.allocator
    mf = txn.env.file
    for _ in range(2):  # the second commit makes the fallback meta small too
        if alloc.shrink() < int(txn.meta["total_pages"]) or _other_total(txn) > alloc.nbits:
            txn.commit_always()
    keep = max(int(txn.meta["total_pages"]), _other_total(txn))
    if mf.file_size() > keep * PAGE_SIZE:
        mf.sync()
        os.ftruncate(mf.fd, keep * PAGE_SIZE)
        mf.remap()


def _other_total(txn: ReadTxn) -> int:
    """``total_pages`` of the other (fallback) meta page, if it is valid."""
    slot = 1 + (txn.generation + 1) % 2
    _gen, meta, _problem = txn.env.pager.read_meta_slot(slot)
    return int(meta["total_pages"]) if meta is not None else 0


# ---------------------------------------------------------------------- copy
def copy_tree(src: Any, out: Any, callback: Callback | None = None) -> None:
    """Copy every file, array and directory of handle ``src`` into handle ``out``.

    Both are open handles (``src`` a read transaction, ``out`` a fresh
    read-write container); only their public API is used, plus ``out.txn``
    to give each copied entry its source's metadata, mode and times.
    ``callback(done, total)`` reports progress in bytes.
    """
    stxn = src.txn
    total = sum(info.size for _p, info in src.walk("/"))
    done = 0
    for path, raw in stxn.scan("/", True):
        entry = Entry.decode(raw)
        if entry.kind != 1:
            out.mkdir(path, exist_ok=True)
        elif entry.flags & ENTRY_ARRAY:
            _copy_array(src, out, path)
            done += entry.size
            if callback is not None:
                callback(done, total)
        else:
            out.write(path, b"")
            step = 64 << 20
            for off in range(0, entry.size, step):
                out.write_at(path, off, src.read(path, off, step))
                done += min(step, entry.size - off)
                if callback is not None:
                    callback(done, total)
        out.txn.copy_attributes(path, entry)
    out.commit()
    out.compact()  # only drops the growth reserve: a fresh copy has no holes
    if callback is not None:
        callback(total, total)


def copy_raw(txn: ReadTxn, dest: str, overwrite: bool, callback: Callback | None) -> None:
    """Write the pages of ``txn``'s commit as they are to a new file ``dest``."""
    if os.path.exists(dest) and not overwrite:
        raise FileExistsError(f"{dest!r} already exists; pass overwrite=True", dest)
    total = int(txn.meta["total_pages"]) * PAGE_SIZE
    tmp = dest + ".tmp-copy"
    view = txn.env.file.view
    with builtins.open(tmp, "wb") as fh:
        step = FM_BITS * PAGE_SIZE
        for off in range(0, total, step):
            fh.write(view[off : min(total, off + step)])
            if callback is not None:
                callback(min(total, off + step), total)
        # Only this commit's meta page: the other slot may describe a newer
        # commit whose pages this copy does not hold.
        other = (1 + (txn.generation + 1) % 2) * PAGE_SIZE
        fh.seek(other)
        fh.write(bytes(PAGE_SIZE))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, dest)


def _copy_array(src: Any, out: Any, path: str) -> None:
    """Copy an array with its layout, dtype, attrs and (for datasets) chunking."""
    ds = src.array(path)
    attrs = dict(ds.attrs)
    compression = src.stat(path).compression
    if ds.chunks is None:
        try:
            data = src.view(path)  # zero-copy, and keeps a Fortran order
        except (NotContiguousError, EncodedDataError):
            data = ds[...]
        out.write_array(path, data, attrs=attrs, compression=compression)
        return
    dst = out.create_dataset(path, ds.shape, ds.dtype, maxshape=ds.maxshape,
                             chunks=ds.chunks, fill_value=ds.fillvalue, attrs=attrs,
                             compression=compression)
    if ds.ndim == 0 or ds.size == 0:
        return
    rows = ds.chunks[0]  # one row of blocks at a time: bounded memory
    for lo in range(0, ds.shape[0], rows):
        dst[lo : lo + rows] = ds[lo : lo + rows]


def _viewable(value: bytes) -> bool:
    """True for the ENTRY of a contiguous, unfragmented, uncompressed array (in a
    plain container: an encrypted one's arrays are encoded chunk by chunk)."""
    entry = Entry.decode(value)
    if not entry.flags & ENTRY_ARRAY or entry_policy(entry):
        return False
    desc = decode_desc(entry.inline)
    return desc.layout == LAYOUT_CONTIGUOUS and not desc.flags & FLAG_FRAGMENTED


def _viewable_extents(cat: Any, chunks: list[tuple[bytes, tuple]],
                      viewable: set[int]) -> dict[int, list]:
    """Data chunks of contiguous, unfragmented arrays among ``chunks``, by file id.

    Such an array's chunks must stay one page run (a view maps it as one
    array), so compaction moves all of them together or none.  Returns every
    data chunk record of each such file (not only the ones past the boundary).
    """
    fids = {int.from_bytes(key[1:9], "big") for key, _rec in chunks} & viewable
    out: dict[int, list] = {}
    for fid in fids:
        recs = [(idx, rec) for idx, rec in cat.chunks(fid, 0, ATTRS_INDEX) if rec[0]]
        if recs and fid in viewable:
            out[fid] = recs
    return out
