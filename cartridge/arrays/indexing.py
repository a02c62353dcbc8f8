"""Index translation: a numpy index on a dataset, as the box of storage it touches.

Why numpy decides what an index means.  A ``Dataset`` must index exactly like
an ndarray of its shape: the same result shape and order, the same exceptions
for a bad key.  Rather than reimplement numpy's rules (basic and advanced
indexing, ``None``, ``Ellipsis``, boolean masks, negative steps), a key is
first applied to a zero-strided dummy of the dataset's shape (one element of
memory, whatever the shape), so numpy itself accepts or rejects it:
``validate_key`` for reads, ``validate_set`` for assignments (which also
checks that the value broadcasts and casts to the dtype).

Why a bounding box.  Only a *valid* key reaches ``normalize_key``, which
turns it into two things: the box ``[lo, hi)`` per axis that contains every
element the key selects, and the same key translated to coordinates relative
to that box.  The storage layer (``gather.py``) copies just the box out of the
container, and numpy applies the translated key to that copy, so the result
is numpy's by construction.  The price: a fancy index that picks a few
far-apart elements reads the whole span between them.
"""

from __future__ import annotations

import operator
from types import EllipsisType
from typing import Any, Literal, TypeAlias, assert_never

import numpy as np

from ..arrayformat import ArrayDesc

__all__ = ["Box", "normalize_key", "validate_key", "validate_set"]

#: ``[(lo, hi)]`` per axis: the half-open bounding box of the elements an index selects.
Box: TypeAlias = list[tuple[int, int]]

#: One parsed item of an index: ``(kind, item, axes of the array it consumes)``.
#: ``keep`` items (None, Ellipsis, a scalar bool) are passed on as they are;
#: ``int`` is an integer, ``slice`` a slice, ``bool`` a boolean mask and
#: ``iarr`` an integer index array.
_Item: TypeAlias = (tuple[Literal["keep"], EllipsisType | bool | np.bool_ | None, int]
                    | tuple[Literal["int"], int, int]
                    | tuple[Literal["slice"], slice, int]
                    | tuple[Literal["bool", "iarr"], np.ndarray, int])


def normalize_key(key: Any, shape: tuple[int, ...]) -> tuple[Box, tuple[Any, ...]]:
    """Bounding box ``[(lo, hi)] per axis`` of a *valid* index, and the index
    translated to coordinates relative to that box (same result shape/order)."""
    ndim = len(shape)
    items = list(key) if isinstance(key, tuple) else [key]
    parsed: list[_Item] = []
    consumed = 0
    for k in items:
        if k is None or k is Ellipsis:
            parsed.append(("keep", k, 0))
        elif isinstance(k, slice):
            parsed.append(("slice", k, 1))
            consumed += 1
        elif isinstance(k, (bool, np.bool_)):
            parsed.append(("keep", k, 0))
        else:
            try:
                parsed.append(("int", operator.index(k), 1))
                consumed += 1
                continue
            except TypeError:
                pass
            arr = np.asarray(k)
            if arr.dtype == np.bool_:
                parsed.append(("bool", arr, arr.ndim))
                consumed += arr.ndim
            else:
                if arr.size == 0 and arr.dtype.kind not in "iu":
                    arr = arr.astype(np.intp)
                parsed.append(("iarr", arr, 1))
                consumed += 1
    box: Box = []
    new: list[Any] = []
    axis = 0
    for item in parsed:
        match item:
            case ("keep", k, _) if k is Ellipsis:
                for _ in range(ndim - consumed):
                    box.append((0, shape[axis]))
                    axis += 1
                new.append(Ellipsis)  # kept: it makes an all-integer index return a 0-d array
                continue
            case ("keep", k, _):
                new.append(k)
            case ("int", i, _):
                v = i + shape[axis] if i < 0 else i
                box.append((v, v + 1))
                new.append(0)
            case ("slice", sl, _):
                r = range(shape[axis])[sl]
                if len(r) == 0:
                    box.append((0, 0))
                    new.append(slice(0, 0))
                else:
                    lo, hi = min(r[0], r[-1]), max(r[0], r[-1]) + 1
                    stop = r[-1] - lo + r.step
                    box.append((lo, hi))
                    new.append(slice(r[0] - lo, None if stop < 0 else stop, r.step))
            case ("iarr", ia, _):
                a = np.where(ia < 0, ia + shape[axis], ia).astype(np.intp)
                if a.size:
                    lo, hi = int(a.min()), int(a.max()) + 1
                else:
                    lo = hi = 0
                box.append((lo, hi))
                new.append(a - lo)
            case ("bool", mask, n):  # boolean mask over n axes
                nz = np.nonzero(mask)
                sub = []
                for d in range(n):
                    if nz[d].size:
                        lo, hi = int(nz[d].min()), int(nz[d].max()) + 1
                    else:
                        lo = hi = 0
                    box.append((lo, hi))
                    sub.append(slice(lo, hi))
                new.append(mask[tuple(sub)])
            case _:
                assert_never(item)
        axis += item[2]
    while axis < ndim:
        box.append((0, shape[axis]))
        new.append(slice(None))
        axis += 1
    return box, tuple(new)


def validate_key(key: Any, shape: tuple[int, ...]) -> None:
    """Raise exactly what numpy raises for ``key`` on an array of ``shape``."""
    np.broadcast_to(np.zeros((), np.uint8), shape)[key]


def validate_set(key: Any, value: Any, desc: ArrayDesc) -> None:
    """Raise exactly what numpy raises for ``a[key] = value``: the assignment is
    done on a writable zero-strided dummy of the dataset's shape and dtype."""
    cell = np.zeros(1, desc.dtype)
    dummy = np.lib.stride_tricks.as_strided(cell, desc.shape, (0,) * len(desc.shape),
                                            writeable=True)
    dummy[key] = value

