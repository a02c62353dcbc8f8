"""XXH64 checksums as numba kernels.

Cartridge checksums every page it writes and every chunk it streams, and
verifies those checksums on every read.  That puts the hash on the hot path
of both I/O directions, so it has to run at memory-ish speed, must not hold
the GIL (so readers on several threads can verify pages concurrently), and
has to produce exactly the values that other tools produce, because the
checksums are part of the on-disk format.  The algorithm is therefore the
real XXH64 (Yann Collet's xxHash, 64-bit variant) and the kernels here are
bit-exact with the reference C implementation (and with the ``xxhash`` PyPI
package, which the tests use as an oracle).

Why the kernels are shaped the way they are:

* **Free functions over ndarrays.**  Pages arrive as views: ``np.frombuffer``
  over ``bytes``, slices of a 2-D page array, or numpy views over an
  ``mmap`` opened ``ACCESS_READ``.  All of these are plain contiguous
  ``uint8`` arrays, frequently read-only, and the kernels only ever read
  them; no Python objects cross the boundary, so everything compiles in
  nopython mode and runs with ``nogil=True``.
* **Explicit ``np.uint64`` everywhere.**  Numba types a Python integer
  literal as ``int64``, and ``uint64 op int64`` promotes to ``float64``,
  which would silently destroy the hash.  Every constant and every shift
  count is therefore a module-level ``np.uint64`` (numba freezes those as
  typed constants), and every byte is widened with ``np.uint64(...)`` before
  it is combined.  ``uint64`` multiplication and addition wrap modulo 2**64,
  which is exactly what XXH64 needs.
* **Lanes assembled from bytes.**  XXH64 consumes 8-byte little-endian
  lanes.  Viewing the buffer as ``uint64`` would require alignment and a
  little-endian host; assembling each lane from eight bytes with shifts
  and ors is portable, works for any offset (``pages[i, skip:]`` is usually
  unaligned), and LLVM folds the pattern back into a single unaligned load
  on little-endian targets, so it costs nothing.
* **One explicit signature per kernel.**  The kernels are compiled eagerly
  for read-only C-contiguous ``uint8`` arrays and a ``uint64`` seed.  The
  ``uint64`` seed is what makes every seed in ``[0, 2**64)`` usable from
  Python (lazily compiled, numba would pin Python ints to ``int64`` after
  the first call); writable arrays convert to the read-only type for free,
  so a single compiled body (cached on disk) serves every caller.
* **Batched entry points.**  ``page_checksums`` and ``chunk_checksums`` loop
  over many pages/chunks inside compiled code, so a whole segment is
  checksummed with a single dispatch instead of one Python call per page.
* **Reference twins.**  Each kernel has a ``*_ref`` function written in
  straightforward pure Python (arbitrary-precision ints masked to 64 bits)
  that acts as the executable specification in the tests.  The kernels'
  own ``.py_func`` also runs under plain Python (with numpy scalars; numpy
  may warn about the intentional wrap-around there, which is harmless).
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numba.extending
import numpy as np

__all__ = [
    "chunk_checksums",
    "chunk_checksums_ref",
    "page_checksums",
    "page_checksums_ref",
    "xxh64",
    "xxh64_ref",
]

# --------------------------------------------------------------------------
# Constants (typed, so numba never mixes them with int64)
# --------------------------------------------------------------------------

_P1_INT = 0x9E3779B185EBCA87
_P2_INT = 0xC2B2AE3D27D4EB4F
_P3_INT = 0x165667B19E3779F9
_P4_INT = 0x85EBCA77C2B2AE63
_P5_INT = 0x27D4EB2F165667C5
_MASK64 = 0xFFFFFFFFFFFFFFFF

_P1 = np.uint64(_P1_INT)
_P2 = np.uint64(_P2_INT)
_P3 = np.uint64(_P3_INT)
_P4 = np.uint64(_P4_INT)
_P5 = np.uint64(_P5_INT)
# Seed offsets precomputed with wrap-around (seed + P1 + P2, seed - P1).
_P1P2 = np.uint64((_P1_INT + _P2_INT) & _MASK64)
_NEG_P1 = np.uint64((-_P1_INT) & _MASK64)

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_S1 = np.uint64(1)
_S7 = np.uint64(7)
_S8 = np.uint64(8)
_S11 = np.uint64(11)
_S12 = np.uint64(12)
_S16 = np.uint64(16)
_S18 = np.uint64(18)
_S23 = np.uint64(23)
_S24 = np.uint64(24)
_S27 = np.uint64(27)
_S29 = np.uint64(29)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_S33 = np.uint64(33)
_S40 = np.uint64(40)
_S48 = np.uint64(48)
_S56 = np.uint64(56)
_S64 = np.uint64(64)

# Private helpers are ``register_jitable``: inside a kernel they are compiled
# (and inlined by LLVM); called from a kernel's ``.py_func`` they are the
# plain Python functions, so the uncompiled path stays uncompiled end to end.
_helper = numba.extending.register_jitable

# Explicit signatures for the public checksum kernels, one per kernel.
#
# * The seed is declared ``uint64`` so that every Python int in [0, 2**64)
#   is accepted.  With lazy compilation numba would type a first ``seed=0``
#   as int64, and from then on its dispatcher maps *every* Python int to
#   that specialisation, so a seed >= 2**63 fails with "int too big to
#   convert".
# * Arrays are declared read-only and C-contiguous.  A writable array
#   converts to the read-only type for free at dispatch, so one compiled
#   body serves ``bytes`` buffers, mmap views and ordinary arrays alike
#   (and import-time compilation stays small).  Non-contiguous arrays are
#   rejected with ``TypeError``; pass ``np.ascontiguousarray(x)``.
_u64 = numba.types.uint64
_i64 = numba.types.int64
_U8_1D = numba.types.Array(numba.types.uint8, 1, "C", readonly=True)
_U8_2D = numba.types.Array(numba.types.uint8, 2, "C", readonly=True)
_U64_1D = numba.types.Array(numba.types.uint64, 1, "C")

_XXH64_SIG = _u64(_U8_1D, _u64)
_PAGES_SIG = _U64_1D(_U8_2D, _i64, _u64)
_CHUNKS_SIG = _U64_1D(_U8_1D, _i64, _u64)


# --------------------------------------------------------------------------
# Compiled helpers
# --------------------------------------------------------------------------


@_helper
def _rotl(x, r):
    """Rotate the uint64 ``x`` left by the uint64 ``r`` (0 < r < 64)."""
    return (x << r) | (x >> (_S64 - r))


@_helper
def _read64(d, i):
    """Little-endian uint64 from ``d[i:i+8]`` (any alignment)."""
    return (
        np.uint64(d[i])
        | (np.uint64(d[i + 1]) << _S8)
        | (np.uint64(d[i + 2]) << _S16)
        | (np.uint64(d[i + 3]) << _S24)
        | (np.uint64(d[i + 4]) << _S32)
        | (np.uint64(d[i + 5]) << _S40)
        | (np.uint64(d[i + 6]) << _S48)
        | (np.uint64(d[i + 7]) << _S56)
    )


@_helper
def _read32(d, i):
    """Little-endian uint32 from ``d[i:i+4]``, widened to uint64."""
    return (
        np.uint64(d[i])
        | (np.uint64(d[i + 1]) << _S8)
        | (np.uint64(d[i + 2]) << _S16)
        | (np.uint64(d[i + 3]) << _S24)
    )


@_helper
def _round(acc, lane):
    """XXH64 accumulator round."""
    acc = acc + lane * _P2
    acc = _rotl(acc, _S31)
    return acc * _P1


@_helper
def _merge_round(acc, val):
    """XXH64 merge of one accumulator into the converged hash."""
    acc = acc ^ _round(_U0, val)
    return acc * _P1 + _P4


# --------------------------------------------------------------------------
# XXH64
# --------------------------------------------------------------------------


@numba.njit(_XXH64_SIG, nogil=True, cache=True)
def xxh64(data, seed):
    """XXH64 of a 1-D ``uint8`` array.

    Parameters
    ----------
    data : ndarray of uint8, 1-D, C-contiguous
        Bytes to hash; may be read-only and need not be aligned.
    seed : int or np.uint64
        Seed in ``[0, 2**64)``.

    Returns
    -------
    np.uint64
        The XXH64 digest, identical to ``xxhash.xxh64_intdigest(data, seed)``.
    """
    s = np.uint64(seed)
    n = data.shape[0]
    i = 0
    if n >= 32:
        v1 = s + _P1P2
        v2 = s + _P2
        v3 = s
        v4 = s + _NEG_P1
        limit = n - 32
        while i <= limit:
            v1 = _round(v1, _read64(data, i))
            v2 = _round(v2, _read64(data, i + 8))
            v3 = _round(v3, _read64(data, i + 16))
            v4 = _round(v4, _read64(data, i + 24))
            i += 32
        h = _rotl(v1, _S1) + _rotl(v2, _S7) + _rotl(v3, _S12) + _rotl(v4, _S18)
        h = _merge_round(h, v1)
        h = _merge_round(h, v2)
        h = _merge_round(h, v3)
        h = _merge_round(h, v4)
    else:
        h = s + _P5
    h = h + np.uint64(n)
    while i + 8 <= n:
        h = h ^ _round(_U0, _read64(data, i))
        h = _rotl(h, _S27) * _P1 + _P4
        i += 8
    if i + 4 <= n:
        h = h ^ (_read32(data, i) * _P1)
        h = _rotl(h, _S23) * _P2 + _P3
        i += 4
    while i < n:
        h = h ^ (np.uint64(data[i]) * _P5)
        h = _rotl(h, _S11) * _P1
        i += 1
    h = h ^ (h >> _S33)
    h = h * _P2
    h = h ^ (h >> _S29)
    h = h * _P3
    h = h ^ (h >> _S32)
    return h


def _rotl_ref(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _MASK64


def _round_ref(acc: int, lane: int) -> int:
    acc = (acc + lane * _P2_INT) & _MASK64
    acc = _rotl_ref(acc, 31)
    return (acc * _P1_INT) & _MASK64


def _merge_round_ref(acc: int, val: int) -> int:
    acc ^= _round_ref(0, val)
    return (acc * _P1_INT + _P4_INT) & _MASK64


def xxh64_ref(data: bytes, seed: int) -> int:
    """Pure-Python XXH64, the specification for :func:`xxh64`.

    Parameters
    ----------
    data : bytes
        Bytes to hash (anything ``bytes()`` accepts, e.g. a uint8 ndarray).
    seed : int
        Seed in ``[0, 2**64)``.

    Returns
    -------
    int
        The 64-bit digest.
    """
    data = bytes(data)
    seed &= _MASK64
    n = len(data)
    i = 0
    if n >= 32:
        v1 = (seed + _P1_INT + _P2_INT) & _MASK64
        v2 = (seed + _P2_INT) & _MASK64
        v3 = seed
        v4 = (seed - _P1_INT) & _MASK64
        while i + 32 <= n:
            v1 = _round_ref(v1, int.from_bytes(data[i : i + 8], "little"))
            v2 = _round_ref(v2, int.from_bytes(data[i + 8 : i + 16], "little"))
            v3 = _round_ref(v3, int.from_bytes(data[i + 16 : i + 24], "little"))
            v4 = _round_ref(v4, int.from_bytes(data[i + 24 : i + 32], "little"))
            i += 32
        h = (_rotl_ref(v1, 1) + _rotl_ref(v2, 7) + _rotl_ref(v3, 12) + _rotl_ref(v4, 18)) & _MASK64
        for v in (v1, v2, v3, v4):
            h = _merge_round_ref(h, v)
    else:
        h = (seed + _P5_INT) & _MASK64
    h = (h + n) & _MASK64
    while i + 8 <= n:
        h ^= _round_ref(0, int.from_bytes(data[i : i + 8], "little"))
        h = (_rotl_ref(h, 27) * _P1_INT + _P4_INT) & _MASK64
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i : i + 4], "little") * _P1_INT) & _MASK64
        h = (_rotl_ref(h, 23) * _P2_INT + _P3_INT) & _MASK64
        i += 4
    while i < n:
        h ^= (data[i] * _P5_INT) & _MASK64
        h = (_rotl_ref(h, 11) * _P1_INT) & _MASK64
        i += 1
    h ^= h >> 33
    h = (h * _P2_INT) & _MASK64
    h ^= h >> 29
    h = (h * _P3_INT) & _MASK64
    h ^= h >> 32
    return h


# --------------------------------------------------------------------------
# Batched checksums
# --------------------------------------------------------------------------


@numba.njit(_PAGES_SIG, nogil=True, cache=True)
def page_checksums(pages, skip, seed):
    """XXH64 of every page, ignoring each page's first ``skip`` bytes.

    Parameters
    ----------
    pages : ndarray of uint8, shape (n_pages, page_size), C-contiguous
        The pages; may be read-only.
    skip : int
        Number of leading bytes of each page excluded from its checksum
        (typically the page header holding the checksum itself);
        ``0 <= skip <= page_size``.
    seed : int or np.uint64
        XXH64 seed.

    Returns
    -------
    ndarray of uint64, shape (n_pages,)
        ``out[i] == xxh64(pages[i, skip:], seed)``.

    Raises
    ------
    ValueError
        If ``skip`` is outside ``[0, page_size]``.
    """
    n_pages = pages.shape[0]
    page_size = pages.shape[1]
    if skip < 0 or skip > page_size:
        raise ValueError("skip must be in [0, page_size]")
    out = np.empty(n_pages, dtype=np.uint64)
    for p in range(n_pages):
        out[p] = xxh64(pages[p, skip:], seed)
    return out


def page_checksums_ref(pages: Sequence[bytes] | np.ndarray, skip: int, seed: int) -> list[int]:
    """Pure-Python specification of :func:`page_checksums`.

    Parameters
    ----------
    pages : 2-D uint8 ndarray or sequence of equal-length bytes
        The pages.
    skip : int
        Leading bytes of each page to exclude, ``0 <= skip <= page_size``.
    seed : int
        XXH64 seed.

    Returns
    -------
    list of int
        One digest per page.
    """
    out = []
    for page in pages:
        raw = bytes(page)
        if skip < 0 or skip > len(raw):
            raise ValueError("skip must be in [0, page_size]")
        out.append(xxh64_ref(raw[skip:], seed))
    return out


@numba.njit(_CHUNKS_SIG, nogil=True, cache=True)
def chunk_checksums(data, chunk_size, seed):
    """XXH64 of consecutive ``chunk_size``-byte pieces of ``data``.

    Parameters
    ----------
    data : ndarray of uint8, 1-D, C-contiguous
        The byte stream; may be read-only.
    chunk_size : int
        Length of each piece, ``>= 1``.  The last piece may be shorter.
    seed : int or np.uint64
        XXH64 seed.

    Returns
    -------
    ndarray of uint64, shape (ceil(len(data) / chunk_size),)
        ``out[k] == xxh64(data[k*chunk_size:(k+1)*chunk_size], seed)``;
        empty when ``data`` is empty.

    Raises
    ------
    ValueError
        If ``chunk_size < 1``.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    n = data.shape[0]
    n_chunks = (n + chunk_size - 1) // chunk_size
    out = np.empty(n_chunks, dtype=np.uint64)
    for k in range(n_chunks):
        lo = k * chunk_size
        hi = min(lo + chunk_size, n)
        out[k] = xxh64(data[lo:hi], seed)
    return out


def chunk_checksums_ref(data: bytes, chunk_size: int, seed: int) -> list[int]:
    """Pure-Python specification of :func:`chunk_checksums`.

    Parameters
    ----------
    data : bytes
        The byte stream (anything ``bytes()`` accepts).
    chunk_size : int
        Length of each piece, ``>= 1``.
    seed : int
        XXH64 seed.

    Returns
    -------
    list of int
        One digest per piece; empty for empty ``data``.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    raw = bytes(data)
    return [xxh64_ref(raw[k : k + chunk_size], seed) for k in range(0, len(raw), chunk_size)]
