"""Compression, encryption and the decoded-chunk cache.

``Codec*`` write and read 16 MiB of a structured float32 field per codec
(lz4, zstd, AES-256-GCM, zstd + AES-256-GCM); ``RandomRead`` times page-aligned
4 KiB reads from a compressed file with and without the ARC cache; ``Arc``
times the ARC bookkeeping kernel.  The library-vs-Cartridge comparison (and
h5py/zarr) is ``bench/compare_codec.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "numba-cache"))

import numpy as np  # noqa: E402

import cartridge  # noqa: E402
from cartridge.kernels.arc import arc_access, new_state  # noqa: E402

KEY = bytes(range(32))
MODES = {"lz4": ("lz4", None), "zstd": ("zstd", None), "aes": (None, KEY),
         "zstd+aes": ("zstd", KEY)}


def field(mib: int) -> bytes:
    """``mib`` MiB of a smooth float32 signal quantized to 1/64 (compressible)."""
    t = np.arange((mib << 20) // 4, dtype=np.float64)
    return (np.round((np.sin(t / 5000.0) * 100 + np.sin(t / 37.0) * 3) * 64) / 64).astype(
        np.float32).tobytes()


class CodecWrite:
    """``write`` of 16 MiB (no commit: the fsync would time the disk)."""

    params = list(MODES)
    param_names = ["mode"]
    number = 1
    warmup_time = 0

    def setup(self, mode: str) -> None:
        self.data = field(16)
        self.tmp = tempfile.mkdtemp()
        codec, key = MODES[mode]
        self.codec = codec
        self.cart = cartridge.create(os.path.join(self.tmp, "w.cart"), key=key)

    def teardown(self, mode: str) -> None:
        self.cart.rollback()
        self.cart.close()
        shutil.rmtree(self.tmp)

    def time_write(self, mode: str) -> None:
        self.cart.write("/f", self.data, compression=self.codec)


class CodecRead:
    """Whole-file ``read`` of 16 MiB with the cache off (every chunk decoded)."""

    params = list(MODES)
    param_names = ["mode"]

    def setup_cache(self) -> str:
        path = os.path.abspath("codec")
        os.makedirs(path, exist_ok=True)
        data = field(16)
        for mode, (codec, key) in MODES.items():
            with cartridge.create(os.path.join(path, f"{mode}.cart"), key=key,
                                  overwrite=True) as c:
                c.write("/f", data, compression=codec)
        return path

    def setup(self, path: str, mode: str) -> None:
        self.cart = cartridge.open(os.path.join(path, f"{mode}.cart"), "r",
                                   key=MODES[mode][1], cache_size=0)

    def teardown(self, path: str, mode: str) -> None:
        self.cart.close()

    def time_read(self, path: str, mode: str) -> None:
        self.cart.read("/f")


class RandomRead:
    """1,000 page-aligned 4 KiB reads from a 16 MiB zstd file, ARC cache on or off."""

    params = [0, 64 << 20]
    param_names = ["cache_size"]

    def setup_cache(self) -> str:
        path = os.path.abspath("random.cart")
        with cartridge.create(path, overwrite=True) as c:
            c.write("/f", field(16), compression="zstd")
        return path

    def setup(self, path: str, cache_size: int) -> None:
        self.cart = cartridge.open(path, "r", cache_size=cache_size)
        rng = np.random.default_rng(0)
        self.offsets = (rng.zipf(1.5, 1000) % 4096 * 4096).tolist()

    def teardown(self, path: str, cache_size: int) -> None:
        self.cart.close()

    def time_random_4k(self, path: str, cache_size: int) -> None:
        for off in self.offsets:
            self.cart.read("/f", off, 4096)


class Arc:
    """100,000 ARC accesses (hot set + scan) through the numba kernel."""

    def setup(self) -> None:
        rng = np.random.default_rng(0)
        hot = rng.integers(0, 200, 100_000)
        self.keys = np.where(rng.random(100_000) < 0.5, hot, np.arange(100_000) + 10_000)
        self.state = new_state(512 * 65536, 2048)
        self.ev = np.zeros(4096, np.int64)
        arc_access(*self.state, 1, 65536, self.ev)

    def time_accesses(self) -> None:
        state, ev = self.state, self.ev
        for k in self.keys.tolist():
            arc_access(*state, k, 65536, ev)
