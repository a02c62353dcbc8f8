"""Compression and encryption overhead: Cartridge against the libraries themselves.

For 64 MiB of compressible data (a structured float32 field: a smooth signal
quantized to 1/64, so runs and repeats are common, as in real measurements)
and 64 MiB of random bytes, in one process:

* **write**: ``cart.write(path, data, compression=..)`` into an open
  container (the codec/cipher path: chunking, compression, sealing,
  checksums, allocation, chunk records; the commit's fsync is left out, it
  measures the disk) against the library called once on the same bytes in
  one piece: ``lz4.block.compress``, ``zstandard.ZstdCompressor(3).compress``,
  AES-256-GCM ``AESGCM.encrypt`` (``cryptography``, the library Cartridge
  uses); the row ``none`` is a plain write/read against ``bytes(data)``, the
  floor of moving 64 MiB through the mapped file;
* **read**: ``cart.read(path)`` of the whole file from a reopened container
  with the decoded-chunk cache off (every chunk decoded) against the
  library's one-piece decompress/decrypt;
* **ratio**: stored bytes / logical bytes against the library's one-piece
  compressed size (row ``zstd 1MiB``: a container with 1 MiB chunks, for
  the ratio a larger chunk buys);
* **random 4 KiB reads**: decodes counted per read (must be <= 1);
* the same float array through h5py (gzip level 4, lzf; 64 KiB chunks) and
  zarr (zstd level 3, 64 KiB chunks): write and read time and ratio.

Every figure is the median of ``--repeat`` runs (default 5).  "vs lib" =
ours / library - 1; "vs lib+store" = ours / (library + our plain ``none``
path) - 1, the overhead on top of the codec *and* of moving the bytes
through the mapped file, which the one-piece library call never does.

Usage::

    NUMBA_CACHE_DIR=/tmp/numba-cache python bench/compare_codec.py [--mib 64] [--repeat 5]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import lz4.block
import numpy as np
import zarr
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import cartridge

KEY = bytes(range(32))


def datasets(mib: int) -> dict[str, np.ndarray]:
    """The compressible float field and random bytes, ``mib`` MiB each."""
    n = (mib << 20) // 4
    rng = np.random.default_rng(0)
    t = np.arange(n, dtype=np.float64)
    field = np.sin(t / 5000.0) * 100 + np.sin(t / 37.0) * 3
    field = (np.round(field * 64) / 64).astype(np.float32)
    noise = rng.integers(0, 256, mib << 20, dtype=np.uint8)
    return {"compressible": field, "random": noise}


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def lib_codec(mode: str) -> tuple[Callable[[bytes], bytes], Callable[[bytes, int], bytes]]:
    """One-piece (compress, decompress) of the library behind ``mode``."""
    if mode == "lz4":
        return (lambda b: lz4.block.compress(b, store_size=False),
                lambda c, n: lz4.block.decompress(c, uncompressed_size=n))
    if mode == "zstd":
        comp, dec = zstandard.ZstdCompressor(level=3), zstandard.ZstdDecompressor()
        return comp.compress, lambda c, n: dec.decompress(c, max_output_size=n)
    if mode == "none":
        return bytearray, lambda c, n: bytes(memoryview(c))  # one memcpy each way
    nonce, aead = bytes(12), AESGCM(KEY)
    return (lambda b: aead.encrypt(nonce, b, None)), (lambda c, n: aead.decrypt(nonce, c, None))


def lib_pipeline(mode: str) -> tuple[Callable[[bytes], bytes], Callable[[bytes, int], bytes]]:
    """``lib_codec``, with ``"zstd+aes"`` as zstd then AES-GCM (and back)."""
    if mode != "zstd+aes":
        return lib_codec(mode)
    (c1, d1), (c2, d2) = lib_codec("zstd"), lib_codec("aes")
    return (lambda b: c2(c1(b))), (lambda c, n: d1(d2(c, 0), n))


def ours(tmp: Path, mode: str, data: bytes, repeat: int) -> dict[str, float]:
    """Write/read times, stored size and decodes per random read through Cartridge."""
    path = tmp / f"{mode}.cart"
    enc = mode in ("aes", "zstd+aes")
    codec = {"none": None, "lz4": "lz4", "zstd": "zstd", "aes": None, "zstd+aes": "zstd",
             "zstd 1MiB": "zstd"}[mode]
    chunk = 1 << 20 if mode.endswith("1MiB") else 65536
    key = KEY if enc else None

    def write() -> None:
        with cartridge.create(path, overwrite=True, key=key, chunk_size=chunk) as c:
            t0 = time.perf_counter()
            c.write("/f", data, compression=codec)
            write.elapsed = time.perf_counter() - t0  # type: ignore[attr-defined]

    times = []
    for _ in range(repeat):
        write()
        times.append(write.elapsed)  # type: ignore[attr-defined]
    with cartridge.open(path, "r", key=key, cache_size=0) as c:
        t_read = median_time(lambda: c.read("/f"), repeat)
        assert c.read("/f") == data
        stored = c.stat("/f").stored_size
        rng = np.random.default_rng(1)
        worst = 0
        for _ in range(200):
            off = int(rng.integers(0, len(data) // 4096)) * 4096  # a page-aligned 4 KiB
            before = c.info().cache["decodes"]
            c.read("/f", off, 4096)
            worst = max(worst, c.info().cache["decodes"] - before)
    return {"write": statistics.median(times), "read": t_read, "stored": stored,
            "decodes": worst}


def peers(tmp: Path, arr: np.ndarray, repeat: int) -> list[tuple[str, float, float, float]]:
    """(name, write s, read s, ratio) for h5py gzip/lzf and zarr zstd on ``arr``."""
    out = []
    chunk = (65536 // arr.itemsize,)
    for name, kw in (("h5py gzip(4)", {"compression": "gzip", "compression_opts": 4}),
                     ("h5py lzf", {"compression": "lzf"})):
        path = tmp / "p.h5"

        def w(kw=kw, path=path) -> None:
            with h5py.File(path, "w") as f:
                f.create_dataset("a", data=arr, chunks=chunk, **kw)

        tw = median_time(w, repeat)
        with h5py.File(path, "r") as f:
            tr = median_time(lambda f=f: f["a"][...], repeat)
        out.append((name, tw, tr, os.path.getsize(path) / arr.nbytes))
    zpath = tmp / "z.zarr"
    try:
        from zarr.codecs import ZstdCodec

        def zw() -> None:
            _zarr_write(zpath, arr, chunk, ZstdCodec(level=3))
    except ImportError:  # zarr 2
        from numcodecs import Zstd

        def zw() -> None:
            _zarr_write(zpath, arr, chunk, Zstd(level=3))
    tw = median_time(zw, repeat)
    z = zarr.open_array(str(zpath), mode="r")
    tr = median_time(lambda: z[...], repeat)
    size = sum(p.stat().st_size for p in zpath.rglob("*") if p.is_file())
    out.append(("zarr zstd(3)", tw, tr, size / arr.nbytes))
    return out


def _zarr_write(path: Path, arr: np.ndarray, chunk: tuple, codec: object) -> None:
    if int(zarr.__version__.split(".")[0]) >= 3:
        z = zarr.create_array(str(path), shape=arr.shape, dtype=arr.dtype, chunks=chunk,
                              compressors=[codec], overwrite=True)
    else:
        z = zarr.open_array(str(path), mode="w", shape=arr.shape, dtype=arr.dtype,
                            chunks=chunk, compressor=codec)
    z[...] = arr


def main() -> None:
    """Run the comparison and print one table per dataset."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    mib = 1 << 20
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, arr in datasets(args.mib).items():
            data = arr.tobytes()
            n = len(data)
            print(f"\n## {name} data, {n >> 20} MiB "
                  f"(median of {args.repeat}; MB/s = MiB per second)\n")
            print("| codec | write MB/s ours | lib | vs lib | vs lib+store | read MB/s ours | "
                  "lib | vs lib | vs lib+store | ratio ours | lib | decodes / 4 KiB read |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|")
            floor: dict[str, float] = {}
            for mode in ("none", "lz4", "zstd", "aes", "zstd+aes", "zstd 1MiB"):
                res = ours(tmp, mode, data, args.repeat)
                comp, dec = lib_pipeline(mode.split()[0])
                blob = comp(data)
                lw = median_time(functools.partial(comp, data), args.repeat)
                lr = median_time(functools.partial(dec, blob, n), args.repeat)
                if mode == "none":
                    floor = {"write": res["write"], "read": res["read"]}
                fw = 0.0 if mode == "none" else floor["write"]
                fr = 0.0 if mode == "none" else floor["read"]
                print(f"| {mode} | {n / mib / res['write']:.0f} | {n / mib / lw:.0f} | "
                      f"{res['write'] / lw - 1:+.0%} | {res['write'] / (lw + fw) - 1:+.0%} | "
                      f"{n / mib / res['read']:.0f} | {n / mib / lr:.0f} | "
                      f"{res['read'] / lr - 1:+.0%} | {res['read'] / (lr + fr) - 1:+.0%} | "
                      f"{res['stored'] / n:.4f} | {len(blob) / n:.4f} | {res['decodes']} |")
            if name == "compressible":
                print("\nPeers on the same float32 array (64 KiB chunks):\n")
                print("| store | write MB/s | read MB/s | ratio |")
                print("|---|---|---|---|")
                for pname, tw, tr, ratio in peers(tmp, arr, args.repeat):
                    print(f"| {pname} | {n / mib / tw:.0f} | {n / mib / tr:.0f} | {ratio:.4f} |")


if __name__ == "__main__":
    main()
