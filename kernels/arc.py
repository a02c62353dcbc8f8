"""Adaptive Replacement Cache bookkeeping as numba kernels.

ARC (Megiddo & Modha, FAST 2003) keeps two lists of resident entries, T1
(seen once recently) and T2 (seen at least twice), and two *ghost* lists B1
and B2 holding only the keys of entries recently evicted from T1 and T2.  A
hit on a ghost says which list was evicted too eagerly and moves the
adaptive target ``p`` (the bytes T1 should get): a B1 hit grows it, a B2 hit
shrinks it.  A long scan touches each key once, so it flows through T1 and
B1 without flushing the frequently used entries in T2; that is why ARC beats
LRU on a hot set mixed with scans.

This version is bounded in **bytes**, not entries, because decoded chunks
differ in size (the last chunk of a file is short): the resident lists hold
at most ``c`` bytes and the four lists together at most ``2c``; the ``p``
adjustments of the paper (``max(1, |B2|/|B1|)``) are scaled by the size of
the entry asked for.  With equal sizes it is the paper's algorithm.

State, all numpy arrays so the kernels compile in nopython mode:

* ``nodes``: int64 ``[N, 5]``: key, size, list (0 free, 1 T1, 2 T2, 3 B1,
  4 B2), prev, next (node indices, -1 = none);
* ``lists``: int64 ``[5, 4]``: per list the LRU end, the MRU end, bytes, count;
* ``table``: int64 ``[M]`` (M a power of two >= 2N): open-addressing hash of
  key -> node index, -1 empty, linear probing with backward-shift deletion;
* ``scal``: int64 ``[3]``: ``p``, ``c``, number of free nodes; ``freel`` the
  free node stack.

:func:`arc_access` is the only entry point the cache calls; it returns
``hit + 2 * number of evicted resident keys`` and writes those keys into
``evicted`` so the caller can drop their data.  :class:`ArcRef` is the
plain-Python reference with identical decisions, used by the tests.
"""

from __future__ import annotations

from collections import OrderedDict

import numba as nb
import numpy as np

FREE, T1, T2, B1, B2 = 0, 1, 2, 3, 4
_KEY, _SIZE, _WHERE, _PREV, _NEXT = 0, 1, 2, 3, 4
_LRU, _MRU, _BYTES, _COUNT = 0, 1, 2, 3
_P, _C, _NFREE = 0, 1, 2
_MULT = np.uint64(0x9E3779B97F4A7C15)


def new_state(capacity: int, max_entries: int) -> tuple[np.ndarray, ...]:
    """Fresh ``(nodes, lists, table, freel, scal)`` for a cache of ``capacity`` bytes."""
    n = max(4, int(max_entries))
    m = 1
    while m < 2 * n:
        m *= 2
    nodes = np.full((n, 5), -1, np.int64)
    nodes[:, _WHERE] = FREE
    lists = np.zeros((5, 4), np.int64)
    lists[:, _LRU] = -1
    lists[:, _MRU] = -1
    table = np.full(m, -1, np.int64)
    freel = np.arange(n - 1, -1, -1, dtype=np.int64)
    scal = np.array([0, int(capacity), n], np.int64)
    return nodes, lists, table, freel, scal


@nb.njit(cache=True, nogil=True)
def _slot(key, mask):
    return np.int64((np.uint64(key) * _MULT) >> np.uint64(20)) & mask


@nb.njit(cache=True, nogil=True)
def _find(nodes, table, key):
    mask = table.size - 1
    i = _slot(key, mask)
    while True:
        j = table[i]
        if j < 0:
            return -1
        if nodes[j, _KEY] == key:
            return j
        i = (i + 1) & mask


@nb.njit(cache=True, nogil=True)
def _tinsert(nodes, table, j):
    mask = table.size - 1
    i = _slot(nodes[j, _KEY], mask)
    while table[i] >= 0:
        i = (i + 1) & mask
    table[i] = j


@nb.njit(cache=True, nogil=True)
def _tdelete(nodes, table, key):
    mask = table.size - 1
    i = _slot(key, mask)
    while nodes[table[i], _KEY] != key:
        i = (i + 1) & mask
    table[i] = -1
    k = (i + 1) & mask
    while table[k] >= 0:  # backward shift: refill the hole from the probe chain
        home = _slot(nodes[table[k], _KEY], mask)
        if (k > i and (home <= i or home > k)) or (k < i and home <= i and home > k):
            table[i] = table[k]
            table[k] = -1
            i = k
        k = (k + 1) & mask


