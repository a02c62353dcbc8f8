"""Gather and scatter: copying a box of an array out of storage, and writing one back.

An array is stored in one of two layouts (``arrayformat.py``), and this module
is the only one that knows how a box ``[lo, hi)`` per axis maps onto each.

Why contiguous arrays are read as bytes.  A contiguous array is one logical
byte stream in C or Fortran order, stored like a file: in chunks of the
container's chunk size, raw pages or encoded records.  A box covers the byte
range from its first element to its last; reading that range, widened to
whole chunks, is one call of the file layer (which decodes and caches encoded
chunks), and an ndarray with the array's strides over those bytes *is* the
box.  When the bytes are exactly the box (a whole C-order array) they are
returned as they are, without a second copy.

Why chunked datasets are gathered chunk by chunk.  A chunked dataset stores
N-d blocks under a chunk index (grid coordinates packed in 64 bits), and
blocks never written are absent: they read as the fill value.  A box meeting
a few blocks looks each one up; a box meeting many scans the dataset's chunk
records once and decodes only the blocks inside it, which is cheaper than
thousands of lookups when most cells of the grid are empty.

Why scatter compares before it writes.  Storage is copy-on-write: rewriting a
chunk allocates new pages and frees the old ones at the next commit.  So an
assignment first builds the new contents of the box in memory, then writes
only the chunks whose bytes actually changed (a ``ds[...] = ds[...]`` writes
nothing), which keeps small edits to large arrays small in the file, in the
commit and in the page cache.  ``shrink_chunks`` gives ``resize`` h5py's
semantics: elements cut off are gone, and read as the fill value if the
dataset grows back.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..arraydata import ArrayData
from ..arrayformat import LAYOUT_CONTIGUOUS, ArrayDesc, chunk_coords, chunk_index
from ..catalog import Entry
from ..txn import ReadTxn, WriteTxn
from .indexing import Box

__all__ = ["gather", "set_chunked", "set_contiguous", "shrink_chunks"]


def _strides(desc: ArrayDesc) -> tuple[int, ...]:
    """Byte strides of a contiguous array in its stored order."""
    item = desc.dtype.itemsize
    shape = desc.shape
    axes = range(len(shape) - 1, -1, -1) if desc.order == "C" else range(len(shape))
    out = [0] * len(shape)
    step = item
    for ax in axes:
        out[ax] = step
        step *= max(shape[ax], 1)
    return tuple(out)



def gather(txn: ReadTxn, entry: Entry, desc: ArrayDesc,
            box: Box) -> np.ndarray:
    """A new array holding the box ``[lo, hi)`` per axis of the stored array."""
    shape = tuple(hi - lo for lo, hi in box)
    if 0 in shape:
        return np.empty(shape, desc.dtype)
    if desc.layout == LAYOUT_CONTIGUOUS:
        buf, first, strides = _box_bytes(txn, entry, desc, box)
        out = np.ndarray(shape, desc.dtype, buffer=buf, offset=first, strides=strides)
        if first == 0 and len(buf) == out.nbytes and out.flags.c_contiguous:
            return out  # the fresh buffer is exactly the box (a whole C-order array)
        return out.copy()
    out = np.empty(shape, desc.dtype)
    out[...] = desc.fill_array()
    chunks = desc.chunk_shape
    for origin, chunk in _chunks_in(txn, entry, desc, box):
        dst, src = _overlap(box, origin, chunks)
        out[dst] = chunk[src]
    return out


def _box_bytes(txn: ReadTxn, entry: Entry, desc: ArrayDesc,
               box: Box) -> tuple[bytearray, int, tuple[int, ...]]:
    """Chunk-aligned bytes covering a box of a contiguous array: ``(bytes, offset of
    the box's first element in them, strides)``; the bytes start at chunk
    ``offset // chunk_size`` of the array."""
    strides = _strides(desc)
    first = sum(lo * s for (lo, _), s in zip(box, strides))
    last = sum((hi - 1) * s for (_, hi), s in zip(box, strides)) + desc.dtype.itemsize
    ch = txn.env.chunk_size
    a0 = first // ch * ch
    a1 = min(entry.size, -(-last // ch) * ch)
    return bytearray(txn.data.read(entry, a0, a1)), first - a0, strides


def _chunks_in(txn: ReadTxn, entry: Entry, desc: ArrayDesc,
               box: Box) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """``(origin, chunk array)`` of every stored chunk meeting the box."""
    ndim = len(desc.shape)
    chunks = desc.chunk_shape
    ranges = [range(lo // c, -(-hi // c)) for (lo, hi), c in zip(box, chunks)]
    data = txn.arrays
    fid = entry.file_id
    found: Iterator[tuple[tuple[int, ...], memoryview | bytes | None]]
    if math.prod(len(r) for r in ranges) <= 64:
        found = ((cell, data.get_chunk(fid, chunk_index(cell, ndim)))
                 for cell in itertools.product(*ranges))
    else:
        found = _decode_within(data, fid, ndim, ranges)
    for cell, raw in found:
        if raw is None or any(g not in r for g, r in zip(cell, ranges)):
            continue
        chunk = np.frombuffer(raw, desc.dtype).reshape(chunks)
        yield tuple(g * c for g, c in zip(cell, chunks)), chunk


def _decode_within(data: ArrayData, fid: int, ndim: int, ranges: list[range]
                   ) -> Iterator[tuple[tuple[int, ...], memoryview | bytes]]:
    """``(grid cell, bytes)`` of the stored chunks inside ``ranges``, found by a scan
    of the chunk records; only those chunks are decoded."""
    for idx, rec in data.chunk_records(fid):
        cell = chunk_coords(idx, ndim)
        if all(g in r for g, r in zip(cell, ranges)):
            yield cell, data.decode(fid, idx, rec)


def _overlap(box: Box, origin: tuple[int, ...],
             chunks: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices of the box array and of the chunk where they overlap."""
    dst, src = [], []
    for (lo, hi), o, c in zip(box, origin, chunks):
        a, b = max(lo, o), min(hi, o + c)
        dst.append(slice(a - lo, b - lo))
        src.append(slice(a - o, b - o))
    return tuple(dst), tuple(src)


def set_contiguous(txn: WriteTxn, entry: Entry, desc: ArrayDesc,
                    box: Box, new: tuple[Any, ...], value: Any) -> bool:
    """Assign into a contiguous array, copying on write only the chunks that change."""
    if 0 in (hi - lo for lo, hi in box):
        np.empty([hi - lo for lo, hi in box], desc.dtype)[new] = value
        return False
    buf, first, strides = _box_bytes(txn, entry, desc, box)
    old = bytes(buf)
    shape = tuple(hi - lo for lo, hi in box)
    target = np.ndarray(shape, desc.dtype, buffer=buf, offset=first, strides=strides)
    target[new] = value
    ch = txn.env.chunk_size
    a0 = (sum(lo * s for (lo, _), s in zip(box, strides))) // ch * ch
    view = memoryview(buf)
    changed = False
    start = None
    n = len(buf)
    for pos in range(0, n + ch, ch):
        differs = pos < n and view[pos : pos + ch] != old[pos : pos + ch]
        if differs and start is None:
            start = pos
        elif not differs and start is not None:
            txn.write_data(entry, a0 + start, view[start:pos])
            changed = True
            start = None
    return changed


def set_chunked(txn: WriteTxn, entry: Entry, desc: ArrayDesc,
                 box: Box, new: tuple[Any, ...], value: Any) -> bool:
    """Assign into a chunked dataset, rewriting only the chunks that change."""
    block = gather(txn, entry, desc, box)
    before = block.copy()
    block[new] = value
    if not len(block.shape) or 0 in block.shape:
        return False
    ndim = len(desc.shape)
    chunks = desc.chunk_shape
    data = txn.arrays
    gen = txn.generation + 1
    changed = False
    ranges = [range(lo // c, -(-hi // c)) for (lo, hi), c in zip(box, chunks)]
    for cell in itertools.product(*ranges):
        origin = tuple(g * c for g, c in zip(cell, chunks))
        dst, src = _overlap(box, origin, chunks)
        if block[dst].tobytes() == before[dst].tobytes():
            continue
        idx = chunk_index(cell, ndim)
        raw = data.get_chunk(entry.file_id, idx)
        if raw is None:
            chunk = np.empty(chunks, desc.dtype)
            chunk[...] = desc.fill_array()
        else:
            chunk = np.frombuffer(raw, desc.dtype).reshape(chunks).copy()
        chunk[src] = block[dst]
        data.put_chunk(entry, idx, chunk.reshape(-1).view(np.uint8).data, gen)
        changed = True
    if changed:
        txn.wrote_data = True
    return changed


def shrink_chunks(txn: WriteTxn, entry: Entry, desc: ArrayDesc,
                   shape: tuple[int, ...]) -> None:
    """Before a resize: drop chunks wholly outside ``shape`` and reset the part of
    edge chunks beyond it to the fill value (so growing back reads fill)."""
    if all(s >= old for s, old in zip(shape, desc.shape)):
        return
    ndim = len(shape)
    chunks = desc.chunk_shape
    data = txn.arrays
    gen = txn.generation + 1
    for idx, rec in list(data.chunk_records(entry.file_id)):
        origin = [g * c for g, c in zip(chunk_coords(idx, ndim), chunks)]
        if any(o >= s for o, s in zip(origin, shape)):
            data.drop_chunk(entry.file_id, idx)
            continue
        keep = tuple(slice(0, min(c, s - o)) for o, c, s in zip(origin, chunks, shape))
        if all(k.stop == c for k, c in zip(keep, chunks)):
            continue
        chunk = np.empty(chunks, desc.dtype)
        chunk[...] = desc.fill_array()
        raw = data.decode(entry.file_id, idx, rec)
        chunk[keep] = np.frombuffer(raw, desc.dtype).reshape(chunks)[keep]
        data.put_chunk(entry, idx, chunk.reshape(-1).view(np.uint8).data, gen)
    txn.wrote_data = True
