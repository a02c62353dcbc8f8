"""numpy is the oracle: the same random index applied to a ``Dataset`` and to the
equivalent ndarray gives equal results or the same exception type (h5py's
``assertNumpyBehavior`` idea), for reads and for writes, on every layout:
contiguous, contiguous after copy-on-write (fragmented), and chunked.

Also the kit's :class:`~cartridge.testing.stateful.DatasetMachine`, which
drives a growable dataset with writes, appends, resizes, commits, rollbacks
and reopens against a plain ndarray model.

Scale (``CARTRIDGE_TEST_SCALE``): 60 examples per indexing test, 50 for the
state machine.
"""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given

import cartridge
from cartridge.testing import hypothesis_settings
from cartridge.testing.stateful import DatasetMachine

SETTINGS = hypothesis_settings(60, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                          HealthCheck.too_slow])
LAYOUTS = ["contiguous", "fragmented", "chunked", "chunked-edge"]


@pytest.fixture(scope="module")
def cart_options():
    """``module_cart`` (the kit's shared container) with 4 KiB chunks: small arrays span many."""
    return {"chunk_size": 4096}


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
def test_getitem_matches_numpy(module_cart, data):
    layout = data.draw(st.sampled_from(LAYOUTS))
    arr = data.draw(hnp.arrays(st.sampled_from([np.dtype("<i4"), np.dtype(">f8"),
                                                np.dtype([("a", "<i2"), ("b", "S3")])]),
                               SHAPES))
    ds = make(module_cart, layout, arr.copy(), "get")
    for _ in range(4):
        key = data.draw(index_for(arr.shape), label="key")
        assert_same(outcome(lambda k=key: ds[k]), outcome(lambda k=key: arr[k]))


@given(data=st.data())
@SETTINGS
def test_setitem_matches_numpy(module_cart, data):
    layout = data.draw(st.sampled_from(LAYOUTS))
    arr = data.draw(hnp.arrays(np.dtype("<i8"), SHAPES, elements=st.integers(-9, 9)))
    ds = make(module_cart, layout, arr.copy(), "set")
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


def test_setitem_copies_only_touched_chunks(module_cart):
    cart = module_cart
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


TestDatasetMachine = DatasetMachine.TestCase
TestDatasetMachine.settings = hypothesis_settings(50, stateful_step_count=25)
