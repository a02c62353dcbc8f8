"""B+tree point lookup over the mapped container, as one numba kernel.

A catalog lookup is the hottest read path: ``stat``, ``exists`` and every
small-file read start with one.  Done in Python it copies each node page out
of the map, checksums it and slices keys out of it; here it is one compiled
call that walks from the root to the leaf directly on the mapped bytes and
returns where the value sits.

Each page is checked once per ``(page, generation)``: its header (own page
number, the generation its parent expects, a node type), its XXH64 checksum
and its offset table.  The kernel remembers ``generation + 1`` in
``verified[page]`` and skips the checks on the next visit, exactly as the
Python node cache trusts a decoded ``(page, generation)``: within the
committed history that pair names one immutable page image (see btree.py).

The kernel never raises.  Anything unexpected — a page out of range, a bad
checksum, an impossible offset table, a generation mismatch, a tree deeper
than ``max_depth`` — returns :data:`FALLBACK`, and the caller repeats the
lookup through the Python path, which produces the precise
``CorruptionError``.  Node layout: FORMAT.md section "B+tree nodes".
"""

from __future__ import annotations

import struct

import numba
import numpy as np

from .checksum import xxh64, xxh64_ref

__all__ = ["FALLBACK", "FOUND", "MISSING", "lookup", "lookup_ref"]

FOUND = 1
MISSING = 0
FALLBACK = -1

_PAGE = 4096
_BODY_END = 4064  # node bytes end here; the page's last 32 bytes are its trailer
_HEADER = 32
_BRANCH = 2
_LEAF = 3

_i64 = numba.types.int64
_u64 = numba.types.uint64
_U8_RO = numba.types.Array(numba.types.uint8, 1, "C", readonly=True)
_U64_RW = numba.types.Array(numba.types.uint64, 1, "C")
_SIG = numba.types.UniTuple(_i64, 3)(_U8_RO, _u64, _u64, _U8_RO, _U64_RW, _i64)

_helper = numba.extending.register_jitable


@_helper
def _u16(buf, i):
    return np.int64(buf[i]) | (np.int64(buf[i + 1]) << 8)


@_helper
def _u32(buf, i):
    return _u16(buf, i) | (_u16(buf, i + 2) << 16)


@_helper
def _u64le(buf, i):
    lo = np.uint64(_u32(buf, i))
    hi = np.uint64(_u32(buf, i + 4))
    return lo | (hi << np.uint64(32))


@_helper
def _compare(buf, start, end, key):
    """Compare ``buf[start:end]`` with ``key`` as byte strings: -1, 0 or 1."""
    n = end - start
    m = key.shape[0]
    k = n if n < m else m
    for i in range(k):
        a = buf[start + i]
        b = key[i]
        if a != b:
            return -1 if a < b else 1
    if n == m:
        return 0
    return -1 if n < m else 1


@_helper
def _sound(buf, off, page, gen):
    """True when the page at ``off`` is an intact node written at ``gen``."""
    if _u64le(buf, off + 8) != page or _u64le(buf, off + 16) != gen:
        return False
    typ = _u16(buf, off + 24)
    count = _u32(buf, off + 28)
    if typ == _LEAF:
        first = _HEADER + 2 * (2 * count + 1)
        table = off + _HEADER
        entries = 2 * count + 1
    elif typ == _BRANCH:
        if count < 1:
            return False
        first = _HEADER + 18 * count
        table = off + _HEADER + 16 * count
        entries = count
    else:
        return False
    if first > _BODY_END or _u16(buf, table) != first:
        return False
    prev = first
    for i in range(1, entries):
        cur = _u16(buf, table + 2 * i)
        if cur < prev or cur > _BODY_END:
            return False
        prev = cur
    return xxh64(buf[off + 8 : off + _PAGE], np.uint64(0)) == _u64le(buf, off)


