"""Free-space bitmap kernels for Cartridge's page allocator.

The allocator tracks which pages of a data file are in use with one bit per
page, packed LSB-first into a 1-D ``uint64`` array ``words``: page ``p`` is
bit ``p & 63`` of ``words[p >> 6]``, and a set bit means the page is USED, a
clear bit means it is FREE.  A bitmap also has a logical length ``nbits``
(the number of pages in the file); bits at positions ``>= nbits`` in the
last word (or in any spare words) are padding: they are never reported as
free and never counted.

Data files grow to tens of millions of pages, so the kernels are built
around two observations about real bitmaps:

* **Most words are uniform.**  A mature file is mostly used (runs of all-ones
  words) with free space clustered in holes (runs of all-zero words).  Every
  scan therefore moves a word at a time and treats a word equal to
  ``0xFFFF_FFFF_FFFF_FFFF`` or ``0`` in O(1), only looking at individual bits
  inside mixed words, and even there it jumps from run boundary to run
  boundary with count-trailing-zeros rather than stepping bit by bit.
  ``set_range`` / ``clear_range`` likewise write whole words in the middle of
  a range and only mask the two edge words.
* **Everything is expressed as maximal free runs.**  A single private
  helper, ``_next_free_run``, returns the next maximal run of free pages
  inside a window ``[pos, end)``; first-fit, best-fit and the fragmentation
  statistics are short loops over that helper, which keeps the delicate
  word-boundary logic in one place.  First-fit passes the requested length
  as an early-exit bound so that a huge hole is not measured to its end.

Numba has no portable popcount/ctz intrinsic that also runs under plain
Python, so both are written with SWAR bit tricks: popcount in the classic
pairwise-sum-and-multiply form (which LLVM pattern-matches into a single
``popcnt`` instruction where available), ctz as the popcount of
``lowest_set_bit - 1``.  Every constant and shift count is an explicit
``np.uint64`` so that numba never mixes ``uint64`` with ``int64`` (which
would promote to ``float64``); positions and counts are ``int64``.  The
helpers are ``register_jitable``, so a kernel's ``.py_func`` runs entirely
as Python on numpy scalars (the popcount multiply wraps there, which numpy
may report as an overflow warning; the result is still exact).

All kernels are free functions over ndarrays and scalars compiled with
``numba.njit(nogil=True, cache=True)``; the query kernels accept read-only
``words`` (e.g. a numpy view of an mmap opened ``ACCESS_READ``).  Each has a
``*_ref`` twin written in straightforward bit-at-a-time Python that serves as
the specification in the tests.  Invalid arguments raise ``ValueError``.
"""

from __future__ import annotations

import numba
import numba.extending
import numpy as np

__all__ = [
    "clear_range",
    "clear_range_ref",
    "count_free",
    "count_free_ref",
    "count_used",
    "count_used_ref",
    "find_best_fit",
    "find_best_fit_ref",
    "find_first_fit",
    "find_first_fit_ref",
    "free_run_stats",
    "free_run_stats_ref",
    "set_range",
    "set_range_ref",
]

_ZERO = np.uint64(0)
_ONE = np.uint64(1)
_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_S1 = np.uint64(1)
_S2 = np.uint64(2)
_S4 = np.uint64(4)
_S56 = np.uint64(56)

_JIT = numba.njit(nogil=True, cache=True)
# Private helpers: compiled (and inlined by LLVM) inside kernels, plain
# Python when reached from a kernel's ``.py_func``.
_helper = numba.extending.register_jitable


# --------------------------------------------------------------------------
# Bit tricks
# --------------------------------------------------------------------------


@_helper
def _popcount(x):
    """Number of set bits in the uint64 ``x`` (SWAR), as int64.

    Written in the canonical pairwise-sum-then-multiply form on purpose:
    LLVM recognises exactly this idiom and emits a single ``popcnt`` on
    CPUs that have it.  (Run as plain Python on numpy scalars the final
    multiply wraps, which numpy may report as an overflow warning.)
    """
    x = x - ((x >> _S1) & _M1)
    x = (x & _M2) + ((x >> _S2) & _M2)
    x = (x + (x >> _S4)) & _M4
    return np.int64((x * _H01) >> _S56)


@_helper
def _ctz(x):
    """Count of trailing zero bits of the uint64 ``x`` (64 for 0), as int64."""
    if x == _ZERO:
        return np.int64(64)
    return _popcount((x & (~x + _ONE)) - _ONE)


@_helper
def _low_mask(k):
    """uint64 with bits ``[0, k)`` set, for ``0 <= k <= 63``."""
    return (_ONE << np.uint64(k)) - _ONE


