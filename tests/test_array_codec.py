"""Arrays over the codec layer: compression policies, encryption, decode-on-touch.

Every array of an encrypted container, and every array written with a
compression policy, stores its chunks (contiguous byte chunks, N-d chunks, the
external attrs blob) encoded; reads decode only the chunks they touch and
``view`` refuses with :class:`EncodedDataError`.
"""

from __future__ import annotations

import numpy as np
import pytest

import cartridge
from cartridge.arrayformat import ATTRS_INDEX
from cartridge.errors import AuthenticationError, EncodedDataError, NotContiguousError
from cartridge.layout import CHUNK_ENCRYPTED, CODEC_NONE, PAGE_SIZE

CODECS = [None, "lz4", "zstd", "auto"]
SECRET = {"password": "array secret"}
STRUCT = np.dtype([("id", "<u4"), ("pos", [("x", "<f8"), ("y", "<f4")]), ("tag", "S5")])


def _open(path, mode="r", enc=False, **kw):
    return cartridge.open(path, mode, **(SECRET if enc else {}), **kw)


def _records(cart, path):
    fid = cart.txn.catalog.get(path).file_id
    return fid, dict(cart.txn.catalog.chunks(fid))


def _fill(tmp_path, codec, enc):
    """A container holding every layout, written with ``codec``; returns (path, expected)."""
    path = tmp_path / "a.cart"
    rng = np.random.default_rng(7)
    expect = {
        "/c": np.tile(np.arange(5000, dtype="<f8"), 30).reshape(300, 500),  # 18 byte chunks
        "/f": np.asfortranarray(rng.integers(0, 50, (40, 30)).astype(">i4")),
        "/s": np.zeros(1000, STRUCT),
        "/zero": np.array(3.5),
        "/empty": np.zeros((0, 4), "c16"),
    }
    expect["/s"]["id"] = np.arange(1000)
    expect["/s"]["tag"] = b"abc"
    with cartridge.create(path, **(SECRET if enc else {})) as cart:
        for p, a in expect.items():
            cart.write_array(p, a, compression=codec, attrs={"name": p})
        cart.write_array("/ext", np.arange(10), compression=codec, attrs={"blob": "x" * 5000})
        expect["/ext"] = np.arange(10)
        ds = cart.create_dataset("/ds", (0, 7), "<i8", maxshape=(None, 7), chunks=(16, 4),
                                 fill_value=-1, compression=codec)
        block = rng.integers(0, 1000, (50, 7))
        ds.append(block)
        ds.resize((45, 7))
        ds[3, 3] = 12345
        cart.commit()  # the rest in a second commit: old chunks stay in the first
        ds.append(block[:9])
        ds.resize((60, 9 - 2))
        exp = np.full((60, 7), -1, "<i8")
        exp[:45] = block[:45]
        exp[3, 3] = 12345
        exp[45:54] = block[:9]
        expect["/ds"] = exp
        filled = cart.create_dataset("/filled", (70_000,), "<i2", fill_value=9,
                                     compression=codec)
        filled[10:20] = 1
        expect["/filled"] = np.full(70_000, 9, "<i2")
        expect["/filled"][10:20] = 1
    return path, expect


