"""The array descriptor: how an array's dtype, shape and layout are stored.

An array is a file whose catalog entry has the :data:`ENTRY_ARRAY` flag; the
entry's tail (the bytes after the user metadata, where a small plain file keeps
its inline data) is this module's *descriptor*.  Keeping it in the entry means a
``view`` costs one catalog lookup for the shape and dtype, and a rename moves
the descriptor with the entry for free.

The descriptor is a fixed :data:`ARRAY_HEADER`, then the shape (and for chunked
datasets the maximum shape and chunk shape) as little-endian uint64, then the
dtype in the small recursive binary encoding below, the fill value (one element
of the dtype) and the ``attrs`` as UTF-8 JSON.  No pickle: a reader in any
language can rebuild the dtype from FORMAT.md alone.

Dtype encoding (one *dtype record*, recursive):

* ``0x01 len:u1 str``: a scalar dtype given by numpy's ``dtype.str`` (ASCII,
  e.g. ``<f4``, ``>i8``, ``|S10``, ``<U3``, ``<M8[ns]``, ``|b1``, ``|V8``) — the
  first character is the byte order;
* ``0x02 ndim:u1 dims:u4[ndim] base``: a sub-array field type;
* ``0x03 itemsize:u4 aligned:u1 nfields:u2`` then per field
  ``namelen:u2 name titlelen:u2 title offset:u4 dtype-record``: a structured
  dtype (``titlelen`` 0xFFFF: the field has no title).  Names and titles are
  UTF-8.

Every encoded dtype is decoded again before it is accepted, so a dtype that
would not come back identical (object fields, non-string titles, numpy's variable-width
``StringDType``) raises :class:`~cartridge.errors.UnsupportedDtypeError`.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .errors import CorruptionError, UnsupportedDtypeError
from .layout import ENTRY_ARRAY, fields_of

__all__ = ["ENTRY_ARRAY", "ArrayDesc", "decode_desc", "decode_dtype", "encode_dtype"]

ARRAY_VERSION = 1
LAYOUT_CONTIGUOUS = 0
LAYOUT_CHUNKED = 1
#: Descriptor flag: a partial write copied some chunks of a contiguous array
#: elsewhere, so its bytes are no longer one extent and ``view`` must refuse.
FLAG_FRAGMENTED = 1
#: Descriptor flag: ``attrs`` did not fit the entry and live in the attrs blob.
FLAG_ATTRS_EXTERNAL = 2

#: Chunk-record index of the external attrs blob of an array (the last index).
ATTRS_INDEX = (1 << 64) - 1
#: ``maxshape`` value meaning "unlimited" along an axis.
UNLIMITED = (1 << 64) - 1
MAX_NDIM = 32
#: ``titlelen`` of a structured field without a title.
NO_TITLE = 0xFFFF

ARRAY_HEADER = np.dtype(
    [
        ("version", "u1"),  # ARRAY_VERSION
        ("layout", "u1"),  # LAYOUT_*
        ("order", "u1"),  # 0 = C (row-major), 1 = Fortran (contiguous layout only)
        ("flags", "u1"),  # FLAG_*
        ("ndim", "u1"),
        ("reserved", "u1", (3,)),  # 0
        ("dtype_len", "<u2"),  # bytes of the dtype record
        ("fill_len", "<u2"),  # bytes of the fill value (0 = all zero bytes)
        ("attrs_len", "<u4"),  # bytes of inline attrs JSON (0 = none or external)
    ]
)
_HEADER = struct.Struct("<BBBBB3xHHI")
assert _HEADER.size == ARRAY_HEADER.itemsize


# ------------------------------------------------------------------ dtypes
def encode_dtype(dtype: np.dtype) -> bytes:
    """Encode ``dtype``; raises :class:`UnsupportedDtypeError` when it cannot round-trip."""
    try:
        raw = _encode(dtype)
        back = decode_dtype(raw)
    except UnsupportedDtypeError:
        raise
    except (ValueError, TypeError, CorruptionError, struct.error) as exc:
        raise UnsupportedDtypeError(f"dtype {dtype!r} cannot be stored: {exc}") from None
    if back != dtype or back.itemsize != dtype.itemsize:
        raise UnsupportedDtypeError(f"dtype {dtype!r} cannot be stored faithfully")
    return raw


def _encode(dtype: np.dtype) -> bytes:
    if dtype.kind == "T":
        raise UnsupportedDtypeError(
            f"dtype {dtype!r} is a variable-width string; convert it to fixed-width "
            "'U' (np.asarray(a, dtype=str)) or 'S' bytes first")
    if dtype.hasobject:
        raise UnsupportedDtypeError(
            f"dtype {dtype!r} holds Python objects; store fixed-width data "
            "(numbers, 'S'/'U' strings, structured records) instead")
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return (struct.pack("<BB", 2, len(shape)) + struct.pack(f"<{len(shape)}I", *shape)
                + _encode(base))
    if dtype.names is not None:
        out = [struct.pack("<BIBH", 3, dtype.itemsize, bool(dtype.isalignedstruct),
                           len(dtype.names))]
        for name in dtype.names:
            field = fields_of(dtype)[name]
            title = field[2] if len(field) > 2 else None
            if title is not None and not isinstance(title, str):
                raise UnsupportedDtypeError(f"dtype {dtype!r} has a non-str field title")
            b = name.encode("utf-8")
            t = b"" if title is None else title.encode("utf-8")
            out.append(struct.pack("<H", len(b)) + b
                       + struct.pack("<H", NO_TITLE if title is None else len(t)) + t
                       + struct.pack("<I", field[1]))
            out.append(_encode(field[0]))
        return b"".join(out)
    s = dtype.str.encode("ascii")
    return struct.pack("<B", 1) + struct.pack("<B", len(s)) + s


def decode_dtype(raw: bytes) -> np.dtype:
    """Decode a dtype record (the whole of ``raw``)."""
    dtype, pos = _decode(raw, 0)
    if pos != len(raw):
        raise CorruptionError("array dtype record has trailing bytes")
    return dtype


def _decode(raw: bytes, pos: int) -> tuple[np.dtype, int]:
    try:
        tag = raw[pos]
        if tag == 1:
            n = raw[pos + 1]
            s = raw[pos + 2 : pos + 2 + n]
            if len(s) != n:
                raise CorruptionError("array dtype record is truncated")
            return np.dtype(s.decode("ascii")), pos + 2 + n
        if tag == 2:
            ndim = raw[pos + 1]
            shape = struct.unpack_from(f"<{ndim}I", raw, pos + 2)
            base, end = _decode(raw, pos + 2 + 4 * ndim)
            return np.dtype((base, shape)), end
        if tag == 3:
            itemsize, aligned, nfields = struct.unpack_from("<IBH", raw, pos + 1)
            pos += 8
            names: list[str] = []
            titles: list[str | None] = []
            formats: list[np.dtype] = []
            offsets: list[int] = []
            for _ in range(nfields):
                (n,) = struct.unpack_from("<H", raw, pos)
                names.append(raw[pos + 2 : pos + 2 + n].decode("utf-8"))
                pos += 2 + n
                (t,) = struct.unpack_from("<H", raw, pos)
                tlen = 0 if t == NO_TITLE else t
                titles.append(None if t == NO_TITLE else
                              raw[pos + 2 : pos + 2 + tlen].decode("utf-8"))
                (off,) = struct.unpack_from("<I", raw, pos + 2 + tlen)
                offsets.append(off)
                field, pos = _decode(raw, pos + 6 + tlen)
                formats.append(field)
            # Titles that are all None make the same dtype as no titles.
            return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                             "itemsize": itemsize, "titles": titles},
                            align=bool(aligned)), pos
    except (IndexError, struct.error, UnicodeDecodeError, TypeError, ValueError) as exc:
        raise CorruptionError(f"array dtype record is malformed: {exc}") from None
    raise CorruptionError(f"array dtype record has unknown tag {tag}")


# -------------------------------------------------------------- descriptor
@dataclass(frozen=True, slots=True)
class ArrayDesc:
    """A decoded array descriptor."""

    dtype: np.dtype
    """Element type, byte order included."""
    shape: tuple[int, ...]
    """Current shape."""
    order: Literal["C", "F"]
    """``"C"`` or ``"F"``: element order of a contiguous array's bytes."""
    layout: int
    """:data:`LAYOUT_CONTIGUOUS` or :data:`LAYOUT_CHUNKED`."""
    flags: int
    """``FLAG_*`` bits."""
    maxshape: tuple[int | None, ...]
    """Largest shape ``resize`` may reach (None = unlimited)."""
    chunks: tuple[int, ...] | None
    """Chunk shape of a chunked dataset, None for contiguous arrays."""
    fill: bytes
    """One element of ``dtype`` that unwritten data reads as (``b""`` = zeros)."""
    attrs_json: bytes
    """Inline ``attrs`` as UTF-8 JSON (``b""`` = none, or external)."""

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of data."""
        return self.size * self.dtype.itemsize

    @property
    def chunk_shape(self) -> tuple[int, ...]:
        """Chunk shape of a chunked dataset: ``chunks``, which a chunked descriptor
        always has (``decode_desc`` reads it whenever the layout is chunked).
        Raises TypeError for a contiguous array, which has none."""
        if self.chunks is None:
            raise TypeError("a contiguous array has no chunk shape")
        return self.chunks

    @property
    def chunk_nbytes(self) -> int:
        """Bytes of one stored chunk (chunked datasets)."""
        assert self.chunks is not None
        return math.prod(self.chunks) * self.dtype.itemsize

    def fill_array(self) -> np.ndarray:
        """The fill value as a 0-d array of ``dtype``."""
        if not self.fill:
            return np.zeros((), self.dtype)
        return np.frombuffer(self.fill, self.dtype, count=1).reshape(())

    def replace(self, **changes: object) -> ArrayDesc:
        """A copy with some fields changed."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return ArrayDesc(**fields)

    def encode(self) -> bytes:
        """The descriptor bytes (see FORMAT.md)."""
        dt = encode_dtype(self.dtype)
        ndim = len(self.shape)
        out = [_HEADER.pack(ARRAY_VERSION, self.layout, self.order == "F", self.flags, ndim,
                            len(dt), len(self.fill), len(self.attrs_json)),
               struct.pack(f"<{ndim}Q", *self.shape)]
        if self.layout == LAYOUT_CHUNKED:
            out.append(struct.pack(f"<{ndim}Q", *(UNLIMITED if m is None else m
                                                  for m in self.maxshape)))
            assert self.chunks is not None  # a chunked descriptor always has its chunk shape
            out.append(struct.pack(f"<{ndim}Q", *self.chunks))
        out += [dt, self.fill, self.attrs_json]
        return b"".join(out)


