"""Decoded array descriptors, remembered by their bytes.

Why a cache.  An array's catalog entry carries its descriptor (dtype, shape,
order, layout, chunks, fill value, attrs) encoded inline (``arrayformat.py``).
Every view, slice and ``Dataset`` property starts by decoding it, and parsing
a dtype back from its encoding costs far more than the catalog lookup that
found the entry; a read-only handle slicing in a loop would spend most of its
time there.  Descriptors are immutable values and the same bytes always
decode to the same descriptor, so the cache is keyed by the raw bytes: it
needs no invalidation when an array changes (its new bytes are a new key) and
is safe to share by every handle of the process.

Why cleared wholesale.  Clearing at 1,024 entries bounds the memory at a few
hundred KiB with no bookkeeping on the hot path; a workload touching more
arrays than that in a loop decodes again, which is what it would do without
the cache.
"""

from __future__ import annotations

from ..arrayformat import ArrayDesc, decode_desc
from ..catalog import Entry
from ..errors import NotAnArrayError
from ..layout import ENTRY_ARRAY
from ..txn import ReadTxn

__all__ = ["array_entry", "decode_cached"]

_DESC_CACHE: dict[bytes, ArrayDesc] = {}


def decode_cached(raw: bytes) -> ArrayDesc:
    """Decode a descriptor, remembering recent ones (views and slices are hot)."""
    desc = _DESC_CACHE.get(raw)
    if desc is None:
        if len(_DESC_CACHE) > 1024:
            _DESC_CACHE.clear()
        desc = _DESC_CACHE[raw] = decode_desc(raw)
    return desc



def array_entry(txn: ReadTxn, p: str) -> tuple[Entry, ArrayDesc]:
    """The entry and descriptor of the array at ``p`` in ``txn``.

    NotFoundError or IsADirectoryError when there is no file, NotAnArrayError
    when it is a plain file.
    """
    entry = txn.file_entry(p)
    if not entry.flags & ENTRY_ARRAY:
        raise NotAnArrayError(f"{p} is a plain file, not an array; read it with "
                              "cart.read() or store arrays with cart.write_array()", p)
    return entry, decode_cached(entry.inline)