@pytest.mark.parametrize("enc", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_every_layout(tmp_path, codec, enc):
    path, expect = _fill(tmp_path, codec, enc)
    encoded = enc or codec is not None
    with _open(path, "r+", enc) as cart:
        for p, a in expect.items():
            got = cart.array(p)[...]
            assert got.dtype == a.dtype and got.shape == a.shape, p
            assert got.tobytes() == a.tobytes(), p
            assert np.asarray(cart.array(p)).tobytes() == a.tobytes(), p
            assert cart.stat(p).compression == codec, p
            if a.ndim:
                assert cart.array(p)[1:3].tobytes() == a[1:3].tobytes(), p
        assert cart.array("/ext").attrs["blob"] == "x" * 5000
        assert cart.array("/c").attrs["name"] == "/c"
        assert cart.read("/c", 8, 16) == expect["/c"].tobytes()[8:24][:16]
        assert cart.read("/ds") == expect["/ds"].tobytes()
        assert cart.array("/s")["pos"]["x"].shape == (1000,)
        for p in ("/c", "/f", "/s", "/ext"):
            if encoded:
                with pytest.raises(EncodedDataError, match=r"cart\.array\("):
                    cart.view(p)
            else:
                assert cart.view(p).tobytes() == expect[p].tobytes()
        for p in ("/c", "/ds"):  # every stored chunk is encoded as its policy says
            _fid, recs = _records(cart, p)
            assert recs
            for rec in recs.values():
                assert bool(rec[5] & CHUNK_ENCRYPTED) == enc
                if codec in ("lz4", "zstd") and p == "/c":
                    assert rec[4] != CODEC_NONE
        # writes after reopen keep the policy
        cart.array("/c")[0, :3] = -1
        cart.array("/ds").append(np.zeros((2, 7), "<i8"))
        cart.commit()
        assert cart.verify(data=True).ok
    with _open(path, "r", enc) as cart:
        exp_c = expect["/c"].copy()
        exp_c[0, :3] = -1
        assert cart.array("/c")[...].tobytes() == exp_c.tobytes()
        assert cart.array("/ds").shape == (62, 7)
        assert cart.is_raw("/c") is not encoded


def test_container_default_and_override(tmp_path):
    path = tmp_path / "d.cart"
    a = np.zeros(100_000)
    with cartridge.create(path, compression="zstd") as cart:
        cart.write_array("/default", a)
        cart.write_array("/raw", a, compression=None)
        cart.write_array("/high", a, compression="zstd", level=19)
        ds = cart.create_dataset("/ds", (100, 100), chunks=(10, 10))
        ds[...] = 1.0
        with pytest.raises(ValueError):
            cart.write_array("/bad", a, compression="zstd", level=99)
        with pytest.raises(ValueError):
            cart.create_dataset("/bad", (3,), compression="brotli")
        assert cart.stat("/default").compression == "zstd"
        assert cart.stat("/default").stored_size < a.nbytes // 20
        assert cart.stat("/ds").compression == "zstd"
        assert cart.stat("/raw").compression is None
        assert np.shares_memory(cart.view("/raw"), cart.mapping)  # raw: one extent, mapped
        with pytest.raises(EncodedDataError):
            cart.view("/default")
        cart.create_dataset("/rawds", (10,), chunks=(5,), compression=None)
        with pytest.raises(NotContiguousError):  # raw chunked: the old error
            cart.view("/rawds")
        assert not isinstance(EncodedDataError("x"), NotContiguousError)


def test_slicing_decodes_only_touched_chunks(tmp_path):
    path = tmp_path / "s.cart"
    big = np.arange(1_000_000, dtype="<f8")  # 8 MB: 123 byte chunks of 64 KiB
    grid = np.arange(100 * 100, dtype="<i4").reshape(100, 100)
    with cartridge.create(path, password="pw", compression="lz4") as cart:
        cart.write_array("/big", big)
        cart.create_dataset("/grid", (100, 100), "<i4", chunks=(10, 10))[...] = grid
    with cartridge.open(path, "r", password="pw", cache_size=0) as cart:

        def decodes(fn):
            before = cart.info()["cache"]["decodes"]
            out = fn()
            return out, cart.info()["cache"]["decodes"] - before

        out, n = decodes(lambda: cart.array("/big")[1000:1010])
        assert (out == big[1000:1010]).all() and n == 1
        out, n = decodes(lambda: cart.array("/big")[8191:8193])  # straddles two chunks
        assert (out == big[8191:8193]).all() and n == 2
        out, n = decodes(lambda: cart.array("/grid")[55, 55])
        assert out == grid[55, 55] and n == 1
        out, n = decodes(lambda: cart.array("/grid")[5:15, 5:15])
        assert (out == grid[5:15, 5:15]).all() and n == 4
        out, n = decodes(lambda: cart.array("/grid")[0:90, 0:90])  # > 64 cells: a scan
        assert (out == grid[:90, :90]).all() and n == 81
        out, n = decodes(lambda: cart.read("/big", 8 * 500_000, 8))
        assert out == big[500_000:500_001].tobytes() and n == 1


def test_raw_scan_of_encrypted_container_finds_no_array_bytes(tmp_path):
    path = tmp_path / "e.cart"
    marker = b"ARRAY-PLAINTEXT!"
    contig = np.frombuffer(marker * 20_000, "S16")
    name = "secret_array_name_xyz"
    with cartridge.create(path, password="pw") as cart:
        cart.write_array(f"/{name}", contig, compression=None,
                         attrs={"note": "ATTRS-PLAINTEXT-" * 400})
        ds = cart.create_dataset(f"/{name}_ds", (64,), "S16", chunks=(16,))
        ds[...] = marker
        cart.create_dataset(f"/{name}_fill", (5000,), "S16", fill_value=marker)
        cart.commit()
        assert cart.array(f"/{name}").attrs["note"].startswith("ATTRS")
    raw = path.read_bytes()
    for needle in (marker, b"ATTRS-PLAINTEXT", name.encode(), b"S16"):
        assert needle not in raw, needle
    with cartridge.open(path, "r", password="pw") as cart:
        assert cart.array(f"/{name}")[...].tobytes() == contig.tobytes()
        assert (cart.array(f"/{name}_fill")[...] == marker).all()
        assert cart.verify(data=True).ok


@pytest.mark.parametrize("target", ["contiguous", "chunked", "attrs"])
def test_flipped_byte_in_encrypted_array_chunk_is_refused(tmp_path, target):
    path = tmp_path / "x.cart"
    with cartridge.create(path, password="pw") as cart:
        cart.write_array("/c", np.arange(50_000, dtype="<i8"), attrs={"b": "q" * 5000})
        cart.create_dataset("/d", (40, 40), "<f4", chunks=(8, 8))[...] = 2.5
        p, idx = {"contiguous": ("/c", 2), "chunked": ("/d", 0),
                  "attrs": ("/c", ATTRS_INDEX)}[target]
        fid, recs = _records(cart, p)
        page, _n, _length, stored = recs[idx][:4]
    with open(path, "r+b") as f:
        f.seek(page * PAGE_SIZE + stored // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x20]))
    with cartridge.open(path, "r", password="pw") as cart:
        with pytest.raises(AuthenticationError):
            if target == "contiguous":
                cart.array("/c")[...]
            elif target == "chunked":
                cart.array("/d")[0:4, 0:4]
            else:
                dict(cart.array("/c").attrs)
        if target == "contiguous":  # other chunks still read, untouched by the damage
            assert (cart.array("/c")[:100] == np.arange(100)).all()
        assert not cart.verify(data=True).ok


def test_compact_and_copy_keep_encoded_arrays(tmp_path):
    path = tmp_path / "k.cart"
    with cartridge.create(path, password="pw") as cart:
        cart.write("/pad", b"p" * 500_000)
        cart.write_array("/a", np.arange(200_000, dtype="<i4"), compression="zstd")
        cart.create_dataset("/d", (30, 30), "<u2", chunks=(7, 7), compression="lz4")[...] = 3
        cart.commit()
        cart.delete("/pad")
        cart.commit()
        cart.compact()
        assert cart.verify(data=True).ok
        assert (cart.array("/a")[...] == np.arange(200_000)).all()
        assert (cart.array("/d")[...] == 3).all()
        cart.copy(tmp_path / "copy.cart")
    with cartridge.open(tmp_path / "copy.cart", "r", password="pw") as out:
        assert out.info().encrypted  # a copy is as sealed as its source
        assert out.stat("/a").compression == "zstd" and out.stat("/d").compression == "lz4"
        assert (out.array("/a")[...] == np.arange(200_000)).all()
        assert (out.array("/d")[...] == 3).all()


def test_rekey_reseals_array_chunks(tmp_path):
    path = tmp_path / "r.cart"
    with cartridge.create(path, password="old") as cart:
        cart.write_array("/a", np.arange(30_000, dtype="<i8"), compression="zstd",
                         attrs={"b": "k" * 5000})
        cart.create_dataset("/d", (20, 20), "<f8", chunks=(6, 6))[...] = 1.5
        cart.commit()
        before = _records(cart, "/d")[1]
        cart.rekey(new_password="new")
        after = _records(cart, "/d")[1]
        assert all(after[i][0] != before[i][0] for i in before)  # every block rewritten
    with pytest.raises(cartridge.WrongKeyError):
        cartridge.open(path, "r", password="old")
    with cartridge.open(path, "r", password="new") as cart:
        assert (cart.array("/a")[...] == np.arange(30_000)).all()
        assert cart.array("/a").attrs["b"] == "k" * 5000
        assert (cart.array("/d")[...] == 1.5).all()
        assert cart.verify(data=True).ok