def decode_desc(raw: bytes) -> ArrayDesc:
    """Parse descriptor bytes; raises :class:`CorruptionError` when malformed."""
    try:
        version, layout, order, flags, ndim, dlen, flen, alen = _HEADER.unpack_from(raw)
        if version != ARRAY_VERSION or layout > LAYOUT_CHUNKED or ndim > MAX_NDIM:
            raise ValueError(f"version {version}, layout {layout}, ndim {ndim}")
        pos = _HEADER.size
        shape = struct.unpack_from(f"<{ndim}Q", raw, pos)
        pos += 8 * ndim
        maxshape: tuple[int | None, ...] = shape
        chunks = None
        if layout == LAYOUT_CHUNKED:
            ms = struct.unpack_from(f"<{ndim}Q", raw, pos)
            maxshape = tuple(None if m == UNLIMITED else m for m in ms)
            chunks = struct.unpack_from(f"<{ndim}Q", raw, pos + 8 * ndim)
            pos += 16 * ndim
            if 0 in chunks:
                raise ValueError("zero chunk length")
        if pos + dlen + flen + alen != len(raw):
            raise ValueError("lengths do not add up")
        dtype = decode_dtype(raw[pos : pos + dlen])
        fill = bytes(raw[pos + dlen : pos + dlen + flen])
        if flen not in (0, dtype.itemsize):
            raise ValueError("fill value is not one element")
        attrs = bytes(raw[pos + dlen + flen :])
    except (struct.error, ValueError) as exc:
        raise CorruptionError(f"array descriptor is malformed: {exc}") from None
    return ArrayDesc(dtype, tuple(shape), "F" if order else "C", layout, flags, maxshape,
                     chunks, fill, attrs)


