"""Concurrent reads beside a writer, snapshots and compaction: Cartridge, LMDB, h5py.

Workloads, all in this one run on this machine:

``reads``     random 1 KiB reads at random offsets of one 64 MiB blob, by 1 and
              by 2 reader processes for ``--seconds`` each, with no writer and
              with a writer process committing 100 times a second (one small
              write per commit).  Reported: reads/s summed over the readers,
              the 2-reader/1-reader scaling, the slowdown caused by the writer,
              and the median and p99 latency of one read.
``snapshot``  ``snapshot()`` time on a 10 MiB and on a 1 GiB container (median).
``compact``   a fragmented container (``--compact-mib`` MiB written in files of
              8-160 KiB, 70% deleted at random): ``compact()`` throughput in MiB
              of live pages moved per second.

How each store reads and writes:

* **Cartridge**: the blob is a file; a reader process opens the container
  read-only and calls ``read(path, offset, 1024)`` (each call pins the newest
  commit); the writer rewrites a 1 KiB file and commits (durable).
* **LMDB** (py-lmdb): the blob is 65,536 values of 1 KiB; a read is one
  ``get`` in a read transaction replaced by a new one every 100 reads (what
  a long-running LMDB reader does to see new commits); the writer puts one
  key per write transaction (``sync=True``).
* **h5py**: the blob is a ``uint8`` dataset; a read is ``ds[o:o + 1024]``.
  HDF5 has no concurrent writer without SWMR mode, so h5py runs the reads
  workload without a writer only.

Usage::

    NUMBA_CACHE_DIR=/tmp/numba-cache python bench/compare_mvcc.py
    python bench/compare_mvcc.py --seconds 3 --big-mib 256 --compact-mib 64
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "numba-cache"))

import numpy as np  # noqa: E402

import cartridge  # noqa: E402

BLOB = 64 << 20
READ = 1024
NKEYS = BLOB // READ


# ------------------------------------------------------------------ building
def build_cartridge(path: str) -> None:
    with cartridge.create(path, overwrite=True) as c:
        c.write("/blob", np.random.default_rng(0).bytes(BLOB))
        c.write("/hot", b"x" * READ)


def build_lmdb(path: str) -> None:
    import lmdb

    env = lmdb.open(path, map_size=4 * BLOB, subdir=True)
    rng = np.random.default_rng(0)
    with env.begin(write=True) as txn:
        for k in range(NKEYS):
            txn.put(b"%08d" % k, rng.bytes(READ))
    env.sync(True)
    env.close()


def build_h5(path: str) -> None:
    import h5py

    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("blob", data=np.frombuffer(np.random.default_rng(0).bytes(BLOB),
                                                    np.uint8))


# ------------------------------------------------------------------- workers
def reader(store: str, path: str, seconds: float, start, queue) -> None:
    """Read random 1 KiB pieces until ``seconds`` pass; report count and latencies."""
    rng = random.Random(os.getpid())
    lat: list[int] = []
    if store == "cartridge":
        c = cartridge.open(path, "r")

        def one() -> None:
            c.read("/blob", rng.randrange(BLOB - READ), READ)
    elif store == "lmdb":
        import lmdb

        env = lmdb.open(path, readonly=True, lock=True, subdir=True, map_size=4 * BLOB)
        state = {"txn": env.begin(), "n": 0}

        def one() -> None:
            state["n"] += 1
            if state["n"] % 100 == 0:  # see new commits, as a long-lived reader must
                state["txn"].abort()
                state["txn"] = env.begin()
            state["txn"].get(b"%08d" % rng.randrange(NKEYS))
    else:
        import h5py

        f = h5py.File(path, "r")
        ds = f["blob"]

        def one() -> None:
            o = rng.randrange(BLOB - READ)
            ds[o : o + READ]
    for _ in range(200):
        one()
    start.wait()
    end = time.perf_counter() + seconds
    n = 0
    clock = time.perf_counter_ns
    while True:
        t0 = clock()
        one()
        lat.append(clock() - t0)
        n += 1
        if n % 64 == 0 and time.perf_counter() >= end:
            break
    queue.put((n / seconds, lat[:: max(1, len(lat) // 20000)]))


def writer(store: str, path: str, stop, queue) -> None:
    """Commit 100 times a second until ``stop`` is set; report commits made."""
    commits = 0
    if store == "cartridge":
        c = cartridge.open(path, "r+")

        def commit(i: int) -> None:
            c.write("/hot", i.to_bytes(8, "little") * (READ // 8))
            c.commit()
    else:
        import lmdb

        env = lmdb.open(path, map_size=4 * BLOB, subdir=True)

        def commit(i: int) -> None:
            with env.begin(write=True) as txn:
                txn.put(b"hot", i.to_bytes(8, "little") * (READ // 8))
    nxt = time.perf_counter()
    while not stop.is_set():
        commit(commits)
        commits += 1
        nxt += 0.01
        delay = nxt - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    queue.put(commits)


def run_reads(store: str, path: str, nreaders: int, with_writer: bool,
              seconds: float) -> tuple[float, list[int], float]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    start = ctx.Event()
    stop = ctx.Event()
    procs = [ctx.Process(target=reader, args=(store, path, seconds, start, q))
             for _ in range(nreaders)]
    w = None
    if with_writer:
        w = ctx.Process(target=writer, args=(store, path, stop, q))
        w.start()
    for p in procs:
        p.start()
    time.sleep(2.0)  # imports and warm-up in the children
    start.set()
    results = [q.get(timeout=seconds + 120) for _ in procs]
    commit_rate = 0.0
    if w is not None:
        stop.set()
        commit_rate = q.get(timeout=60) / (seconds + 2.0)
        w.join()
    for p in procs:
        p.join()
    rate = sum(r[0] for r in results)
    lat = [x for r in results for x in r[1]]
    return rate, lat, commit_rate


# ------------------------------------------------------------ snapshot, compact
def snapshot_times(tmp: str, sizes_mib: list[int], repeats: int = 7) -> dict[int, float]:
    out = {}
    for mib in sizes_mib:
        path = os.path.join(tmp, f"snap{mib}.cart")
        with cartridge.create(path, overwrite=True) as c:
            piece = np.random.default_rng(1).bytes(1 << 20)
            for i in range(mib):
                c.write(f"/d{i // 64}/f{i}", piece)
                if i % 64 == 63:
                    c.commit()
            c.commit()
            times = []
            for k in range(repeats):
                t0 = time.perf_counter()
                c.snapshot(f"s{k}")
                times.append(time.perf_counter() - t0)
            out[mib] = statistics.median(times)
        os.unlink(path)
    return out


def compact_rate(tmp: str, mib: int) -> tuple[float, int, int]:
    path = os.path.join(tmp, "frag.cart")
    rng = np.random.default_rng(2)
    names = []
    with cartridge.create(path, overwrite=True) as c:
        total = 0
        i = 0
        while total < mib << 20:
            size = 4096 * int(rng.integers(2, 41))
            c.write(f"/f{i}", rng.bytes(size))
            names.append(f"/f{i}")
            total += size
            i += 1
            if i % 50 == 0:
                c.commit()
        c.commit()
        for k in rng.permutation(len(names))[: int(0.7 * len(names))]:
            c.delete(names[k])
        c.commit()
        t0 = time.perf_counter()
        result = c.compact()
        dt = time.perf_counter() - t0
    os.unlink(path)
    return result.moved_pages * 4096 / (1 << 20) / dt, result.size_before, result.size_after


# --------------------------------------------------------------------- main
def pct(values: list[int], q: float) -> float:
    return float(np.percentile(np.array(values, np.float64), q)) / 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--big-mib", type=int, default=1024, help="large container for snapshot()")
    ap.add_argument("--compact-mib", type=int, default=256)
    ap.add_argument("--stores", default="cartridge,lmdb,h5py")
    args = ap.parse_args()
    stores = args.stores.split(",")
    tmp = tempfile.mkdtemp(prefix="cart-mvcc-bench-")
    try:
        paths = {"cartridge": os.path.join(tmp, "r.cart"), "lmdb": os.path.join(tmp, "lmdb"),
                 "h5py": os.path.join(tmp, "r.h5")}
        builders = {"cartridge": build_cartridge, "lmdb": build_lmdb, "h5py": build_h5}
        for s in stores:
            builders[s](paths[s])
        rows = []
        for s in stores:
            res = {}
            for writer_on in ([False, True] if s != "h5py" else [False]):
                for n in (1, 2):
                    res[(n, writer_on)] = run_reads(s, paths[s], n, writer_on, args.seconds)
                    print(f"  {s}: {n} reader(s){' + writer' if writer_on else ''}: "
                          f"{res[(n, writer_on)][0]:.0f} reads/s", file=sys.stderr, flush=True)
            rows.append((s, res))
        print(f"\nrandom 1 KiB reads, {args.seconds:g} s per cell, 64 MiB blob (reads/s summed)")
        print(f"{'store':10} {'1 rdr':>9} {'2 rdr':>9} {'x2/x1':>6} {'1+wr':>9} {'2+wr':>9} "
              f"{'x2/x1':>6} {'wr cost':>7} {'commits/s':>9} {'p50 us':>7} {'p99 us':>7} "
              f"{'p50+wr':>7} {'p99+wr':>7}")
        for s, res in rows:
            r1, l1, _ = res[(1, False)]
            r2, _, _ = res[(2, False)]
            line = f"{s:10} {r1:9.0f} {r2:9.0f} {r2 / r1:6.2f} "
            if (1, True) in res:
                w1, lw, cps = res[(1, True)]
                w2, _, _ = res[(2, True)]
                line += (f"{w1:9.0f} {w2:9.0f} {w2 / w1:6.2f} {1 - w2 / r2:7.0%} {cps:9.0f} "
                         f"{pct(l1, 50):7.1f} {pct(l1, 99):7.1f} {pct(lw, 50):7.1f} "
                         f"{pct(lw, 99):7.1f}")
            else:
                line += (f"{'-':>9} {'-':>9} {'-':>6} {'-':>7} {'-':>9} {pct(l1, 50):7.1f} "
                         f"{pct(l1, 99):7.1f} {'-':>7} {'-':>7}")
            print(line)
        if "cartridge" in stores:
            base = dict(rows)["cartridge"]
            for s, res in rows:
                if s != "cartridge":
                    print(f"cartridge/{s} 2-reader throughput ratio: "
                          f"{base[(2, False)][0] / res[(2, False)][0]:.2f}")
            snaps = snapshot_times(tmp, [10, args.big_mib])
            print(f"\nsnapshot(): 10 MiB container {snaps[10] * 1e3:.2f} ms, "
                  f"{args.big_mib} MiB container {snaps[args.big_mib] * 1e3:.2f} ms "
                  f"(ratio {snaps[args.big_mib] / snaps[10]:.2f})")
            rate, before, after = compact_rate(tmp, args.compact_mib)
            print(f"compact(): {rate:.0f} MiB/s moved; file {before >> 20} MiB -> "
                  f"{after >> 20} MiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
