"""Shapes, chunk grids and dtypes of new arrays: what the container can store.

Why these checks live apart.  ``write_array``, ``create_dataset`` and
``resize`` all turn user input (an int or a tuple for a shape, ``True`` for
"pick chunks for me", any numpy dtype) into the fixed fields of an array
descriptor (``arrayformat.py``).  The descriptor format has limits of its own
that numpy does not: a dtype must have a size (the bytes are stored, not
Python objects), and a chunk's grid coordinates are packed into one 64-bit
chunk index, ``64 // ndim`` bits per axis.  Checking them in one place, before
any page is allocated, keeps every caller's error the same and keeps a bad
call from leaving half an array behind.

Why about 256 KiB per automatic chunk.  Large enough that reading a whole
dataset is a few big sequential copies, small enough that a random slice
copies (and, when compressed, decodes) little more than it asked for.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from ..arrayformat import ArrayDesc, encode_dtype
from ..errors import UnsupportedDtypeError

__all__ = ["AUTO_CHUNK_BYTES", "as_shape", "check_dtype", "check_grid", "guess_chunks"]

#: Chunk size ``chunks=True`` aims at: large enough for fast sequential reads,
#: small enough that a random slice copies little.
AUTO_CHUNK_BYTES = 256 * 1024


def guess_chunks(shape: tuple[int, ...], maxshape: tuple[int | None, ...],
                  itemsize: int) -> tuple[int, ...]:
    """An automatic chunk shape (``chunks=True``): about AUTO_CHUNK_BYTES per chunk."""
    chunks = [max(s, 1) if m is not None else max(s, 1024) for s, m in zip(shape, maxshape)]
    while math.prod(chunks) * itemsize > AUTO_CHUNK_BYTES and max(chunks) > 1:
        ax = chunks.index(max(chunks))
        chunks[ax] = -(-chunks[ax] // 2)
    return tuple(chunks)


def check_grid(desc: ArrayDesc, shape: tuple[int, ...], path: str) -> None:
    """Chunk coordinates must fit their ``64 // ndim`` bits of the chunk index."""
    bits = 64 // len(shape)
    for s, c in zip(shape, desc.chunk_shape):
        if -(-s // c) >= (1 << bits) - 1:
            raise ValueError(f"{path}: {-(-s // c)} chunks along an axis exceed the "
                             f"{bits}-bit grid of a {len(shape)}-d dataset; use larger chunks")


def as_shape(shape: Any) -> tuple[int, ...]:
    """A shape as a tuple of non-negative ints (an int is a 1-d shape)."""
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    out = tuple(operator.index(s) for s in shape)
    if any(s < 0 for s in out):
        raise ValueError(f"negative dimensions are not allowed: {out}")
    return out


def check_dtype(dtype: np.dtype) -> bytes:
    """The descriptor encoding of ``dtype``; raises for dtypes that cannot be stored."""
    if dtype.itemsize == 0:
        raise UnsupportedDtypeError(f"dtype {dtype!r} has no size; give strings a width")
    return encode_dtype(dtype)

