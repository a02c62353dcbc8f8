"""The array workload: deterministic array batches, committed until killed.

Worker::

    python -m cartridge.testing.workloads.arrays CART SEED

opens ``CART`` read-write (creating it the first time), takes its first batch
number from the crash harness's ``START`` and, for ``k = start, ...``:
announces ``begin k``, applies :func:`apply_batch` (``k``), announces
``commit k``, commits, announces ``ack k``.  It also keeps zero-copy views of
the arrays it wrote in earlier batches and checks, before every commit, that
none of them changed; a changed view prints ``VIEW CHANGED`` on stderr and
exits with status 3 (the harness reports that as a dead worker).

A batch depends only on ``(SEED, k)`` and on the dataset's current shape, so
the parent replays the same batches on a :class:`Model` (a dict of ndarrays)
to know the expected contents.
"""

from __future__ import annotations

import sys

import numpy as np

import cartridge
from cartridge.testing.crash import Phases

DTYPES: list[np.dtype] = [np.dtype("<f8"), np.dtype(">i4"), np.dtype("u1"),
          np.dtype([("a", "<i2"), ("b", "S5"), ("c", "<f4", (3,))])]


class Model:
    """The expected contents: path -> ndarray."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def write_array(self, path: str, arr: np.ndarray) -> None:
        self.arrays[path] = arr.copy()

    def delete(self, path: str) -> None:
        del self.arrays[path]

    def exists(self, path: str) -> bool:
        return path in self.arrays

    def create_log(self) -> None:
        self.arrays["/log"] = np.zeros((0, 8), "<i4")

    def log_shape(self) -> tuple[int, ...]:
        return self.arrays["/log"].shape

    def log_append(self, rows: np.ndarray) -> None:
        self.arrays["/log"] = np.concatenate([self.arrays["/log"], rows])

    def log_set(self, index: slice, value: int) -> None:
        self.arrays["/log"][index] = value

    def log_resize(self, n: int) -> None:
        old = self.arrays["/log"]
        new = np.full((n, 8), -1, "<i4")
        new[: min(n, len(old))] = old[:n]
        self.arrays["/log"] = new


class CartStore:
    """The same operations on a container."""

    def __init__(self, cart: cartridge.Cartridge) -> None:
        self.cart = cart

    def write_array(self, path: str, arr: np.ndarray) -> None:
        self.cart.write_array(path, arr)

    def delete(self, path: str) -> None:
        self.cart.delete(path)

    def exists(self, path: str) -> bool:
        return self.cart.exists(path)

    def create_log(self) -> None:
        self.cart.create_dataset("/log", (0, 8), "<i4", maxshape=(None, 8), chunks=(64, 4),
                                 fill_value=-1)

    def log_shape(self) -> tuple[int, ...]:
        return self.cart.array("/log").shape

    def log_append(self, rows: np.ndarray) -> None:
        self.cart.array("/log").append(rows)

    def log_set(self, index: slice, value: int) -> None:
        self.cart.array("/log")[index] = value

    def log_resize(self, n: int) -> None:
        self.cart.array("/log").resize((n, 8))


def random_array(rng: np.random.Generator) -> np.ndarray:
    dtype = DTYPES[int(rng.integers(len(DTYPES)))]
    n = int(rng.choice([0, 1, 100, 1000, 20_000, 300_000]))
    raw = rng.integers(0, 256, n * dtype.itemsize, dtype=np.uint8)
    arr = raw.view(dtype)
    if n >= 100 and rng.random() < 0.3:
        arr = np.asfortranarray(arr.reshape(10, -1))
    return arr


def apply_batch(store: Model | CartStore, seed: int, k: int) -> None:
    """Batch ``k``: a few array writes and deletes, and changes to the growing log."""
    rng = np.random.default_rng([seed, k])
    for _ in range(int(rng.integers(1, 4))):
        store.write_array(f"/a/{int(rng.integers(6))}", random_array(rng))
    victim = f"/a/{int(rng.integers(6))}"
    if rng.random() < 0.3 and store.exists(victim):
        store.delete(victim)
    if not store.exists("/log"):
        store.create_log()
    rows = int(rng.integers(0, 300))
    store.log_append(rng.integers(-1000, 1000, (rows, 8)).astype("<i4"))
    n = store.log_shape()[0]
    if n and rng.random() < 0.5:
        lo = int(rng.integers(n))
        store.log_set(slice(lo, lo + int(rng.integers(1, 50))), k)
    if n and rng.random() < 0.15:
        store.log_resize(int(rng.integers(n)))


def snapshot(cart: cartridge.Cartridge) -> dict[str, tuple]:
    """Every array's (dtype, shape, bytes)."""
    out = {}
    for path, info in cart.walk("/"):
        if info.is_array:
            arr = np.asarray(cart.array(path)[...])
            out[path] = (arr.dtype, arr.shape, arr.tobytes(order="A"))
    return out


def model_snapshot(model: Model) -> dict[str, tuple]:
    return {p: (a.dtype, a.shape, a.tobytes(order="A")) for p, a in model.arrays.items()}


def main() -> None:
    """Run batches until killed; see the module docstring."""
    path, seed = sys.argv[1], int(sys.argv[2])
    phases = Phases()
    k = phases.start_number()
    if k is None:
        return  # the parent no longer needs this worker
    cart = cartridge.open(path, "a")
    store = CartStore(cart)
    views: list[tuple[np.ndarray, bytes]] = []
    while True:
        phases("begin", k)
        apply_batch(store, seed, k)
        for view, expected in views:
            if view.tobytes(order="A") != expected:
                print("VIEW CHANGED", file=sys.stderr, flush=True)
                sys.exit(3)
        phases("commit", k)
        cart.commit()
        phases("ack", k)
        for i in range(6):
            p = f"/a/{i}"
            if cart.exists(p) and (k + i) % 3 == 0:
                v = cart.view(p)
                views.append((v, v.tobytes(order="A")))
        del views[:-12]
        k += 1


if __name__ == "__main__":
    main()