@nb.njit(cache=True, nogil=True)
def _unlink(nodes, lists, j):
    w = nodes[j, _WHERE]
    p, n = nodes[j, _PREV], nodes[j, _NEXT]
    if p >= 0:
        nodes[p, _NEXT] = n
    else:
        lists[w, _LRU] = n
    if n >= 0:
        nodes[n, _PREV] = p
    else:
        lists[w, _MRU] = p
    lists[w, _BYTES] -= nodes[j, _SIZE]
    lists[w, _COUNT] -= 1
    nodes[j, _WHERE] = FREE


@nb.njit(cache=True, nogil=True)
def _push(nodes, lists, w, j):
    m = lists[w, _MRU]
    nodes[j, _PREV] = m
    nodes[j, _NEXT] = -1
    if m >= 0:
        nodes[m, _NEXT] = j
    else:
        lists[w, _LRU] = j
    lists[w, _MRU] = j
    lists[w, _BYTES] += nodes[j, _SIZE]
    lists[w, _COUNT] += 1
    nodes[j, _WHERE] = w


@nb.njit(cache=True, nogil=True)
def _drop(nodes, lists, table, freel, scal, j):
    """Forget node ``j`` entirely (a ghost falling off, or an unghosted eviction)."""
    _unlink(nodes, lists, j)
    _tdelete(nodes, table, nodes[j, _KEY])
    freel[scal[_NFREE]] = j
    scal[_NFREE] += 1


@nb.njit(cache=True, nogil=True)
def _replace(nodes, lists, scal, in_b2, evicted, nev):
    """Move the LRU of T1 (to B1) or of T2 (to B2), per ARC's REPLACE."""
    t1b = lists[T1, _BYTES]
    if lists[T1, _COUNT] > 0 and (t1b > scal[_P] or (in_b2 and t1b == scal[_P])
                                  or lists[T2, _COUNT] == 0):
        j = lists[T1, _LRU]
        _unlink(nodes, lists, j)
        _push(nodes, lists, B1, j)
    else:
        j = lists[T2, _LRU]
        _unlink(nodes, lists, j)
        _push(nodes, lists, B2, j)
    evicted[nev] = nodes[j, _KEY]
    return nev + 1


@nb.njit(cache=True, nogil=True)
def arc_access(nodes, lists, table, freel, scal, key, size, evicted):
    """Record an access to ``key`` (``size`` bytes); see the module docstring.

    Returns ``hit + 2 * n`` where ``evicted[:n]`` are the keys that stopped
    being resident.  An entry larger than the capacity is never admitted.
    """
    c = scal[_C]
    nev = 0
    j = _find(nodes, table, key)
    if j >= 0 and (nodes[j, _WHERE] == T1 or nodes[j, _WHERE] == T2):
        _unlink(nodes, lists, j)  # a key's size is fixed while it is resident
        _push(nodes, lists, T2, j)
        return 1
    if size > c:
        if j >= 0:
            _drop(nodes, lists, table, freel, scal, j)
        return 0
    if j >= 0:
        w = nodes[j, _WHERE]
        b1, b2 = lists[B1, _BYTES], lists[B2, _BYTES]
        if w == B1:
            d = size if b1 >= b2 else size * b2 // b1
            scal[_P] = min(c, scal[_P] + d)
        else:
            d = size if b2 >= b1 else size * b1 // b2
            scal[_P] = max(0, scal[_P] - d)
        _unlink(nodes, lists, j)
        while lists[T1, _BYTES] + lists[T2, _BYTES] + size > c:
            nev = _replace(nodes, lists, scal, w == B2, evicted, nev)
        nodes[j, _SIZE] = size
        _push(nodes, lists, T2, j)
        return 2 * nev
    # a miss everywhere (case IV)
    if lists[T1, _BYTES] + lists[B1, _BYTES] + size > c:
        while lists[B1, _COUNT] > 0 and lists[T1, _BYTES] + lists[B1, _BYTES] + size > c:
            _drop(nodes, lists, table, freel, scal, lists[B1, _LRU])
        if lists[T1, _BYTES] + size > c:
            while lists[T1, _COUNT] > 0 and lists[T1, _BYTES] + size > c:
                k = lists[T1, _LRU]
                evicted[nev] = nodes[k, _KEY]
                nev += 1
                _drop(nodes, lists, table, freel, scal, k)
    total = lists[T1, _BYTES] + lists[T2, _BYTES] + lists[B1, _BYTES] + lists[B2, _BYTES]
    while lists[B2, _COUNT] > 0 and total + size > 2 * c:
        total -= lists[B2, _BYTES]
        _drop(nodes, lists, table, freel, scal, lists[B2, _LRU])
        total += lists[B2, _BYTES]
    while lists[T1, _BYTES] + lists[T2, _BYTES] + size > c:
        nev = _replace(nodes, lists, scal, False, evicted, nev)
    while scal[_NFREE] == 0:  # node pool exhausted: forget the oldest ghost
        if lists[B1, _COUNT] > 0:
            _drop(nodes, lists, table, freel, scal, lists[B1, _LRU])
        elif lists[B2, _COUNT] > 0:
            _drop(nodes, lists, table, freel, scal, lists[B2, _LRU])
        else:
            nev = _replace(nodes, lists, scal, False, evicted, nev)
    scal[_NFREE] -= 1
    j = freel[scal[_NFREE]]
    nodes[j, _KEY] = key
    nodes[j, _SIZE] = size
    _tinsert(nodes, table, j)
    _push(nodes, lists, T1, j)
    return 2 * nev


