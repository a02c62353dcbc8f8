"""numpy is the oracle: the same random index applied to a ``Dataset`` and to the
equivalent ndarray gives equal results or the same exception type (h5py's
``assertNumpyBehavior`` idea), for reads and for writes, on every layout:
contiguous, contiguous after copy-on-write (fragmented), and chunked.

Also a hypothesis state machine that drives a growable dataset with writes,
appends, resizes, commits, rollbacks and reopens against a plain ndarray model.

Scale with ``CARTRIDGE_ARRAY_EXAMPLES`` (default 60) and
``CARTRIDGE_STATEFUL_EXAMPLES`` (default 150, shared with test_stateful).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import cartridge

EXAMPLES = int(os.environ.get("CARTRIDGE_ARRAY_EXAMPLES", "60"))
STATEFUL = int(os.environ.get("CARTRIDGE_STATEFUL_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
LAYOUTS = ["contiguous", "fragmented", "chunked", "chunked-edge"]


@pytest.fixture(scope="module")
def cart(tmp_path_factory):
    c = cartridge.create(tmp_path_factory.mktemp("idx") / "a.cart", chunk_size=4096)
    yield c
    c.close()


def outcome(func):
    """``("ok", value)`` or ``("raise", exception type)``."""
    try:
        return "ok", func()
    except Exception as exc:  # noqa: BLE001 - the type is what we compare
        return "raise", type(exc)


def assert_same(ours, theirs):
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] == "raise":
        assert issubclass(ours[1], theirs[1]) or issubclass(theirs[1], ours[1]), (ours, theirs)
        return
    a, b = ours[1], theirs[1]
    assert type(a) is type(b) or (np.isscalar(a) and np.isscalar(b)), (type(a), type(b))
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def make(cart, layout: str, arr: np.ndarray, name: str) -> cartridge.Dataset:
    path = f"/{layout}/{name}"
    if layout in ("contiguous", "fragmented"):
        cart.write_array(path, arr)
        ds = cart.array(path)
        if layout == "fragmented" and arr.size:
            flat_first = (0,) * arr.ndim
            ds[flat_first] = arr[flat_first]  # unchanged value: nothing is copied
            ds[(slice(None),) * arr.ndim] = arr  # still nothing
            if arr.nbytes > 4096:
                ds[(-1,) * arr.ndim] = arr[(0,) * arr.ndim]
                arr[(-1,) * arr.ndim] = arr[(0,) * arr.ndim]
                ds[(-1,) * arr.ndim] = arr[(-1,) * arr.ndim]
        return ds
    chunks = tuple(max(1, (s + 1) // 2) for s in arr.shape) if layout == "chunked" else \
        tuple(3 for _ in arr.shape)
    ds = cart.create_dataset(path, arr.shape, arr.dtype, chunks=chunks,
                             maxshape=tuple(None for _ in arr.shape))
    ds[...] = arr
    return ds


SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=7)


@st.composite
def index_for(draw, shape):
    kind = draw(st.sampled_from(["basic", "int_array", "bool", "bad", "mixed"]))
    if kind == "basic":
        return draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True,
                                      allow_ellipsis=True))
    if kind == "int_array" and 0 not in shape:
        return draw(hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(
            min_dims=0, max_dims=2, max_side=4)))
    if kind in ("bool", "int_array"):
        k = draw(st.integers(1, len(shape)))
        return draw(hnp.arrays(np.bool_, shape[:k]))
    if kind == "mixed":
        n = shape[0]
        first = draw(st.lists(st.integers(-n - 1, n), max_size=4)) if n else []
        rest = draw(hnp.basic_indices(shape[1:], allow_ellipsis=False)) if len(shape) > 1 \
            else ()
        rest = rest if isinstance(rest, tuple) else (rest,)
        return (first, *rest)
    return draw(st.sampled_from([
        (0,) * (len(shape) + 1), shape[0], -shape[0] - 1, 1.5, "nofield",
        (Ellipsis, Ellipsis), [True], np.array([[0]]), (slice(None), [0, 1], [0]),
    ]))


@given(data=st.data())
@SETTINGS
def test_getitem_matches_numpy(cart, data):
    layout = data.draw(st.sampled_from(LAYOUTS))
    arr = data.draw(hnp.arrays(st.sampled_from([np.dtype("<i4"), np.dtype(">f8"),
                                                np.dtype([("a", "<i2"), ("b", "S3")])]),
                               SHAPES))
    ds = make(cart, layout, arr.copy(), "get")
    for _ in range(4):
        key = data.draw(index_for(arr.shape), label="key")
        assert_same(outcome(lambda k=key: ds[k]), outcome(lambda k=key: arr[k]))


@given(data=st.data())
@SETTINGS
def test_setitem_matches_numpy(cart, data):
    layout = data.draw(st.sampled_from(LAYOUTS))
    arr = data.draw(hnp.arrays(np.dtype("<i8"), SHAPES, elements=st.integers(-9, 9)))
    ds = make(cart, layout, arr.copy(), "set")
    for _ in range(3):
        key = data.draw(index_for(arr.shape), label="key")
        try:
            target_shape = np.shape(arr[key])
        except Exception:  # noqa: BLE001
            target_shape = ()
        value = data.draw(st.one_of(
            st.integers(-5, 5),
            hnp.arrays(np.int64, hnp.broadcastable_shapes(target_shape, max_dims=3)
                       if 0 not in target_shape else st.just(target_shape),
                       elements=st.integers(-5, 5)),
            hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, max_side=3),
                       elements=st.integers(-5, 5)),
        ), label="value")
        theirs = outcome(lambda k=key, v=value: arr.__setitem__(k, v))
        ours = outcome(lambda k=key, v=value: ds.__setitem__(k, v))
        assert ours[0] == theirs[0], (ours, theirs, key, value)
        if ours[0] == "raise":
            assert issubclass(ours[1], theirs[1]) or issubclass(theirs[1], ours[1])
        assert_same(("ok", ds[...]), ("ok", arr))


def test_setitem_copies_only_touched_chunks(cart):
    ds = cart.create_dataset("/cow/g", (100, 100), "<f8", chunks=(10, 10))
    ds[...] = 1.0
    cart.commit()
    catalog = cart.txn.catalog
    before = dict(catalog.chunks(catalog.get("/cow/g").file_id))
    ds[5, 5] = 2.0
    ds[0:10, 90:100] = 1.0  # same values: nothing copied
    after = dict(catalog.chunks(catalog.get("/cow/g").file_id))
    moved = [idx for idx in before if before[idx][0] != after[idx][0]]
    assert len(moved) == 1
    cart.write_array("/cow/c", np.zeros(100_000))
    cart.commit()
    fid = cart.txn.catalog.get("/cow/c").file_id
    before = dict(cart.txn.catalog.chunks(fid))
    cart.array("/cow/c")[50_000] = 1
    after = dict(cart.txn.catalog.chunks(fid))
    assert sum(before[i][0] != after[i][0] for i in before) == 1
    assert cart.verify().ok


class DatasetMachine(RuleBasedStateMachine):
    """A growable chunked dataset against a plain ndarray (committed and pending)."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "m.cart")
        self.cart = cartridge.create(self.path, chunk_size=4096)
        self.ds = self.cart.create_dataset("/d", (0, 3), "<i4", maxshape=(None, 3),
                                           chunks=(4, 2), fill_value=-7)
        self.cart.commit()
        self.model = np.zeros((0, 3), "<i4")
        self.durable = self.model.copy()
        self.views: list[tuple[np.ndarray, np.ndarray]] = []

    @rule(rows=st.integers(0, 6), seed=st.integers(0, 1 << 16))
    def append(self, rows, seed):
        values = np.random.default_rng(seed).integers(-100, 100, (rows, 3)).astype("<i4")
        self.ds.append(values)
        self.model = np.concatenate([self.model, values])

    @rule(n=st.integers(0, 30))
    def resize(self, n):
        self.ds.resize((n, 3))
        grown = np.full((n, 3), -7, "<i4")
        keep = min(n, len(self.model))
        grown[:keep] = self.model[:keep]
        self.model = grown

    @precondition(lambda self: len(self.model) > 0)
    @rule(data=st.data())
    def setitem(self, data):
        key = data.draw(hnp.basic_indices(self.model.shape, allow_newaxis=False))
        value = data.draw(st.integers(-1000, 1000))
        self.ds[key] = value
        self.model[key] = value

    @rule()
    def commit(self):
        self.cart.commit()
        self.durable = self.model.copy()

    @rule()
    def rollback(self):
        self.cart.rollback()
        self.model = self.durable.copy()

    @rule()
    def reopen(self):
        self.cart.close()
        self.durable = self.model.copy()
        self.cart = cartridge.open(self.path, "r+")
        self.ds = self.cart.array("/d")

    @rule(seed=st.integers(0, 1 << 16))
    def snapshot_view(self, seed):
        arr = np.random.default_rng(seed).integers(0, 9, 5000)
        self.cart.write_array(f"/v{seed % 3}", arr)
        self.views.append((self.cart.view(f"/v{seed % 3}"), arr))
        if len(self.views) > 4:
            self.views.pop(0)

    @invariant()
    def matches(self):
        got = self.ds[...]
        assert got.shape == self.model.shape and (got == self.model).all()
        for view, arr in self.views:
            assert (view == arr).all()

    def teardown(self):
        self.cart.close()  # commits
        self.durable = self.model
        with cartridge.open(self.path, "r") as c:
            assert c.verify().ok
            assert (c.array("/d")[...] == self.durable).all()
        self.views.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


TestDatasetMachine = DatasetMachine.TestCase
TestDatasetMachine.settings = settings(max_examples=max(10, STATEFUL // 3),
                                       stateful_step_count=25, deadline=None)
