"""Arrays: round trips over random dtypes, the string policy, the API surface.

Scale (``CARTRIDGE_TEST_SCALE``): 60 hypothesis examples per property.
"""

from __future__ import annotations

import subprocess
import sys

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given

import cartridge
from cartridge.arrayformat import decode_dtype, encode_dtype
from cartridge.testing import hypothesis_settings

SETTINGS = hypothesis_settings(60, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                          HealthCheck.too_slow])

SCALARS = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?"),
    hnp.complex_number_dtypes(endianness="?"),
    hnp.datetime64_dtypes(endianness="?"),
    hnp.timedelta64_dtypes(endianness="?"),
    hnp.byte_string_dtypes(endianness="?"),
    hnp.unicode_string_dtypes(endianness="?"),
)
DTYPES = st.one_of(SCALARS, hnp.array_dtypes(SCALARS, min_size=1, max_size=4),
                   hnp.nested_dtypes(SCALARS, max_leaves=6))


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-for-bit equality with identical dtype and shape."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@given(data=st.data())
@SETTINGS
def test_round_trip_random_dtypes_and_shapes(tmp_path_factory, data):
    dtype = data.draw(DTYPES, label="dtype")
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))
    arr = data.draw(hnp.arrays(dtype, shape), label="arr")
    if data.draw(st.booleans(), label="fortran"):
        arr = np.asfortranarray(arr)
    path = tmp_path_factory.mktemp("rt") / "a.cart"
    with cartridge.create(path) as c:
        c.write_array("/x/arr", arr, attrs={"note": "hi"})
        c.commit()
    with cartridge.open(path, "r") as c:
        v = c.view("/x/arr")
        assert same(v, arr)
        assert v.tobytes(order="A") == arr.tobytes(order="A")
        if arr.ndim > 1 and arr.flags.f_contiguous and not arr.flags.c_contiguous:
            assert v.flags.f_contiguous
        assert same(np.asarray(c.array("/x/arr")[...]), arr)
        assert c.array("/x/arr").attrs["note"] == "hi"
        assert c.verify().ok
        del v


@given(DTYPES)
@SETTINGS
def test_dtype_encoding_round_trips(dtype):
    back = decode_dtype(encode_dtype(dtype))
    assert back == dtype and back.itemsize == dtype.itemsize
    assert back.isalignedstruct == dtype.isalignedstruct


def test_edge_shapes(cart):
    cases = {
        "/zero_d": np.array(3.5, dtype=">f8"),
        "/empty": np.zeros((0, 3), "i2"),
        "/empty2": np.zeros((4, 0, 2), "U3"),
        "/fortran": np.asfortranarray(np.arange(24, dtype="<i4").reshape(2, 3, 4)),
        "/noncontig": np.arange(100)[::3],
        "/aligned": np.zeros(3, np.dtype([("a", "u1"), ("b", "<f8")], align=True)),
        "/sub": np.zeros(2, np.dtype([("m", "<f4", (2, 2)), ("n", "S2")])),
    }
    for path, arr in cases.items():
        cart.write_array(path, arr)
    cart.commit()
    for path, arr in cases.items():
        v = cart.view(path)
        assert same(v, arr), path
        assert not v.flags.writeable
    assert cart.view("/zero_d").ndim == 0
    assert cart.view("/fortran").flags.f_contiguous


def test_view_is_zero_copy_and_read_only(cart):
    arr = np.arange(1 << 20, dtype=np.float32)
    cart.write_array("/big", arr)
    cart.commit()
    v = cart.view("/big")
    assert np.shares_memory(v, cart.mapping)
    assert v.ctypes.data % 4096 == 0
    with pytest.raises(ValueError):
        v[0] = 1
    with pytest.raises(ValueError):
        v.flags.writeable = True
    derived = v[10:20]
    with pytest.raises(ValueError):
        derived[:] = 0


def test_object_and_variable_width_dtypes_raise_type_error(cart):
    with pytest.raises(TypeError, match="object"):
        cart.write_array("/o", np.array([1, "a"], dtype=object))
    with pytest.raises(TypeError, match="O"):
        cart.write_array("/o2", np.zeros(2, [("a", "i4"), ("b", "O")]))
    with pytest.raises(TypeError, match="variable-width"):
        cart.write_array("/t", np.array(["a", "bcd"], dtype=np.dtypes.StringDType()))
    with pytest.raises(TypeError):
        cart.create_dataset("/s0", (3,), "S0")
    assert not cart.exists("/o")


