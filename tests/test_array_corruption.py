"""Corruption of arrays: damaged bytes give a clear error (or a verify report),
never garbage, a crash or a hang."""

from __future__ import annotations

import os

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

import cartridge
from cartridge.arrayformat import decode_desc, decode_dtype
from cartridge.testing import hypothesis_settings


@given(st.binary(max_size=200))
@hypothesis_settings(300)
def test_garbage_descriptors_raise_corruption_error(raw):
    for decode in (decode_desc, decode_dtype):
        try:
            decode(raw)
        except cartridge.CorruptionError:
            pass


@given(st.data())
@hypothesis_settings(100)
def test_flipped_descriptor_bytes_never_crash(data):
    desc = cartridge.arrayformat.ArrayDesc(
        np.dtype([("a", "<f4"), ("b", [("c", "S3")], (2,))]), (3, 4), "C", 1, 0, (None, 4),
        (2, 2), b"", b'{"k":1}')
    raw = bytearray(desc.encode())
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] ^= data.draw(st.integers(1, 255))
    try:
        decode_desc(bytes(raw))
    except cartridge.CorruptionError:
        pass


def build(path):
    arr = np.arange(300_000, dtype="<f8")
    with cartridge.create(path) as cart:
        cart.write_array("/a", arr)
        cart.commit()
        page = (cart.view("/a").ctypes.data - cart.mapping.ctypes.data) // 4096
    return arr, page


def test_flipped_data_byte_is_reported_by_verify(tmp_path):
    path = tmp_path / "a.cart"
    _arr, page = build(path)
    with open(path, "r+b") as f:
        f.seek(page * 4096 + 100_000)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x40]))
    with cartridge.open(path, "r") as cart:
        report = cart.verify(data=True)
        assert not report.ok
        assert any("/a" in p and "checksum" in p for p in report.problems), report.problems
        assert cart.verify(data=False).ok  # the structure is intact; only data is damaged


def test_truncated_extent_is_a_clear_error(tmp_path):
    path = tmp_path / "a.cart"
    _arr, page = build(path)
    os.truncate(path, (page + 10) * 4096)
    # Either the commit's catalog pages (written after the extent) are gone and
    # the container opens at the older commit, without /a, or the extent is
    # found out of bounds: a clear error either way, never a SIGBUS.
    with pytest.raises((cartridge.CorruptionError, cartridge.NotFoundError)):
        with cartridge.open(path, "r") as cart:
            cart.view("/a")
