"""Per-call cost of the handle API: what the facade (lock, checks, choke point, pins) adds.

Times the calls an application makes most, each many times over one small
container, and prints the median of ``--repeat`` runs in microseconds per
call.  Run it against two checkouts to compare them side by side, e.g. before
and after a refactor of the API layer::

    PYTHONPATH=/path/to/old/checkout python bench/api_overhead.py
    python bench/api_overhead.py

``--hooks N`` adds N no-op hooks to the choke point, to show what each costs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np

import cartridge


def _per_call(fn: Callable[[int], object], n: int, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        runs.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hooks", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "api.cart")
        with cartridge.create(path) as c:
            for i in range(2000):
                c.write(f"/f/{i}", os.urandom(1024))
            c.write("/big", os.urandom(64 << 10))
            c.write_array("/a", np.arange(1 << 20, dtype=np.float64))
        n, rep = args.calls, args.repeat
        print(f"cartridge from {os.path.dirname(cartridge.__file__)}; "
              f"{args.hooks} no-op hook(s); median of {rep} runs, us per call")
        with cartridge.open(path, "r") as r:
            for _ in range(args.hooks):
                r.hooks.add(lambda op: None)
            ds = r.array("/a")
            rows = [
                ("read-only read 1 KiB", lambda i: r.read(f"/f/{i % 2000}")),
                ("read-only read 64 KiB", lambda i: r.read("/big")),
                ("read-only exists", lambda i: r.exists(f"/f/{i % 2000}")),
                ("read-only stat", lambda i: r.stat(f"/f/{i % 2000}")),
                ("read-only Dataset slice", lambda i: ds[i % 1000: i % 1000 + 10]),
            ]
            for name, fn in rows:
                print(f"  {name:28s} {_per_call(fn, n, rep):8.2f}")
        with cartridge.open(path, "r+") as w:
            for _ in range(args.hooks):
                w.hooks.add(lambda op: None)
            rows = [
                ("read-write write 1 KiB", lambda i: w.write(f"/g/{i % 500}", b"x" * 1024)),
                ("read-write read 1 KiB", lambda i: w.read(f"/f/{i % 2000}")),
            ]
            for name, fn in rows:
                print(f"  {name:28s} {_per_call(fn, n // 4, rep):8.2f}")
            w.rollback()


if __name__ == "__main__":
    main()
