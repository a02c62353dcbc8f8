"""Scale: a catalog of 1,000,000 entries, built, committed, reopened and queried.

Checks that lookups stay logarithmic (nodes read per lookup bounded by the
tree depth) and that listings return exactly what was written.
"""

from __future__ import annotations

import random

import pytest

import cartridge

N = 1_000_000


@pytest.mark.slow
def test_million_entries(tmp_path):
    path = tmp_path / "scale.cart"
    dirs = 100
    with cartridge.create(path) as cart:
        for i in range(N):
            cart.write(f"/d{i % dirs:03d}/f{i:07d}", i.to_bytes(8, "little") * 2)
    with cartridge.open(path, "r") as cart:
        info = cart.info()
        assert info.file_count == N and info.dir_count == dirs
        depth = int(cart.txn.meta["tree_depth"])
        assert depth <= 5
        rng = random.Random(7)
        reads_before = cart.env.nodes.reads
        sample = rng.sample(range(N), 2000)
        for i in sample:
            assert cart.read(f"/d{i % dirs:03d}/f{i:07d}") == i.to_bytes(8, "little") * 2
        # O(log n): at most one node per level per lookup, even with a cold cache
        assert cart.env.nodes.reads - reads_before <= len(sample) * (depth + 1)
        assert not cart.exists("/d000/f9999999x")
        listing = cart.list("/d007")
        assert listing == sorted(f"/d007/f{i:07d}" for i in range(7, N, dirs))
        everything = cart.list("/", recursive=True)
        assert len(everything) == N + dirs
        assert everything == sorted(everything)
        assert cart.list("/d042/f00000") == [f"/d042/f{i:07d}" for i in range(42, 100000, dirs)
                                            if f"{i:07d}".startswith("00000")]
