"""Per-chunk compression and encryption: round trips, random reads, stat, cache.

Scale (``CARTRIDGE_TEST_SCALE``): 25 hypothesis examples per round-trip
property.  The one large case stays at 50 MB at any scale.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

import cartridge
from cartridge.cache import ChunkCache
from cartridge.layout import DEFAULT_CHUNK_SIZE as CH
from cartridge.testing import hypothesis_settings

KEY = bytes(range(32))
BIG_MB = 50
CODECS = [None, "lz4", "zstd", "auto"]
SIZES = [0, 1, CH - 1, CH, CH + 1, 7 * CH + 123]


def payload(n: int, seed: int, kind: str = "text") -> bytes:
    """Compressible (structured text) or random bytes."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    words = np.array([b"alpha ", b"beta ", b"gamma ", b"delta ", b"0123 "], dtype=object)
    text = b"".join(words[rng.integers(0, 5, n // 5 + 1)])
    return text[:n]


def make(tmp_path, enc: bool, **kw) -> cartridge.Cartridge:
    return cartridge.create(tmp_path / "c.cart", overwrite=True, key=KEY if enc else None, **kw)


def reopen(tmp_path, enc: bool, mode: str = "r", **kw) -> cartridge.Cartridge:
    return cartridge.open(tmp_path / "c.cart", mode, key=KEY if enc else None, **kw)


@pytest.mark.parametrize("enc", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("size", SIZES)
def test_round_trip_sizes(tmp_path, codec, enc, size):
    """Every size round-trips through commit and reopen, whole and in random pieces."""
    data = payload(size, size, "text" if size % 2 else "random")
    with make(tmp_path, enc) as c:
        c.write("/d/f", data, compression=codec)
        assert c.read("/d/f") == data  # before commit
    rng = np.random.default_rng(size)
    with reopen(tmp_path, enc) as c:
        assert c.read("/d/f") == data
        info = c.stat("/d/f")
        assert info.size == size and info.compression == codec
        for _ in range(20):
            off = int(rng.integers(0, size + 2))
            n = int(rng.integers(0, 3 * CH))
            assert c.read("/d/f", off, n) == data[off : off + n]
        assert c.verify(data=True).ok


@hypothesis_settings(25,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(codec=st.sampled_from(CODECS), enc=st.booleans(),
       ops=st.lists(st.tuples(st.sampled_from(["write_at", "append", "truncate", "commit"]),
                              st.integers(0, 5 * CH), st.integers(0, 2 * CH)),
                    min_size=1, max_size=12),
       seed=st.integers(0, 2**16))
def test_partial_updates_match_a_model(tmp_path, codec, enc, ops, seed):
    """write_at / append / truncate on encoded files behave like a bytearray."""
    model = bytearray(payload(3 * CH + 77, seed))
    with make(tmp_path, enc) as c:
        c.write("/f", bytes(model), compression=codec)
        for i, (op, off, n) in enumerate(ops):
            chunk = payload(n, seed + i, "random" if i % 2 else "text")
            if op == "write_at":
                c.write_at("/f", off, chunk)  # like pwrite: writing nothing changes nothing
                if off > len(model) and n:
                    model.extend(bytes(off - len(model)))
                model[off : off + n] = chunk
            elif op == "append":
                c.append("/f", chunk)
                model += chunk
            elif op == "truncate":
                c.truncate("/f", off)
                del model[off:]
                model.extend(bytes(max(0, off - len(model))))
            else:
                c.commit()
            assert c.read("/f") == bytes(model)
    with reopen(tmp_path, enc) as c:
        assert c.read("/f") == bytes(model)
        assert c.verify(data=True).ok, c.verify().problems


def test_big_file_random_reads(tmp_path):
    """One large (50 MiB) zstd + AES-GCM file: whole and random reads after reopen."""
    data = payload(BIG_MB << 20, 7)
    with make(tmp_path, True) as c:
        c.write("/big", data, compression="zstd")
    rng = np.random.default_rng(1)
    with reopen(tmp_path, True) as c:
        info = c.stat("/big")
        assert info.size == len(data) and info.stored_size < len(data) // 2
        for _ in range(50):
            off = int(rng.integers(0, len(data)))
            n = int(rng.integers(1, 300_000))
            assert c.read("/big", off, n) == data[off : off + n]
        assert c.read("/big") == data


@pytest.mark.parametrize("enc", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("codec", ["lz4", "zstd"])
def test_random_4k_read_decodes_at_most_one_chunk(tmp_path, codec, enc):
    data = payload(40 * CH, 3)
    with make(tmp_path, enc) as c:
        c.write("/f", data, compression=codec)
    rng = np.random.default_rng(0)
    with reopen(tmp_path, enc, cache_size=0) as c:
        for _ in range(200):
            off = int(rng.integers(0, len(data) // 4096)) * 4096
            before = c.info().cache["decodes"]
            assert c.read("/f", off, 4096) == data[off : off + 4096]
            assert c.info().cache["decodes"] - before == 1


def test_auto_keeps_only_chunks_that_pay(tmp_path):
    """"auto" stores incompressible chunks raw and compressible ones compressed."""
    text, noise = payload(4 * CH, 1), payload(4 * CH, 2, "random")
    with make(tmp_path, False) as c:
        c.write("/mixed", text + noise, compression="auto")
        c.write("/noise", noise, compression="auto")
        codecs = [rec[4] for _i, rec in c.txn.catalog.chunks(c.txn.entry("/mixed").file_id)]
        assert codecs[:4] == [1] * 4 and codecs[4:] == [0] * 4
        assert c.stat("/noise").stored_size == len(noise)
        assert c.stat("/mixed").stored_size < len(text) // 2 + len(noise)
        assert c.read("/mixed") == text + noise


def test_container_default_and_stat(tmp_path):
    with make(tmp_path, False, compression="zstd", level=9) as c:
        c.write("/a", payload(300_000, 1))
        c.write("/b", payload(300_000, 1), compression=None)
        assert c.stat("/a").compression == "zstd" and c.stat("/b").compression is None
        assert c.stat("/a").stored_size < 300_000 // 3
        assert c.stat("/b").stored_size == 300_000
        info = c.info()
        assert info.compression == "zstd" and not info.encrypted
    with reopen(tmp_path, False, "r+") as c:
        c.write("/c", payload(300_000, 1))  # the default survives reopen (file header)
        assert c.stat("/c").compression == "zstd"


def test_open_file_with_compression(tmp_path):
    data = payload(500_000, 4)
    with make(tmp_path, True) as c:
        with c.open_file("/s", "wb", compression="lz4") as f:
            for i in range(0, len(data), 10_000):
                f.write(data[i : i + 10_000])
        assert c.stat("/s").compression == "lz4"
        with c.open_file("/s", "rb") as f:
            assert f.read() == data


def test_bad_options(tmp_path):
    with pytest.raises(ValueError, match="compression"):
        make(tmp_path, False, compression="gzip")
    with make(tmp_path, False) as c:
        with pytest.raises(ValueError, match="compression"):
            c.write("/x", b"1" * 5000, compression="brotli")
        with pytest.raises(ValueError, match="level"):
            c.write("/x", b"1" * 5000, compression="zstd", level=99)
        with pytest.raises(TypeError):
            c.write("/x", b"1" * 5000, compression=3)
    with pytest.raises(ValueError, match="32 bytes"):
        cartridge.create(tmp_path / "k.cart", key=b"short")
    with pytest.raises(ValueError, match="not both"):
        cartridge.create(tmp_path / "k.cart", key=KEY, password="x")


def test_is_raw_and_view_refusal(tmp_path):
    with make(tmp_path, False) as c:
        c.write("/raw", payload(100_000, 1), compression=None)
        c.write("/z", payload(100_000, 1), compression="zstd")
        c.write("/tiny", b"abc", compression=None)
        assert c.is_raw("/raw") and not c.is_raw("/z") and not c.is_raw("/tiny")
        c.require_raw("/raw")
        with pytest.raises(cartridge.EncodedDataError, match=r"cart\.array\('/z'\)"):
            c.require_raw("/z")
        with pytest.raises(ValueError, match="compressed"):
            c.require_raw("/z")
    with make(tmp_path, True) as c:
        c.write("/raw", payload(100_000, 1), compression=None)
        assert not c.is_raw("/raw")
        with pytest.raises(cartridge.EncodedDataError, match="encrypted"):
            c.require_raw("/raw")


@pytest.mark.parametrize("codec", [None, "zstd"])
def test_verify_reads_catches_a_flipped_data_byte(tmp_path, codec):
    """Plain container: a damaged chunk is caught by verify(data=True) and by verify_reads."""
    data = payload(5 * CH, 5, "random")
    with make(tmp_path, False) as c:
        c.write("/f", data, compression=codec)
        rec = dict(c.txn.catalog.chunks(c.txn.entry("/f").file_id))[2]
    raw = bytearray((tmp_path / "c.cart").read_bytes())
    raw[rec[0] * 4096 + 10] ^= 0x40
    (tmp_path / "c.cart").write_bytes(raw)
    with reopen(tmp_path, False, verify_reads=True) as c:
        assert c.read("/f", 0, CH) == data[:CH]  # untouched chunk
        with pytest.raises(cartridge.CorruptionError, match="chunk 2"):
            c.read("/f", 2 * CH + 100, 10)
        assert not c.verify(data=True).ok


def test_cache_hits_and_bypass(tmp_path):
    data = payload(8 * CH, 9)
    with make(tmp_path, False) as c:
        c.write("/z", data, compression="lz4")
        c.write("/raw", data, compression=None)
    with reopen(tmp_path, False, cache_size=4 * CH) as c:
        for _ in range(3):
            c.read("/z", 0, 100)
        c.read("/raw")
        stats = c.info().cache
        assert stats["hits"] == 2 and stats["misses"] == 1 and stats["decodes"] == 1
        c.read("/z")  # 8 chunks through a 4-chunk cache
        stats = c.info().cache
        assert stats["bytes"] <= 4 * CH and stats["entries"] <= 4
        assert set(stats) >= {"hits", "misses", "p", "bytes", "capacity"}


def test_chunk_cache_never_returns_a_stale_identity():
    cache = ChunkCache(1 << 20)
    cache.put((1, 0, 5, 111, 2), b"old")
    assert cache.get((1, 0, 5, 222, 3)) is None
    assert cache.get((1, 0, 5, 111, 2)) == b"old"
    with pytest.raises(ValueError):
        ChunkCache(-1)
