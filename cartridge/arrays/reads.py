"""The read operations of arrays, each run inside one pinned read call.

Why these are plain functions of a transaction.  A read of an array must see
one commit from its first catalog lookup to its last copied byte.  A
transaction is one commit, and the facade (``container.py``) keeps it pinned
for the duration of one call (take the handle lock, pass the choke point,
move a read-only handle to the newest commit, pin it in the reader table,
unpin after).  So each read is written as a function ``f(txn, path, ...)``
that assumes the pin is held, and the service (``service.py``) is what the
facade calls; nothing here pins, locks or refreshes by itself.

Why a slice first tries the map.  A raw contiguous array is already an
ndarray in the mapped file (``views.mapped_whole``), so numpy can index it in
place and only the selected elements are copied out.  Every other layout
(chunked, changed in place, compressed, encrypted) validates the key with
numpy, translates it to the box it touches (``indexing.py``) and gathers that
box from storage (``gather.py``).  Either way the caller gets a new array,
never memory of the map: only ``view`` hands out the map itself, pinned.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..arrayformat import FLAG_ATTRS_EXTERNAL, ArrayDesc, decode_attrs
from ..txn import ReadTxn
from .descriptors import array_entry
from .gather import gather
from .indexing import normalize_key, validate_key
from .views import WholeCache, mapped_whole

__all__ = ["attrs_of", "desc_of", "getitem"]


def desc_of(txn: ReadTxn, p: str) -> ArrayDesc:
    """The descriptor of the array at ``p`` (raises if ``p`` is not an array)."""
    return array_entry(txn, p)[1]


def attrs_of(txn: ReadTxn, p: str) -> dict[str, Any]:
    """The ``attrs`` of the array at ``p``, inline or from its attrs blob."""
    entry, desc = array_entry(txn, p)
    if desc.flags & FLAG_ATTRS_EXTERNAL:
        return decode_attrs(txn.arrays.read_attrs(entry.file_id))
    return decode_attrs(desc.attrs_json)


def getitem(txn: ReadTxn, cache: WholeCache, p: str, key: Any) -> Any:
    """``array[key]`` of the array at ``p``, as a new array (or scalar)."""
    if isinstance(key, str) or (isinstance(key, list) and key
                                and all(isinstance(k, str) for k in key)):
        return getitem(txn, cache, p, ...)[key]  # field names, as numpy
    whole = mapped_whole(txn, cache, p)
    if whole is not None:
        out = whole[key]
        if isinstance(out, np.ndarray) and np.may_share_memory(out, whole):
            out = out.copy()
        return out
    entry, desc = array_entry(txn, p)
    validate_key(key, desc.shape)
    box, new = normalize_key(key, desc.shape)
    return gather(txn, entry, desc, box)[new]
