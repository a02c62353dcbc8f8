"""The ARC kernel against its plain-Python reference, and ARC against LRU.

Scale (``CARTRIDGE_TEST_SCALE``): 4000 accesses per random trace.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from cartridge.kernels.arc import B1, B2, T1, T2, ArcRef, arc_access, list_keys, new_state
from cartridge.testing import scaled

STEPS = scaled(4000)


class Kernel:
    """The numba kernel behind the same interface as :class:`ArcRef`."""

    def __init__(self, capacity: int, max_entries: int) -> None:
        self.state = new_state(capacity, max_entries)
        self.ev = np.zeros(max_entries + 8, np.int64)

    def access(self, key: int, size: int) -> tuple[bool, list[int]]:
        r = int(arc_access(*self.state, key, size, self.ev))
        return bool(r & 1), self.ev[: r >> 1].tolist()

    def lists(self) -> dict[int, list[int]]:
        nodes, lists = self.state[0], self.state[1]
        return {w: list_keys(nodes, lists, w) for w in (T1, T2, B1, B2)}


def trace(rng: np.random.Generator, kind: str, n: int) -> list[tuple[int, int]]:
    if kind == "uniform":
        keys = rng.integers(0, 60, n)
    elif kind == "zipf":
        keys = np.minimum(rng.zipf(1.3, n), 500)
    else:  # hot set with scans
        keys = np.where(rng.random(n) < 0.6, rng.integers(0, 15, n), rng.integers(100, 100000, n))
    sizes = 1 + keys % 4 if kind != "uniform" else np.ones(n, np.int64)  # fixed per key
    return [(int(k), int(s)) for k, s in zip(keys, sizes)]


@pytest.mark.parametrize("kind", ["uniform", "zipf", "scan"])
@pytest.mark.parametrize("capacity,max_entries", [(16, 64), (40, 30), (7, 8)])
def test_kernel_matches_reference_step_by_step(kind, capacity, max_entries):
    rng = np.random.default_rng(hash((kind, capacity)) & 0xFFFF)
    ker, ref = Kernel(capacity, max_entries), ArcRef(capacity, max_entries)
    for step, (key, size) in enumerate(trace(rng, kind, STEPS)):
        got, want = ker.access(key, size), ref.access(key, size)
        assert got == want, f"step {step}: access({key}, {size})"
        assert int(ker.state[4][0]) == ref.p, f"step {step}: p"
        lists = ker.lists()
        for w in (T1, T2, B1, B2):
            assert lists[w] == list(ref.lists[w]), f"step {step}: list {w}"
        used = sum(ref.nbytes(w) for w in (T1, T2))
        assert used <= capacity and used + ref.nbytes(B1) + ref.nbytes(B2) <= 2 * capacity


def test_oversized_entry_is_not_admitted():
    ker = Kernel(10, 16)
    assert ker.access(1, 11) == (False, [])
    assert ker.lists() == {T1: [], T2: [], B1: [], B2: []}


def test_table_survives_heavy_churn():
    """Many inserts and deletions through the hash table (backward-shift deletion)."""
    ker, ref = Kernel(50, 200), ArcRef(50, 200)
    rng = np.random.default_rng(5)
    for key in rng.integers(0, 1 << 40, 20000):
        assert ker.access(int(key), 1) == ref.access(int(key), 1)


def lru_hits(trace_: list[tuple[int, int]], capacity: int) -> int:
    od: OrderedDict[int, int] = OrderedDict()
    hits = used = 0
    for key, size in trace_:
        if key in od:
            hits += 1
            od.move_to_end(key)
            continue
        od[key] = size
        used += size
        while used > capacity:
            used -= od.popitem(last=False)[1]
    return hits


def test_arc_beats_lru_on_hot_set_with_scan(capsys):
    """A hot set of 40 keys interleaved with one long scan: ARC keeps the hot set."""
    rng = np.random.default_rng(3)
    hot = [(int(k), 1) for k in rng.integers(0, 40, 4000)]
    scan = [(1000 + i, 1) for i in range(4000)]
    mixed: list[tuple[int, int]] = []
    for i in range(4000):  # hot accesses with scan keys interleaved 1:1
        mixed += [hot[i], scan[i]]
    mixed = hot[:2000] + mixed
    capacity = 64
    ker = Kernel(capacity, 256)
    arc = sum(ker.access(k, s)[0] for k, s in mixed)
    lru = lru_hits(mixed, capacity)
    with capsys.disabled():
        print(f"\nhot set + scan, {len(mixed)} accesses, capacity {capacity}: "
              f"ARC hit ratio {arc / len(mixed):.3f}, LRU {lru / len(mixed):.3f}")
    assert arc > lru * 1.2