def list_keys(nodes: np.ndarray, lists: np.ndarray, which: int) -> list[int]:
    """Keys of one list from LRU to MRU (for tests and introspection)."""
    out = []
    j = int(lists[which, _LRU])
    while j >= 0:
        out.append(int(nodes[j, _KEY]))
        j = int(nodes[j, _NEXT])
    return out


class ArcRef:
    """Plain-Python ARC with exactly :func:`arc_access`'s decisions (the reference)."""

    def __init__(self, capacity: int, max_entries: int) -> None:
        self.c = capacity
        self.n = max(4, int(max_entries))
        self.p = 0
        # key -> size, LRU first
        self.lists: dict[int, OrderedDict[int, int]] = {w: OrderedDict() for w in (T1, T2, B1, B2)}

    def nbytes(self, w: int) -> int:
        """Bytes in list ``w``."""
        return sum(self.lists[w].values())

    def _where(self, key: int) -> int:
        for w, od in self.lists.items():
            if key in od:
                return w
        return FREE

    def _replace(self, in_b2: bool, evicted: list[int]) -> None:
        t1b = self.nbytes(T1)
        if self.lists[T1] and (t1b > self.p or (in_b2 and t1b == self.p) or not self.lists[T2]):
            k, s = self.lists[T1].popitem(last=False)
            self.lists[B1][k] = s
        else:
            k, s = self.lists[T2].popitem(last=False)
            self.lists[B2][k] = s
        evicted.append(k)

    def access(self, key: int, size: int) -> tuple[bool, list[int]]:
        """Record an access; return ``(hit, evicted resident keys)``."""
        c, L = self.c, self.lists
        ev: list[int] = []
        w = self._where(key)
        if w in (T1, T2):
            L[T2][key] = L[w].pop(key)
            return True, ev
        if size > c:
            if w != FREE:
                del L[w][key]
            return False, ev
        if w in (B1, B2):
            b1, b2 = self.nbytes(B1), self.nbytes(B2)
            if w == B1:
                self.p = min(c, self.p + (size if b1 >= b2 else size * b2 // b1))
            else:
                self.p = max(0, self.p - (size if b2 >= b1 else size * b1 // b2))
            del L[w][key]
            while self.nbytes(T1) + self.nbytes(T2) + size > c:
                self._replace(w == B2, ev)
            L[T2][key] = size
            return False, ev
        if self.nbytes(T1) + self.nbytes(B1) + size > c:
            while L[B1] and self.nbytes(T1) + self.nbytes(B1) + size > c:
                L[B1].popitem(last=False)
            while L[T1] and self.nbytes(T1) + size > c:
                ev.append(L[T1].popitem(last=False)[0])
        while L[B2] and sum(self.nbytes(x) for x in L) + size > 2 * c:
            L[B2].popitem(last=False)
        while self.nbytes(T1) + self.nbytes(T2) + size > c:
            self._replace(False, ev)
        while sum(len(od) for od in L.values()) >= self.n:
            if L[B1]:
                L[B1].popitem(last=False)
            elif L[B2]:
                L[B2].popitem(last=False)
            else:
                self._replace(False, ev)
        L[T1][key] = size
        return False, ev
