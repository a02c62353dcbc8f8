"""Junk arguments to every public call: a clear error from our hierarchy (or the
TypeError/ValueError it derives from), never another exception, and nothing
committed is lost."""

from __future__ import annotations

import math
import os

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given

import cartridge
from cartridge.testing import hypothesis_settings

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.text(max_size=40), st.binary(max_size=40), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sampled_from(["", "/", "//", "/a/../b", "a\x00", "/" + "x" * 300, "/ok", "/dir",
                     "/dir/file", "rb", "w", -1, 2**64, math.inf, b"/ok", object()]),
)
CALLS = {
    "write": 2, "read": 3, "append": 2, "truncate": 2, "write_at": 3, "delete": 1,
    "rename": 2, "exists": 1, "stat": 1, "list": 2, "mkdir": 2, "rmdir": 1,
    "open_file": 2, "set_metadata": 2,
}
ALLOWED = (cartridge.CartridgeError, TypeError, ValueError, FileNotFoundError,
           FileExistsError, IsADirectoryError, NotADirectoryError)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad") / "t.cart"
    with cartridge.create(path) as c:
        c.write("/dir/file", b"precious" * 1000)
        c.write("/ok", b"ok")
    cart = cartridge.open(path, "r+")
    yield cart
    cart.rollback()
    cart.close()
    with cartridge.open(path, "r") as r:
        assert r.read("/dir/file") == b"precious" * 1000
        assert r.verify().ok


@hypothesis_settings(300,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(CALLS)), args=st.lists(JUNK, min_size=0, max_size=3))
def test_junk_arguments(shared, name, args):
    try:
        result = getattr(shared, name)(*args)
        if name == "open_file":
            result.close()
    except ALLOWED:
        pass
    shared.rollback()
    assert shared.read("/dir/file") == b"precious" * 1000


@pytest.mark.parametrize("max_size", [-5, 0, 1000, 16383, 1.5, "big"])
def test_bad_max_size(tmp_path, max_size):
    with pytest.raises((ValueError, TypeError)):
        cartridge.create(tmp_path / "x.cart", max_size=max_size)
    assert not os.path.exists(tmp_path / "x.cart")


@pytest.mark.parametrize("chunk_size", [0, 100, 4097, 1 << 30])
def test_bad_chunk_size(tmp_path, chunk_size):
    with pytest.raises(ValueError):
        cartridge.create(tmp_path / "x.cart", chunk_size=chunk_size)
    assert not os.path.exists(tmp_path / "x.cart")