def test_string_policy_fixed_width_as_is(cart):
    s = np.array([b"", b"a\x00b", b"xyz"], dtype="S3")
    u = np.array(["", "héllo", "日本語"], dtype="<U5")
    ub = u.astype(">U5")
    cart.write_array("/s", s)
    cart.write_array("/u", u)
    cart.write_array("/ub", ub)
    cart.commit()
    assert same(cart.view("/s"), s)
    assert same(cart.view("/u"), u)
    assert same(cart.view("/ub"), ub) and cart.view("/ub").dtype.byteorder == ">"
    # fixed width: numpy's own rule, trailing NULs are not part of the value
    assert cart.view("/s")[1] == b"a\x00b"


def test_stat_list_walk_and_read_report_arrays(cart):
    cart.write_array("/d/a", np.zeros((3, 4), "<f4"))
    cart.create_dataset("/d/g", (0, 2), "i8", maxshape=(None, 2), chunks=(10, 2))
    cart.write("/d/plain", b"bytes")
    info = cart.stat("/d/a")
    assert info.is_array and info.dtype == np.dtype("<f4") and info.shape == (3, 4)
    assert info.kind == "file" and info.size == 48
    g = cart.stat("/d/g")
    assert g.shape == (0, 2) and g.chunks == (10, 2)
    plain = cart.stat("/d/plain")
    assert plain.dtype is None and plain.shape is None and not plain.is_array
    assert cart.list("/d") == ["/d/a", "/d/g", "/d/plain"]
    walked = dict(cart.walk("/d"))
    assert walked["/d/a"].shape == (3, 4)
    assert cart.read("/d/a") == np.zeros((3, 4), "<f4").tobytes()
    ds = cart.array("/d/g")
    ds.append(np.arange(6).reshape(3, 2))
    assert cart.read("/d/g") == np.arange(6, dtype="i8").tobytes()
    assert cart.read("/d/g", 8, 16) == np.arange(1, 3, dtype="i8").tobytes()


def test_byte_level_writes_to_arrays_are_refused(cart):
    cart.write_array("/a", np.arange(10))
    for call in (lambda: cart.append("/a", b"x"), lambda: cart.write_at("/a", 0, b"x"),
                 lambda: cart.truncate("/a", 3)):
        with pytest.raises(cartridge.IsAnArrayError, match="array"):
            call()
    cart.write("/a", b"now a plain file")  # replacing is fine
    assert cart.stat("/a").dtype is None
    with pytest.raises(cartridge.NotAnArrayError):
        cart.view("/a")
    with pytest.raises(cartridge.NotAnArrayError):
        cart.array("/a")
    with pytest.raises(cartridge.NotFoundError):
        cart.view("/missing")
    with pytest.raises(cartridge.IsADirectoryError):
        cart.mkdir("/dir") or cart.view("/dir")


def test_view_of_chunked_dataset_says_what_to_use(cart):
    ds = cart.create_dataset("/g", (100,), "f4", chunks=(10,))
    ds[:] = np.arange(100)
    with pytest.raises(cartridge.NotContiguousError, match=r"cart.array\('/g'\)\[...\]"):
        cart.view("/g")
    cart.write_array("/c", np.arange(100_000, dtype="f8"))
    cart.array("/c")[5] = -1  # copy-on-write of one chunk: no longer one extent
    with pytest.raises(ValueError, match=r"cart.array\('/c'\)\[...\]"):
        cart.view("/c")
    assert cart.array("/c")[5] == -1 and cart.array("/c")[99_999] == 99_999


LONG = "/" + "/".join(["p" * 200] * 4)


def test_attrs_persist_and_may_be_large(tmp_path):
    path = tmp_path / "a.cart"
    with cartridge.create(path) as c:
        ds = c.create_dataset("/a", (4,), "i4", attrs={"units": "m", "n": [1, 2]})
        ds.attrs["scale"] = 0.5
        big = {"blob": "x" * 100_000, "nested": {"k": list(range(100))}}
        c.write_array("/b", np.arange(3), attrs=big)
        c.write_array(LONG, np.arange(3), attrs={"k": "v" * 1500})
        with pytest.raises(TypeError):
            c.write_array("/bad", np.arange(3), attrs={"x": object()})
    with cartridge.open(path, "r+") as c:
        assert dict(c.array("/a").attrs) == {"units": "m", "n": [1, 2], "scale": 0.5}
        assert dict(c.array("/b").attrs) == big
        assert c.array(LONG).attrs["k"] == "v" * 1500
        del c.array("/b").attrs["blob"]
        c.array("/b").attrs["small"] = 1
        assert c.verify().ok
    with cartridge.open(path, "r") as c:
        assert dict(c.array("/b").attrs) == {"nested": {"k": list(range(100))}, "small": 1}
        assert c.verify().ok