def encode_attrs(attrs: dict[str, Any]) -> bytes:
    """``attrs`` as compact UTF-8 JSON; raises :class:`TypeError` if not JSON-able."""
    if not isinstance(attrs, dict):
        raise TypeError(f"attrs must be a dict, got {type(attrs).__name__}")
    try:
        return json.dumps(attrs, separators=(",", ":"), allow_nan=True,
                          ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"attrs must be JSON-able: {exc}") from None


def decode_attrs(raw: bytes) -> dict[str, Any]:
    """Inverse of :func:`encode_attrs`."""
    if not raw:
        return {}
    try:
        out = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptionError(f"array attrs are malformed: {exc}") from None
    if not isinstance(out, dict):
        raise CorruptionError("array attrs are not a JSON object")
    return out


def chunk_index(coords: tuple[int, ...], ndim: int) -> int:
    """Chunk-record index of grid cell ``coords``: each axis gets ``64 // ndim`` bits,
    axis 0 most significant, so a range scan visits chunks in row-major order."""
    bits = 64 // ndim
    index = 0
    for c in coords:
        index = (index << bits) | c
    return index


def chunk_coords(index: int, ndim: int) -> tuple[int, ...]:
    """Inverse of :func:`chunk_index`."""
    bits = 64 // ndim
    mask = (1 << bits) - 1
    return tuple((index >> (bits * (ndim - 1 - i))) & mask for i in range(ndim))
