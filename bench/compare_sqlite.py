"""SQLite on a plain file against SQLite inside a container (the cartridge VFS).

The same workload runs on both, side by side in this one process, in a
temporary directory, for each journal mode (WAL, DELETE) and each
``synchronous`` level (NORMAL, FULL):

1. ``insert``  200,000 rows in one transaction (``executemany``);
2. ``index``   ``CREATE INDEX`` on a text column;
3. ``point``   20,000 random point selects by primary key;
4. ``range``   2,000 range scans of ~100 rows through the index;
5. ``txns``    1,000 small transactions of 10 rows each.

Both sides use apsw with the same page size (4096), cache size (SQLite's
default) and statements; the plain side uses SQLite's default unix VFS.  Each
(mode, store) pair runs ``--repeat`` times, the two stores alternating within
a repeat, and the median of each phase is reported with the ratio
container / plain.  ``--scale`` shrinks every count (for CI smoke runs).

    python bench/compare_sqlite.py [--scale 1.0] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import apsw

from cartridge import sqlite

PHASES = ("insert", "index", "point", "range", "txns")


def workload(conn: apsw.Connection, journal: str, sync: str, scale: float,
             seed: int) -> dict[str, float]:
    """Run the five phases on ``conn``; seconds per phase."""
    n_rows = int(200_000 * scale)
    n_point, n_range, n_txn = int(20_000 * scale), int(2_000 * scale), int(1_000 * scale)
    rng = random.Random(seed)
    out: dict[str, float] = {}
    assert conn.execute(f"PRAGMA journal_mode={journal}").fetchone()[0] == journal
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, value REAL, note TEXT)")
    rows = [(i, f"name-{rng.randrange(10**9):09d}", rng.random(), "x" * (10 + i % 40))
            for i in range(n_rows)]
    t0 = time.perf_counter()
    with conn:
        conn.executemany("INSERT INTO t VALUES(?, ?, ?, ?)", rows)
    out["insert"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    conn.execute("CREATE INDEX t_name ON t(name)")
    out["index"] = time.perf_counter() - t0

    keys = [rng.randrange(n_rows) for _ in range(n_point)]
    t0 = time.perf_counter()
    for k in keys:
        conn.execute("SELECT name, value FROM t WHERE id = ?", (k,)).fetchone()
    out["point"] = time.perf_counter() - t0

    starts = [f"name-{rng.randrange(10**9):09d}" for _ in range(n_range)]
    t0 = time.perf_counter()
    for s in starts:
        conn.execute("SELECT id, value FROM t WHERE name >= ? ORDER BY name LIMIT 100",
                     (s,)).fetchall()
    out["range"] = time.perf_counter() - t0

    base = n_rows
    t0 = time.perf_counter()
    for j in range(n_txn):
        with conn:
            conn.executemany("INSERT INTO t VALUES(?, ?, ?, ?)",
                             [(base + j * 10 + i, f"txn-{j}-{i}", 0.5, "y") for i in range(10)])
    out["txns"] = time.perf_counter() - t0
    return out


def run_plain(tmp: str, journal: str, sync: str, scale: float, seed: int) -> dict[str, float]:
    path = os.path.join(tmp, f"plain-{journal}-{sync}-{seed}.db")
    conn = apsw.Connection(path)
    try:
        return workload(conn, journal, sync, scale, seed)
    finally:
        conn.close()


def run_cart(tmp: str, journal: str, sync: str, scale: float, seed: int) -> dict[str, float]:
    path = os.path.join(tmp, f"cart-{journal}-{sync}-{seed}.cart")
    conn = sqlite.connect(path, "/db/bench.db")
    try:
        return workload(conn, journal, sync, scale, seed)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", default="wal:normal,wal:full,delete:normal,delete:full")
    parser.add_argument("--json", help="write the medians here")
    args = parser.parse_args(argv)
    runners: dict[str, Callable[..., dict[str, float]]] = {"plain": run_plain,
                                                           "cartridge": run_cart}
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("CARTRIDGE_BENCH_DIR")) as tmp:
        for mode in args.modes.split(","):
            journal, sync = mode.split(":")
            samples: dict[str, list[dict[str, float]]] = {k: [] for k in runners}
            for rep in range(args.repeat):
                order = list(runners) if rep % 2 == 0 else list(runners)[::-1]
                for name in order:
                    samples[name].append(runners[name](tmp, journal, sync, args.scale, rep))
            results[mode] = {
                name: {ph: statistics.median(s[ph] for s in runs) for ph in PHASES}
                for name, runs in samples.items()}
            for name in runners:
                results[mode][name]["total"] = sum(results[mode][name][ph] for ph in PHASES)
            print_mode(mode, results[mode])
            sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


def print_mode(mode: str, res: dict[str, dict[str, float]]) -> None:
    """One markdown table row per phase: plain s, cartridge s, ratio."""
    print(f"\n### {mode}\n")
    print("| phase | plain file (s) | container (s) | ratio |")
    print("|---|---:|---:|---:|")
    for ph in (*PHASES, "total"):
        p, c = res["plain"][ph], res["cartridge"][ph]
        print(f"| {ph} | {p:.3f} | {c:.3f} | {c / p:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