@_helper
def _check_nbits(words, nbits):
    if nbits < 0 or nbits > words.shape[0] * 64:
        raise ValueError("nbits must be in [0, 64 * len(words)]")


@_helper
def _check_range(words, start, count):
    if start < 0 or count < 0 or start + count > words.shape[0] * 64:
        raise ValueError("range [start, start + count) out of bounds")


@_helper
def _count_used(words, start, count):
    """Popcount of bits ``[start, start + count)`` (arguments pre-checked)."""
    if count == 0:
        return np.int64(0)
    end = start + count
    wa = start >> 6
    wb = (end - 1) >> 6
    lo = _ONES << np.uint64(start & 63)
    hi = _ONES >> np.uint64(63 - ((end - 1) & 63))
    if wa == wb:
        return _popcount(words[wa] & lo & hi)
    total = _popcount(words[wa] & lo) + _popcount(words[wb] & hi)
    for i in range(wa + 1, wb):
        w = words[i]
        if w == _ONES:
            total += 64
        elif w != _ZERO:
            total += _popcount(w)
    return total


@_helper
def _next_free_run(words, pos, end, need):
    """Next maximal free run inside the window ``[pos, end)``.

    Bits outside the window count as used, so a run is clipped at ``pos``
    and ``end``.  Returns ``(start, length)``; ``(end, 0)`` if the window has
    no free bit.  If the run is found to be at least ``need`` long the scan
    stops early and ``length`` is only a lower bound (still ``>= need``).
    Requires ``0 <= pos`` and ``end <= 64 * len(words)``.
    """
    if pos >= end:
        return end, np.int64(0)
    wi = pos >> 6
    w = words[wi] | _low_mask(pos & 63)
    # Phase 1: first free bit (skip all-ones words in O(1) each).
    while w == _ONES:
        wi += 1
        if (wi << 6) >= end:
            return end, np.int64(0)
        w = words[wi]
    s = (wi << 6) + _ctz(~w)
    if s >= end:
        return end, np.int64(0)
    # Phase 2: first used bit after s (skip all-zero words in O(1) each).
    u = w & ~_low_mask(s & 63)
    if u != _ZERO:
        e = (wi << 6) + _ctz(u)
    else:
        while True:
            wi += 1
            base = wi << 6
            if base >= end:
                e = end
                break
            if base - s >= need:
                return s, base - s
            u = words[wi]
            if u != _ZERO:
                e = base + _ctz(u)
                break
    e = min(e, end)
    return s, e - s


# --------------------------------------------------------------------------
# Pure-Python reference helpers
# --------------------------------------------------------------------------


