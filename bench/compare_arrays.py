"""Cartridge arrays against ``.npy`` memmaps, h5py and zarr, side by side.

One 256 MiB float32 array (64 Mi elements), stored by each peer in a temporary
directory, then, for every store in this one process:

``open+view``  open the store and get an array object on the data; for the
               stores that return a numpy array without reading (Cartridge
               ``view``, ``np.load(mmap_mode="r")``) that is the whole cost;
               h5py and zarr return a lazy handle instead.
``sum``        the full-array ``sum()`` (float64 accumulator), page cache warm:
               through the view/memmap, or by reading the lazy handle whole.
``slices``     1,000 random slices of 4,096 consecutive elements through the
               lazy handle (``Dataset`` for Cartridge, the memmap for .npy).
``write``      write the array and make it durable (Cartridge ``write_array``
               + ``commit``; ``np.save`` + fsync; h5py + fsync; zarr + fsync of
               its chunk files), as bandwidth; the baseline is writing the raw
               bytes to a plain file + fsync.

Plus ``view`` alone on an open handle at 1 KiB .. 1 GiB: its cost must not
grow with the size.  Times are medians of ``--repeat`` runs (for the
microsecond-scale calls, each run is the mean of a loop of calls); ratios are
``peer / cartridge`` for times (above 1: Cartridge faster) and
``cartridge / raw file`` for write bandwidth.

Usage::

    python bench/compare_arrays.py [--mib 256] [--repeat 5] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "numba-cache"))

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import zarr  # noqa: E402

import cartridge  # noqa: E402

SLICE = 4096
NSLICES = 1000


def median_time(func: Callable[[], object], repeat: int, number: int = 1) -> float:
    """Median over ``repeat`` samples of the mean wall time of ``number`` calls (s)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(number):
            func()
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times)


def fsync_path(path: str) -> None:
    """fsync a file, or every file under a directory."""
    paths = [path] if os.path.isfile(path) else [
        os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Store:
    """One peer: how it writes, opens, sums and slices."""

    name = ""

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, self.name.replace(" ", "_"))

    def clear(self) -> None:
        for p in (self.path, self.path + "-lock"):
            if os.path.isdir(p):
                shutil.rmtree(p)
            elif os.path.exists(p):
                os.unlink(p)


class Cart(Store):
    name = "cartridge"

    def write(self, arr):
        with cartridge.create(self.path, overwrite=True) as cart:
            cart.write_array("/x", arr)
            cart.commit()

    def open_view(self):
        cart = cartridge.open(self.path, "r")
        return cart, cart.view("/x")

    def lazy(self):
        cart = cartridge.open(self.path, "r")
        return cart, cart.array("/x")


class Npy(Store):
    name = "npy memmap"

    def write(self, arr):
        with open(self.path, "wb") as f:
            np.save(f, arr)
            f.flush()
            os.fsync(f.fileno())

    def open_view(self):
        return None, np.load(self.path, mmap_mode="r")

    lazy = open_view


class H5(Store):
    chunks: tuple[int, ...] | None = None

    def write(self, arr):
        with h5py.File(self.path, "w") as f:
            f.create_dataset("x", data=arr, chunks=self.chunks)
        fsync_path(self.path)

    def open_view(self):
        f = h5py.File(self.path, "r")
        return f, f["x"]

    lazy = open_view


class H5Contig(H5):
    name = "h5py contiguous"


class H5Chunked(H5):
    name = "h5py chunked"
    chunks = (1 << 16,)  # 256 KiB, the size Cartridge's chunks=True aims at


class Zarr(Store):
    name = "zarr"

    def write(self, arr):
        z = zarr.open_array(self.path, mode="w", shape=arr.shape, dtype=arr.dtype,
                            chunks=(1 << 16,))
        z[:] = arr
        fsync_path(self.path)

    def open_view(self):
        return None, zarr.open_array(self.path, mode="r")

    lazy = open_view