def test_dataset_surface(cart):
    ds = cart.create_dataset("/g", (2, 3), "<i4", maxshape=(None, 3), fill_value=-1)
    assert (ds.shape, ds.dtype, ds.ndim, ds.size, ds.nbytes) == ((2, 3), np.dtype("<i4"), 2,
                                                                 6, 24)
    assert len(ds) == 2 and ds.maxshape == (None, 3) and ds.fillvalue == -1
    assert (np.asarray(ds) == -1).all()
    ds.append([7, 8, 9])
    ds.append(np.ones((2, 3)))
    assert ds.shape == (5, 3)
    assert ds[2].tolist() == [7, 8, 9]
    with pytest.raises(ValueError):
        ds.append(np.ones((2, 4)))
    with pytest.raises(ValueError, match="maxshape"):
        ds.resize((5, 4))
    ds.resize((1, 3))
    ds.resize((3, 3))
    assert ds[1:].tolist() == [[-1, -1, -1]] * 2  # cut-off data reads as fill when regrown
    fixed = cart.create_dataset("/fixed", (3,), "f8", fill_value=2.5)
    assert fixed[...].tolist() == [2.5] * 3
    assert np.shares_memory(cart.view("/fixed"), cart.mapping)
    with pytest.raises(TypeError, match="chunked"):
        fixed.resize((4,))
    rows = [r.tolist() for r in ds]
    assert len(rows) == 3
    s = cart.create_dataset("/scalar", (), "f4", fill_value=1)
    assert s[()] == 1 and s.shape == ()
    with pytest.raises(TypeError):
        len(s)
    rec = cart.create_dataset("/rec", (4,), [("x", "<f4"), ("y", "S2")], chunks=True)
    rec[1] = (1.5, b"ab")
    assert rec[1]["y"] == b"ab" and rec[...]["x"].tolist() == [0, 1.5, 0, 0]
    assert rec["x"].tolist() == [0, 1.5, 0, 0] and rec[["y"]].dtype.names == ("y",)
    assert rec.chunks == (4,)
    filled = cart.create_dataset("/filled", (5000, 3), [("a", "u1"), ("b", ">f8")],
                                 fill_value=(3, 2.5))
    assert filled[4999, 2].tolist() == (3, 2.5) and cart.view("/filled").shape == (5000, 3)
    assert (cart.view("/filled")["b"] == 2.5).all()
    with pytest.raises(TypeError, match="fill_value"):
        cart.create_dataset("/badfill", (3,), "i4", fill_value="x")
    assert repr(ds).startswith("<Dataset '/g'")


def test_auto_chunks_and_big_grid(cart):
    ds = cart.create_dataset("/g", (0, 1000), "f8", maxshape=(None, 1000), chunks=True)
    assert ds.chunks is not None and np.prod(ds.chunks) * 8 <= 256 * 1024
    with pytest.raises(ValueError, match="chunks"):
        cart.create_dataset("/h", (1 << 20,) * 8, "u1", chunks=(1,) * 8)


def test_cli_reports_arrays(tmp_path):
    path = tmp_path / "a.cart"
    with cartridge.create(path) as c:
        c.write_array("/arr", np.zeros((3, 4), "<f4"))
        c.write("/plain", b"x")
    out = subprocess.run([sys.executable, "-m", "cartridge.cli", "ls", "-l", str(path), "/"],
                         capture_output=True, text=True, check=True).stdout
    assert "float32" in out and "(3, 4)" in out
    info = subprocess.run([sys.executable, "-m", "cartridge.cli", "info", str(path), "/arr"],
                          capture_output=True, text=True, check=True).stdout
    assert "array" in info and "float32" in info and "(3, 4)" in info
    js = subprocess.run([sys.executable, "-m", "cartridge.cli", "ls", "--json", str(path)],
                        capture_output=True, text=True, check=True).stdout
    assert '"float32"' in js
