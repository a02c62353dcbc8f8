"""Ndarrays over the mapped file: the pinned public view, and the call-scoped whole.

Why views are safe.  ``view`` returns an ndarray whose memory *is* the
mapped pages of one commit.  Three things keep those bytes valid and unchanged
for as long as the array, or any array derived from it, is alive:

1. **The mapping.**  The ndarray's buffer is a read-only memoryview of the
   ``mmap`` object, which therefore cannot be closed (``mmap.close`` raises
   ``BufferError``, which the mapped-file layer tolerates) or replaced under
   it: growth maps the file anew and leaves the old map to its views.
2. **A pin.**  Each handle owns a :class:`~cartridge.arrays.pins.ViewPins`: a
   count of live views per generation, published as one slot of the reader
   table (``readers.py``, through its ordinary ``pin``/``unpin``), so the
   writer of *any* process keeps the pages that generation reaches out of
   the free map.  The root ndarray of every view carries a
   ``weakref.finalize`` that drops its count; numpy makes every derived
   array's ``base`` that root (the collapse of ``base`` chains stops at an
   array whose own base is not an ndarray), so the count drops only when the
   last derived array dies.
3. **Held pages.**  A writer's view of data written in the *current*
   transaction reads pages no commit reaches yet, which a free in the same
   transaction, or a rollback, would return at once.  Such runs are *held*
   (``Allocator.hold``): a free sends them through the pending list, where the
   pin decides, and a rollback keeps them pending.

Pages of dead views return at the next commit (or rollback) of a writer.

Why a second, unpinned kind.  Slicing a raw contiguous array is fastest by
letting numpy index the map in place and copying out only what it selects
(``reads.getitem``).  That array never leaves the read call that made it, and
the call's own pin protects it, so it needs no pin or finalizer of its own:
``mapped_whole`` builds it over the current mapping's buffer and, on a
read-only handle, remembers it per (generation, mapping) so repeated slices
skip the catalog.  Only ``view_of`` results may be handed to
users.
"""

from __future__ import annotations

import weakref
from typing import TypeAlias

import numpy as np

from ..arrayformat import FLAG_FRAGMENTED, LAYOUT_CHUNKED, LAYOUT_CONTIGUOUS
from ..errors import NotContiguousError
from ..kernels import bitmap as kb
from ..txn import ReadTxn
from .descriptors import array_entry
from .pins import ViewPins

__all__ = ["WholeCache", "mapped_whole", "view_of"]

#: ``mapped_whole``'s cache: path -> ((generation, id of the mapping's buffer),
#: the whole mapped array, or None when it cannot be mapped whole).
WholeCache: TypeAlias = dict[str, tuple[tuple[int, int], np.ndarray | None]]


def view_of(txn: ReadTxn, pins: ViewPins, p: str) -> np.ndarray:
    """A read-only ndarray on the mapped extent of the array at ``p``, pinned until
    it (and every array derived from it) is garbage-collected."""
    entry, desc = array_entry(txn, p)
    if txn.arrays.encoded(entry):
        txn.require_raw(p, "a zero-copy view")
    if desc.layout == LAYOUT_CHUNKED or desc.flags & FLAG_FRAGMENTED:
        why = "is a chunked dataset" if desc.layout == LAYOUT_CHUNKED else \
            "was changed in place, so its chunks are no longer one extent"
        raise NotContiguousError(
            f"{p} {why}: its data is not one contiguous extent, so it cannot be viewed "
            f"without a copy; use cart.array({p!r})[...] to read it (or rewrite it with "
            "write_array to view it again)")
    nbytes = desc.nbytes
    if nbytes == 0:
        out = np.empty(desc.shape, desc.dtype, order=desc.order)
        out.flags.writeable = False
        return out
    page, npages = txn.arrays.extent(entry, nbytes)
    gen = txn.generation
    alloc = txn.allocator
    pins.add(gen)
    try:
        flat = np.frombuffer(txn.env.file.view.toreadonly(), desc.dtype, count=desc.size,
                             offset=page * 4096)
    except BaseException:
        pins.drop(gen)
        raise
    weakref.finalize(flat, pins.drop, gen)
    if alloc is not None and (kb.count_used(alloc.fresh, page, npages)
                              or alloc.holds(page, npages)):
        alloc.hold(page, npages, gen + 1, flat)
    return flat.reshape(desc.shape, order=desc.order)



def mapped_whole(txn: ReadTxn, cache: WholeCache, p: str) -> np.ndarray | None:
    """The whole contiguous array at ``p`` as an ndarray over the map (valid only
    inside the current pinned call), or None for other layouts.

    A read-only handle remembers it per generation and mapping, so repeated
    slicing skips the catalog (its pages cannot change within a generation).
    """
    key = (txn.generation, id(txn.env.file.buf))
    hit = cache.get(p) if txn.allocator is None else None
    if hit is not None and hit[0] == key:
        return hit[1]
    entry, desc = array_entry(txn, p)
    whole = None
    if desc.layout == LAYOUT_CONTIGUOUS and not desc.flags & FLAG_FRAGMENTED and desc.nbytes \
            and not txn.arrays.encoded(entry):
        page, _ = txn.arrays.extent(entry, desc.nbytes)
        whole = np.frombuffer(txn.env.file.buf, desc.dtype, count=desc.size, offset=page * 4096)
        whole = whole.reshape(desc.shape, order=desc.order)
    if txn.allocator is None:
        if len(cache) > 256:
            cache.clear()
        cache[p] = (key, whole)
    return whole

