"""Array benchmarks: ``view`` by size, ``write_array`` bandwidth, ``Dataset`` slicing, append.

``view`` must cost the same at every size, so ``ViewBySize`` is parametrized
over 1 KiB .. 1 GiB.  Its container is built once per run by ``setup_cache``:
the arrays are created with ``create_dataset`` (contiguous, zero fill), whose
pages are written once, so the 1 GiB case costs one sequential write, not a
copy of a random array.  The peers (``.npy`` memmaps, h5py, zarr) are compared
by ``bench/compare_arrays.py``, outside asv.
"""

from __future__ import annotations

import os
import shutil
import tempfile

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "numba-cache"))

import numpy as np  # noqa: E402

import cartridge  # noqa: E402

SIZES = [1 << 10, 1 << 20, 256 << 20, 1 << 30]


class ViewBySize:
    """``cart.view(path)`` on an open read-only handle: O(1) in the array's size."""

    params = SIZES
    param_names = ["nbytes"]
    timeout = 600

    def setup_cache(self) -> str:
        path = os.path.abspath("views.cart")
        with cartridge.create(path, overwrite=True) as cart:
            for size in SIZES:
                cart.create_dataset(f"/a{size}", (size // 4,), "f4")
                cart.commit()
        return path

    def setup(self, path: str, nbytes: int) -> None:
        self.cart = cartridge.open(path, "r")
        self.name = f"/a{nbytes}"
        self.cart.view(self.name)

    def teardown(self, path: str, nbytes: int) -> None:
        self.cart.close()

    def time_view(self, path: str, nbytes: int) -> None:
        self.cart.view(self.name)

    def time_open_and_view(self, path: str, nbytes: int) -> None:
        with cartridge.open(path, "r") as cart:
            cart.view(self.name)


class WriteArray:
    """``write_array`` + ``commit`` of a 64 MiB float32 array (bandwidth)."""

    number = 1
    repeat = 5
    warmup_time = 0

    def setup(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.arr = np.random.default_rng(0).standard_normal(16 << 20, dtype=np.float32)
        self.cart = cartridge.create(os.path.join(self.dir, "w.cart"))

    def teardown(self) -> None:
        self.cart.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_write_array_64mib(self) -> None:
        self.cart.write_array("/x", self.arr)
        self.cart.commit()

    def track_write_mb_per_s(self) -> float:
        import time

        t0 = time.perf_counter()
        self.time_write_array_64mib()
        return self.arr.nbytes / 1e6 / (time.perf_counter() - t0)

    track_write_mb_per_s.unit = "MB/s"


class DatasetSlicing:
    """1,000 random slices of 4,096 elements through ``cart.array(path)``."""

    def setup_cache(self) -> str:
        path = os.path.abspath("slices.cart")
        arr = np.arange(16 << 20, dtype=np.float32)
        with cartridge.create(path, overwrite=True) as cart:
            cart.write_array("/contiguous", arr)
            ds = cart.create_dataset("/chunked", arr.shape, arr.dtype, chunks=(65536,))
            ds[...] = arr
            cart.commit()
        return path

    def setup(self, path: str) -> None:
        self.cart = cartridge.open(path, "r")
        self.starts = np.random.default_rng(1).integers(0, (16 << 20) - 4096, 1000).tolist()

    def teardown(self, path: str) -> None:
        self.cart.close()

    def time_contiguous_slices(self, path: str) -> None:
        ds = self.cart.array("/contiguous")
        for i in self.starts:
            ds[i : i + 4096]

    def time_chunked_slices(self, path: str) -> None:
        ds = self.cart.array("/chunked")
        for i in self.starts:
            ds[i : i + 4096]


class Append:
    """Grow a chunked dataset by 100 appends of 1,000 rows x 16 float64."""

    number = 1
    repeat = 5
    warmup_time = 0

    def setup(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.cart = cartridge.create(os.path.join(self.dir, "a.cart"))
        self.ds = self.cart.create_dataset("/log", (0, 16), "f8", maxshape=(None, 16),
                                           chunks=True)
        self.rows = np.ones((1000, 16))

    def teardown(self) -> None:
        self.cart.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_append_100x1000_rows(self) -> None:
        for _ in range(100):
            self.ds.append(self.rows)
        self.cart.commit()
