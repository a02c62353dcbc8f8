"""Median lookup time of tiny files whose catalog leaves were read before.

``compare_core.py`` times random reads of keys it did not warm up with, so
for a million entries most lookups decode a B+tree leaf from the page cache.
This script measures the other meaning of "warm": the same random sample of
keys read again, with the decoded-node cache sized to hold the tree.

    python bench/lookup_hot.py --entries 1000000 --cache-nodes 65536
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time

import cartridge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--cache-nodes", type=int, default=65536)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "lookup.cart")
        names = [f"/d{i // 1000:04d}/f{i:07d}" for i in range(args.entries)]
        start = time.perf_counter()
        with cartridge.create(path) as cart:
            for name in names:
                cart.write(name, b"0123456789abcdef")
        print(f"built {args.entries:,} entries in {time.perf_counter() - start:.1f} s")
        with cartridge.open(path, "r", cache_nodes=args.cache_nodes) as cart:
            sample = random.Random(1).sample(names, args.sample)
            for name in sample:
                cart.read(name)
            medians = []
            for _ in range(args.repeats):
                times = []
                for name in sample:
                    t0 = time.perf_counter()
                    cart.read(name)
                    times.append(time.perf_counter() - t0)
                medians.append(statistics.median(times) * 1e6)
        print("median lookup per repeat (us):", " ".join(f"{m:.1f}" for m in medians))
        print(f"median of medians: {statistics.median(medians):.1f} us")


if __name__ == "__main__":
    main()
