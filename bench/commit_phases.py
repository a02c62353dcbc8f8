"""Where a durable 1 KiB commit spends its time, phase by phase.

Each commit writes one new 1 KiB file (stored inline) into a container holding
1,000 such files, as ``compare_core.py``'s workload ``d`` does; the commit's
phases are timed by wrapping the methods that run them:

    NUMBA_CACHE_DIR=/tmp/numba-cache python bench/commit_phases.py --commits 500

Prints the median of each phase in microseconds (``sync`` is the fdatasync).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import cartridge


def timed(obj: Any, name: str, into: dict[str, list[float]]) -> None:
    """Replace ``obj.name`` with a wrapper that records each call's duration."""
    inner: Callable = getattr(obj, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            into.setdefault(name, []).append(time.perf_counter() - t0)

    setattr(obj, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cart = cartridge.create(os.path.join(tmp, "c.cart"))
        for i in range(1000):
            cart.write(f"/d/f{i:06d}", os.urandom(1024))
        cart.commit()
        phases: dict[str, list[float]] = {}
        timed(cart.txn.tree, "flush", phases)
        timed(cart.txn.allocator, "write_state", phases)
        timed(cart.env.pager, "write_meta", phases)
        timed(cart.env.pager, "sync", phases)
        totals, writes = [], []
        for i in range(args.commits):
            t0 = time.perf_counter()
            cart.write(f"/commit/c{i:06d}", b"y" * 1024)
            t1 = time.perf_counter()
            cart.commit()
            writes.append(t1 - t0)
            totals.append(time.perf_counter() - t1)
        cart.close()
    print(f"write() {statistics.median(writes) * 1e6:.0f} us, "
          f"commit() {statistics.median(totals) * 1e6:.0f} us (medians of {args.commits})")
    for name, values in phases.items():
        print(f"  {name:12s} {statistics.median(values) * 1e6:7.0f} us  ({len(values)} calls)")


if __name__ == "__main__":
    main()
