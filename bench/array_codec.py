"""Arrays over compression and encryption: cost against a raw (viewable) array.

One 64 MiB float64 array (a cumulative sum of small integers: compressible)
is written with ``write_array(..., compression=...)`` into a plain and into
an encrypted container, then read back from a reopened container with the
decoded-chunk cache off: the whole array (``ds[...]``) and 200 random
100-element slices (each decodes one or two 64 KiB chunks).  Figures are
medians of ``--repeat`` runs; "x raw" is the time relative to the raw array.

Usage::

    python bench/array_codec.py [--repeat 5] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import cartridge

CASES = [("raw", {}, None), ("lz4", {}, "lz4"), ("zstd", {}, "zstd"),
         ("encrypted", {"password": "pw"}, None), ("encrypted+zstd", {"password": "pw"}, "zstd")]


def measure(directory: str, repeat: int) -> list[tuple]:
    """``(label, stored/logical, write s, full read s, slice s)`` per case."""
    a = np.cumsum(np.random.default_rng(0).integers(0, 3, 8_000_000)).astype("<f8")
    starts = np.random.default_rng(1).integers(0, a.size - 100, 200)
    rows = []
    for label, secret, codec in CASES:
        path = os.path.join(directory, f"array_codec_{label}.cart")
        writes, reads, slices = [], [], []
        for _ in range(repeat):
            with cartridge.create(path, overwrite=True, **secret) as cart:
                t = time.perf_counter()
                cart.write_array("/a", a, compression=codec)
                writes.append(time.perf_counter() - t)
            with cartridge.open(path, "r", cache_size=0, **secret) as cart:
                ds = cart.array("/a")
                stored = cart.stat("/a").stored_size
                t = time.perf_counter()
                whole = ds[...]
                reads.append(time.perf_counter() - t)
                assert np.array_equal(whole, a)
                t = time.perf_counter()
                for s in starts:
                    ds[s : s + 100]
                slices.append((time.perf_counter() - t) / len(starts))
        rows.append((label, stored / a.nbytes, statistics.median(writes),
                     statistics.median(reads), statistics.median(slices)))
        os.remove(path)
    return rows


def main() -> None:
    """Print the table (Markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default="/tmp")
    args = parser.parse_args()
    rows = measure(args.dir, args.repeat)
    raw = rows[0]
    mib = 64
    print("| array, 64 MiB f8 | stored/logical | write MiB/s (x raw) | full read MiB/s "
          "(x raw) | 100-element slice µs (x raw) |")
    print("|---|---|---|---|---|")
    for label, ratio, w, r, s in rows:
        print(f"| {label} | {ratio:.2f} | {mib / w:.0f} ({w / raw[2]:.1f}) | "
              f"{mib / r:.0f} ({r / raw[3]:.1f}) | {s * 1e6:.0f} ({s / raw[4]:.0f}) |")


if __name__ == "__main__":
    main()