def _bit_ref(words: np.ndarray, p: int) -> int:
    return (int(words[p // 64]) >> (p % 64)) & 1


def _check_range_ref(words: np.ndarray, start: int, count: int) -> None:
    if start < 0 or count < 0 or start + count > len(words) * 64:
        raise ValueError("range [start, start + count) out of bounds")


def _check_nbits_ref(words: np.ndarray, nbits: int) -> None:
    if nbits < 0 or nbits > len(words) * 64:
        raise ValueError("nbits must be in [0, 64 * len(words)]")


def _free_runs_ref(words: np.ndarray, nbits: int) -> list[tuple[int, int]]:
    """All maximal free runs ``(start, length)`` below ``nbits``, in order."""
    runs = []
    p = 0
    while p < nbits:
        if _bit_ref(words, p) == 0:
            q = p
            while q < nbits and _bit_ref(words, q) == 0:
                q += 1
            runs.append((p, q - p))
            p = q
        else:
            p += 1
    return runs


# --------------------------------------------------------------------------
# Mutation
# --------------------------------------------------------------------------


@_JIT
def set_range(words, start, count):
    """Mark pages ``[start, start + count)`` used.

    Parameters
    ----------
    words : ndarray of uint64, 1-D, writable
        The bitmap; modified in place.
    start, count : int
        First page and number of pages; ``count == 0`` is a no-op.

    Raises
    ------
    ValueError
        If the range is negative or extends past ``64 * len(words)``.
    """
    start = np.int64(start)
    count = np.int64(count)
    _check_range(words, start, count)
    if count == 0:
        return
    end = start + count
    wa = start >> 6
    wb = (end - 1) >> 6
    lo = _ONES << np.uint64(start & 63)
    hi = _ONES >> np.uint64(63 - ((end - 1) & 63))
    if wa == wb:
        words[wa] |= lo & hi
        return
    words[wa] |= lo
    for i in range(wa + 1, wb):
        words[i] = _ONES
    words[wb] |= hi


def set_range_ref(words: np.ndarray, start: int, count: int) -> None:
    """Bit-at-a-time specification of :func:`set_range` (mutates ``words``)."""
    _check_range_ref(words, start, count)
    for p in range(start, start + count):
        words[p // 64] = np.uint64(int(words[p // 64]) | (1 << (p % 64)))


@_JIT
def clear_range(words, start, count):
    """Mark pages ``[start, start + count)`` free.

    Parameters
    ----------
    words : ndarray of uint64, 1-D, writable
        The bitmap; modified in place.
    start, count : int
        First page and number of pages; ``count == 0`` is a no-op.

    Raises
    ------
    ValueError
        If the range is negative or extends past ``64 * len(words)``.
    """
    start = np.int64(start)
    count = np.int64(count)
    _check_range(words, start, count)
    if count == 0:
        return
    end = start + count
    wa = start >> 6
    wb = (end - 1) >> 6
    lo = _ONES << np.uint64(start & 63)
    hi = _ONES >> np.uint64(63 - ((end - 1) & 63))
    if wa == wb:
        words[wa] &= ~(lo & hi)
        return
    words[wa] &= ~lo
    for i in range(wa + 1, wb):
        words[i] = _ZERO
    words[wb] &= ~hi


def clear_range_ref(words: np.ndarray, start: int, count: int) -> None:
    """Bit-at-a-time specification of :func:`clear_range` (mutates ``words``)."""
    _check_range_ref(words, start, count)
    for p in range(start, start + count):
        words[p // 64] = np.uint64(int(words[p // 64]) & ~(1 << (p % 64)))


# --------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------


@_JIT
def count_used(words, start, count):
    """Number of used pages in ``[start, start + count)``.

    Parameters
    ----------
    words : ndarray of uint64, 1-D
        The bitmap; may be read-only.
    start, count : int
        The page range; must lie within ``64 * len(words)``.

    Returns
    -------
    int
        Count of set bits in the range.

    Raises
    ------
    ValueError
        If the range is negative or out of bounds.
    """
    start = np.int64(start)
    count = np.int64(count)
    _check_range(words, start, count)
    return _count_used(words, start, count)


def count_used_ref(words: np.ndarray, start: int, count: int) -> int:
    """Bit-at-a-time specification of :func:`count_used`."""
    _check_range_ref(words, start, count)
    return sum(_bit_ref(words, p) for p in range(start, start + count))


@_JIT
def count_free(words, nbits):
    """Number of free pages among the first ``nbits``.

    Parameters
    ----------
    words : ndarray of uint64, 1-D
        The bitmap; may be read-only.
    nbits : int
        Logical number of pages, ``0 <= nbits <= 64 * len(words)``.

    Returns
    -------
    int
        Count of clear bits below ``nbits``.

    Raises
    ------
    ValueError
        If ``nbits`` is out of range.
    """
    nbits = np.int64(nbits)
    _check_nbits(words, nbits)
    return nbits - _count_used(words, np.int64(0), nbits)


def count_free_ref(words: np.ndarray, nbits: int) -> int:
    """Bit-at-a-time specification of :func:`count_free`."""
    _check_nbits_ref(words, nbits)
    return sum(1 - _bit_ref(words, p) for p in range(nbits))


# --------------------------------------------------------------------------
# Searching
# --------------------------------------------------------------------------


@_JIT
def find_first_fit(words, nbits, n, hint):
    """First-fit search with a roving start position.

    Parameters
    ----------
    words : ndarray of uint64, 1-D
        The bitmap; may be read-only.
    nbits : int
        Logical number of pages, ``0 <= nbits <= 64 * len(words)``.
    n : int
        Number of consecutive free pages wanted, ``>= 1``.
    hint : int
        Preferred lowest start, ``>= 0`` (``hint >= nbits`` behaves like 0).

    Returns
    -------
    int
        The smallest ``s >= hint`` such that pages ``[s, s + n)`` are all
        free and ``s + n <= nbits``; failing that, the smallest such ``s``
        overall (search wrapped around to 0; runs never wrap past
        ``nbits``); ``-1`` if no position fits.

    Raises
    ------
    ValueError
        If ``nbits`` is out of range, ``n < 1`` or ``hint < 0``.
    """
    nbits = np.int64(nbits)
    n = np.int64(n)
    hint = np.int64(hint)
    _check_nbits(words, nbits)
    if n < 1:
        raise ValueError("n must be >= 1")
    if hint < 0:
        raise ValueError("hint must be >= 0")
    if n > nbits:
        return np.int64(-1)
    hint = min(hint, nbits)
    pos = hint
    while True:
        s, length = _next_free_run(words, pos, nbits, n)
        if length == 0:
            break
        if length >= n:
            return s
        pos = s + length
    # Wrap around: any fit starting below hint ends before hint + n - 1.
    end = min(nbits, hint + n - 1)
    pos = np.int64(0)
    while True:
        s, length = _next_free_run(words, pos, end, n)
        if length == 0:
            break
        if length >= n:
            return s
        pos = s + length
    return np.int64(-1)


def find_first_fit_ref(words: np.ndarray, nbits: int, n: int, hint: int) -> int:
    """Bit-at-a-time specification of :func:`find_first_fit`."""
    _check_nbits_ref(words, nbits)
    if n < 1:
        raise ValueError("n must be >= 1")
    if hint < 0:
        raise ValueError("hint must be >= 0")
    # free_len[p] = number of consecutive free pages starting at p.
    free_len = [0] * (nbits + 1)
    for p in range(nbits - 1, -1, -1):
        free_len[p] = 0 if _bit_ref(words, p) else free_len[p + 1] + 1
    for s in list(range(hint, nbits)) + list(range(nbits)):
        if free_len[s] >= n:
            return s
    return -1


@_JIT
def find_best_fit(words, nbits, n):
    """Best-fit search over maximal free runs.

    Parameters
    ----------
    words : ndarray of uint64, 1-D
        The bitmap; may be read-only.
    nbits : int
        Logical number of pages, ``0 <= nbits <= 64 * len(words)``.
    n : int
        Number of consecutive free pages wanted, ``>= 1``.

    Returns
    -------
    int
        Start of the shortest maximal free run (below ``nbits``) whose
        length is ``>= n``, the lowest such start on ties; returns as soon
        as a run of exactly ``n`` pages is seen.  ``-1`` if none.

    Raises
    ------
    ValueError
        If ``nbits`` is out of range or ``n < 1``.
    """
    nbits = np.int64(nbits)
    n = np.int64(n)
    _check_nbits(words, nbits)
    if n < 1:
        raise ValueError("n must be >= 1")
    best_start = np.int64(-1)
    best_len = nbits + 1
    if n > nbits:
        return best_start
    # No early exit inside a run: a long run must be measured to its end so
    # that the next search resumes at a used page (runs stay maximal).
    need = nbits + 1
    pos = np.int64(0)
    while True:
        s, length = _next_free_run(words, pos, nbits, need)
        if length == 0:
            break
        if length == n:
            return s
        if length > n and length < best_len:
            best_start = s
            best_len = length
        pos = s + length
    return best_start


def find_best_fit_ref(words: np.ndarray, nbits: int, n: int) -> int:
    """Bit-at-a-time specification of :func:`find_best_fit`."""
    _check_nbits_ref(words, nbits)
    if n < 1:
        raise ValueError("n must be >= 1")
    fits = [(length, start) for start, length in _free_runs_ref(words, nbits) if length >= n]
    if not fits:
        return -1
    return min(fits)[1]


@_JIT
def free_run_stats(words, nbits):
    """Fragmentation statistics of the free space below ``nbits``.

    Parameters
    ----------
    words : ndarray of uint64, 1-D
        The bitmap; may be read-only.
    nbits : int
        Logical number of pages, ``0 <= nbits <= 64 * len(words)``.

    Returns
    -------
    tuple of (int, int, int)
        ``(n_runs, largest_run, total_free)``: the number of maximal free
        runs, the length of the longest one (0 if none) and the total number
        of free pages.

    Raises
    ------
    ValueError
        If ``nbits`` is out of range.
    """
    nbits = np.int64(nbits)
    _check_nbits(words, nbits)
    n_runs = np.int64(0)
    largest = np.int64(0)
    total = np.int64(0)
    pos = np.int64(0)
    need = nbits + 1
    while True:
        s, length = _next_free_run(words, pos, nbits, need)
        if length == 0:
            break
        n_runs += 1
        total += length
        largest = max(largest, length)
        pos = s + length
    return n_runs, largest, total


def free_run_stats_ref(words: np.ndarray, nbits: int) -> tuple[int, int, int]:
    """Bit-at-a-time specification of :func:`free_run_stats`."""
    _check_nbits_ref(words, nbits)
    lengths = [length for _, length in _free_runs_ref(words, nbits)]
    return len(lengths), max(lengths, default=0), sum(lengths)