def raw_write(path: str, arr: np.ndarray) -> None:
    """The baseline: the array's bytes to a plain file, then fsync."""
    with open(path, "wb") as f:
        f.write(memoryview(arr).cast("B"))
        f.flush()
        os.fsync(f.fileno())


def close(handle: object) -> None:
    if handle is not None:
        handle.close()


def run(args: argparse.Namespace) -> None:
    n = args.mib * (1 << 20) // 4
    arr = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    root = tempfile.mkdtemp(prefix="cart-arrays-", dir=args.dir)
    stores = [Cart(root), Npy(root), H5Contig(root), H5Chunked(root), Zarr(root)]
    rng = np.random.default_rng(1)
    starts = rng.integers(0, n - SLICE, NSLICES)
    rows: dict[str, dict[str, float]] = {}
    try:
        raw = os.path.join(root, "raw.bin")
        raw_t = median_time(lambda: raw_write(raw, arr), args.repeat)
        os.unlink(raw)
        for s in stores:
            r = rows[s.name] = {}
            r["write"] = median_time(lambda s=s: (s.clear(), s.write(arr)), args.repeat)

            def open_view(s=s):
                handle, v = s.open_view()
                close(handle)

            open_view()
            r["open+view"] = median_time(open_view, args.repeat, number=50)
            handle, v = s.open_view()
            full = v if isinstance(v, np.ndarray) else None

            def total(v=v, full=full):
                return (full if full is not None else v[...]).sum(dtype=np.float64)

            total()
            r["sum"] = median_time(total, args.repeat)
            close(handle)
            handle, lazy = s.lazy()

            def slices(lazy=lazy):
                for i in starts:
                    lazy[i : i + SLICE]

            slices()
            r["slices"] = median_time(slices, args.repeat)
            close(handle)
        # view alone, on an open handle, by size
        sizes = [1 << 10, 1 << 20, 256 << 20, 1 << 30]
        view_t = {}
        vpath = os.path.join(root, "sizes.cart")
        with cartridge.create(vpath) as cart:
            for size in sizes:
                cart.write_array(f"/s{size}", np.zeros(size // 4, np.float32))
                cart.commit()
        with cartridge.open(vpath, "r") as cart:
            for size in sizes:
                cart.view(f"/s{size}")
                view_t[size] = median_time(lambda size=size: cart.view(f"/s{size}"),
                                           args.repeat, number=1000)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    c = rows["cartridge"]
    print(f"\n{args.mib} MiB float32, medians of {args.repeat} runs (open+view: of "
          f"{args.repeat} means of 50 calls); ratio = peer / cartridge\n")
    print("| store | open+view | full sum() | 1,000 random 4,096-element slices | "
          "write (MB/s, durable) |")
    print("|---|---|---|---|---|")
    mb = arr.nbytes / 1e6
    for name, r in rows.items():
        def cell(key, r=r, name=name):
            if name == "cartridge":
                return f"{r[key] * 1e3:.3f} ms"
            return f"{r[key] * 1e3:.3f} ms ({r[key] / c[key]:.1f}x)"

        print(f"| {name} | {cell('open+view')} | {cell('sum')} | {cell('slices')} | "
              f"{mb / r['write']:.0f} ({raw_t / r['write']:.0%} of raw) |")
    print(f"| raw file write + fsync | | | | {mb / raw_t:.0f} (100%) |")
    print(f"\n`cart.view()` on an open read-only handle, by array size (medians of "
          f"{args.repeat} means of 1,000 calls):\n")
    print("| size | " + " | ".join(f"{s >> 10} KiB" if s < 1 << 20 else f"{s >> 20} MiB"
                                    for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    print("| view | " + " | ".join(f"{view_t[s] * 1e6:.1f} µs" for s in sizes) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="array size in MiB")
    parser.add_argument("--repeat", type=int, default=5, help="repeats per measurement")
    parser.add_argument("--dir", default=None, help="where to put the stores")
    with contextlib.suppress(KeyboardInterrupt):
        run(parser.parse_args())


if __name__ == "__main__":
    main()