@numba.njit(_SIG, nogil=True, cache=True)
def lookup(buf, root_page, root_gen, key, verified, max_depth):
    """Find ``key`` in the tree rooted at ``(root_page, root_gen)``.

    Parameters
    ----------
    buf : read-only uint8 array over the whole mapped container
    root_page, root_gen : the root's page and generation
    key : the key bytes
    verified : uint64 per page; ``generation + 1`` of pages already checked
    max_depth : levels to descend at most (a cycle returns FALLBACK)

    Returns
    -------
    (status, offset, length)
        ``(FOUND, offset in buf, length)`` of the value, ``(MISSING, 0, 0)``,
        or ``(FALLBACK, page, 0)`` naming the page that needs the slow path.
    """
    npages = buf.shape[0] // _PAGE
    page = root_page
    gen = root_gen
    for _ in range(max_depth):
        if (page < np.uint64(3) or page >= np.uint64(npages)
                or page >= np.uint64(verified.shape[0])):
            return FALLBACK, np.int64(page), 0
        p = np.int64(page)
        off = p * _PAGE
        if verified[p] != gen + np.uint64(1):
            if not _sound(buf, off, page, gen):
                return FALLBACK, p, 0
            verified[p] = gen + np.uint64(1)
        count = _u32(buf, off + 28)
        if _u16(buf, off + 24) == _LEAF:
            table = off + _HEADER
            lo = 0
            hi = count
            while lo < hi:
                mid = (lo + hi) >> 1
                start = off + _u16(buf, table + 4 * mid)
                end = off + _u16(buf, table + 4 * mid + 2)
                if _compare(buf, start, end, key) < 0:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < count:
                start = off + _u16(buf, table + 4 * lo)
                end = off + _u16(buf, table + 4 * lo + 2)
                if _compare(buf, start, end, key) == 0:
                    stop = off + _u16(buf, table + 4 * lo + 4)
                    return FOUND, end, stop - end
            return MISSING, 0, 0
        # Branch: child i holds keys k with sep[i-1] <= k < sep[i]; the
        # child to follow is the number of separators <= key.
        table = off + _HEADER + 16 * count
        lo = 0
        hi = count - 1
        while lo < hi:
            mid = (lo + hi) >> 1
            start = off + _u16(buf, table + 2 * mid)
            end = off + _u16(buf, table + 2 * mid + 2)
            if _compare(buf, start, end, key) <= 0:
                lo = mid + 1
            else:
                hi = mid
        ref = off + _HEADER + 16 * lo
        page = _u64le(buf, ref)
        gen = _u64le(buf, ref + 8)
    return FALLBACK, np.int64(page), 0


def lookup_ref(buf: bytes, root_page: int, root_gen: int, key: bytes,
               max_depth: int) -> tuple[int, int, int]:
    """Plain-Python specification of :func:`lookup` (no verified cache)."""
    npages = len(buf) // _PAGE
    page, gen = root_page, root_gen
    for _ in range(max_depth):
        if not 3 <= page < npages:
            return FALLBACK, page, 0
        off = page * _PAGE
        stored, page_no, pgen, typ, _flags, count = struct.unpack_from("<QQQHHI", buf, off)
        if page_no != page or pgen != gen or typ not in (_LEAF, _BRANCH):
            return FALLBACK, page, 0
        if typ == _LEAF:
            offs = struct.unpack_from(f"<{2 * count + 1}H", buf, off + _HEADER)
            first = _HEADER + 2 * len(offs)
        else:
            if count < 1:
                return FALLBACK, page, 0
            offs = struct.unpack_from(f"<{count}H", buf, off + _HEADER + 16 * count)
            first = _HEADER + 18 * count
        if (offs[0] != first or list(offs) != sorted(offs) or offs[-1] > _BODY_END
                or xxh64_ref(buf[off + 8 : off + _PAGE], 0) != stored):
            return FALLBACK, page, 0
        cells = [buf[off + a : off + b] for a, b in zip(offs[:-1], offs[1:])]
        if typ == _LEAF:
            keys = cells[0::2]
            for i, k in enumerate(keys):
                if k == key:
                    return FOUND, off + offs[2 * i + 1], offs[2 * i + 2] - offs[2 * i + 1]
            return MISSING, 0, 0
        child = sum(1 for sep in cells if sep <= key)
        page, gen = struct.unpack_from("<QQ", buf, off + _HEADER + 16 * child)
    return FALLBACK, page, 0
