"""Unit tests of the public file API: behaviour, errors and edge cases."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import cartridge
from cartridge.layout import PAGE_SIZE


# ----------------------------------------------------------------- create/open
def test_new_container_is_at_most_16k(tmp_path):
    path = tmp_path / "new.cart"
    cartridge.create(path).close()
    assert os.path.getsize(path) <= 16 * 1024
    with cartridge.open(path, "r") as c:
        assert c.list("/") == []
        assert c.verify().ok


def test_create_refuses_existing_unless_overwrite(tmp_path):
    path = tmp_path / "x.cart"
    with cartridge.create(path) as c:
        c.write("/a", b"1")
    with pytest.raises(FileExistsError):
        cartridge.create(path)
    with cartridge.create(path, overwrite=True) as c:
        assert not c.exists("/a")


def test_open_missing_and_modes(tmp_path):
    with pytest.raises(cartridge.NotFoundError):
        cartridge.open(tmp_path / "missing.cart")
    with pytest.raises(FileNotFoundError):
        cartridge.open(tmp_path / "missing.cart", "r")
    with pytest.raises(ValueError):
        cartridge.open(tmp_path / "x.cart", "w")
    with cartridge.open(tmp_path / "a.cart", "a") as c:
        c.write("/f", b"made by mode a")
    with cartridge.open(tmp_path / "a.cart", "a") as c:
        assert c.read("/f") == b"made by mode a"


def test_not_a_container(tmp_path):
    junk = tmp_path / "junk.cart"
    junk.write_bytes(b"hello, I am not a container" * 1000)
    with pytest.raises(cartridge.FormatError):
        cartridge.open(junk, "r")
    empty = tmp_path / "empty.cart"
    empty.write_bytes(b"")
    with pytest.raises(cartridge.FormatError):
        cartridge.open(empty, "r")


# ---------------------------------------------------------------------- paths
@pytest.mark.parametrize("given, canonical", [
    ("a/b", "/a/b"), ("/a//b///c/", "/a/b/c"), ("//x", "/x"), ("/é/ü", "/é/ü"),
])
def test_path_normalization(cart, given, canonical):
    cart.write(given, b"x")
    assert cart.exists(canonical)
    assert cart.list("/", recursive=True)[-1] == canonical


@pytest.mark.parametrize("bad", ["/a/../b", "/./a", "/a/.", "a\x00b", "/" + "x" * 256,
                                 "/".join(["/abcdefgh"] * 120), 42, b"/bytes"])
def test_bad_paths_rejected(cart, bad):
    with pytest.raises(cartridge.InvalidPathError) as info:
        cart.write(bad, b"x")
    assert isinstance(info.value, ValueError)


# ----------------------------------------------------------------- read/write
@pytest.mark.parametrize("size", [0, 1, 1536, 1537, PAGE_SIZE - 1, PAGE_SIZE, PAGE_SIZE + 1,
                                  65535, 65536, 65537, 1_000_003])
def test_roundtrip_sizes(cart, size):
    data = os.urandom(size)
    cart.write("/d/f", data)
    assert cart.read("/d/f") == data
    cart.commit()
    assert cart.read("/d/f") == data
    assert cart.stat("/d/f").size == size
    assert cart.read("/d/f", 7, 100) == data[7:107]
    assert cart.read("/d/f", size + 10) == b""


def test_bytes_like_inputs(cart):
    arr = np.arange(1000, dtype=np.int32)
    cart.write("/arr", arr)
    assert cart.read("/arr") == arr.tobytes()
    cart.write("/mv", memoryview(b"abc"))
    cart.write("/ba", bytearray(b"def"))
    cart.write("/strided", np.arange(10, dtype=np.uint8)[::2])
    assert cart.read("/strided") == bytes([0, 2, 4, 6, 8])
    with pytest.raises(TypeError):
        cart.write("/s", "text is not bytes")
    with pytest.raises(TypeError):
        cart.write("/s", 12)


def test_read_arguments(cart):
    cart.write("/f", b"0123456789")
    with pytest.raises(ValueError):
        cart.read("/f", -1)
    with pytest.raises(ValueError):
        cart.read("/f", 0, -5)
    with pytest.raises(TypeError):
        cart.read("/f", 1.5)
    assert cart.read("/f", 3) == b"3456789"
    assert cart.read("/f", 3, 0) == b""


def test_append_and_truncate(cart):
    cart.append("/log", b"a" * 1000)
    cart.append("/log", b"b" * 2000)  # crosses the inline limit
    cart.append("/log", b"c" * 70000)  # crosses a chunk boundary
    expected = b"a" * 1000 + b"b" * 2000 + b"c" * 70000
    assert cart.read("/log") == expected
    cart.truncate("/log", 500)
    assert cart.read("/log") == expected[:500]
    cart.truncate("/log", 200_000)
    assert cart.read("/log") == expected[:500] + b"\0" * 199_500
    cart.commit()
    assert cart.verify().ok


def test_write_at_sparse(cart):
    cart.write("/sparse", b"")
    cart.write_at("/sparse", 1_000_000, b"end")
    data = cart.read("/sparse")
    assert len(data) == 1_000_003 and data[:1_000_000] == b"\0" * 1_000_000
    cart.commit()
    assert cart.info().used_pages < 10 + 4  # the hole takes no pages


def test_errors_are_typed(cart):
    cart.write("/dir/file", b"x")
    with pytest.raises(cartridge.NotFoundError) as e:
        cart.read("/nope")
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, cartridge.CartridgeError)
    with pytest.raises(IsADirectoryError):
        cart.read("/dir")
    with pytest.raises(IsADirectoryError):
        cart.write("/dir", b"x")
    with pytest.raises(NotADirectoryError):
        cart.write("/dir/file/child", b"x")
    with pytest.raises(FileExistsError):
        cart.mkdir("/dir")
    cart.mkdir("/dir", exist_ok=True)
    with pytest.raises(cartridge.DirectoryNotEmptyError) as e:
        cart.rmdir("/dir")
    assert isinstance(e.value, OSError)
    with pytest.raises(IsADirectoryError):
        cart.delete("/dir")
    with pytest.raises(NotADirectoryError):
        cart.rmdir("/dir/file")
    with pytest.raises(cartridge.InvalidPathError):
        cart.rename("/dir", "/dir/inside")
    with pytest.raises(FileNotFoundError):
        cart.delete("/nope")
    with pytest.raises(FileNotFoundError):
        cart.mkdir("/p/q/r", parents=False)


def test_mkdir_rmdir_rename(cart):
    cart.mkdir("/a/b/c")
    assert cart.list("/", recursive=True) == ["/a", "/a/b", "/a/b/c"]
    cart.write("/a/b/c/f1", b"1")
    cart.write("/a/b/f2", b"2" * 5000)
    cart.rename("/a/b", "/z/y")
    assert cart.list("/", recursive=True) == ["/a", "/z", "/z/y", "/z/y/c", "/z/y/c/f1", "/z/y/f2"]
    assert cart.read("/z/y/f2") == b"2" * 5000
    cart.write("/other", b"o")
    cart.rename("/other", "/z/y/f2")  # replaces a file
    assert cart.read("/z/y/f2") == b"o"
    cart.rmdir("/a")
    cart.commit()
    report = cart.verify()
    assert report.ok and report.files == 2 and report.dirs == 3


def test_listing_semantics(cart):
    for p in ["/data/a.bin", "/data/ab.bin", "/data/b.bin", "/data/sub/c.bin", "/data.txt",
              "/data0"]:
        cart.write(p, b"x")
    assert cart.list("/") == ["/data", "/data.txt", "/data0"]
    assert cart.list("/data") == ["/data/a.bin", "/data/ab.bin", "/data/b.bin", "/data/sub"]
    assert cart.list("/data", recursive=True)[-1] == "/data/sub/c.bin"
    assert cart.list("/data/a") == ["/data/a.bin", "/data/ab.bin"]  # name prefix
    assert cart.list("/data/b.bin") == ["/data/b.bin"]
    assert cart.list("/data/zzz") == []
    with pytest.raises(FileNotFoundError):
        cart.list("/nodir/x")
    walked = dict(cart.walk("/data"))
    assert walked["/data/sub"].kind == "dir" and walked["/data/a.bin"].size == 1


def test_stat_and_metadata(cart):
    before = time.time()
    cart.write("/f", b"abc", metadata={"unit": "m/s", "n": 3, "ok": True, "x": 1.5,
                                       "raw": b"\x00\xff", "none": None}, mode=0o600)
    info = cart.stat("/f")
    assert info.kind == "file" and info.size == 3 and info.mode == 0o600
    assert info.metadata == {"unit": "m/s", "n": 3, "ok": True, "x": 1.5, "raw": b"\x00\xff",
                             "none": None}
    assert before - 1 <= info.mtime <= time.time() + 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.size = 4
    cart.write("/f", b"abcd")  # metadata kept when not given
    assert cart.stat("/f").metadata["unit"] == "m/s"
    cart.set_metadata("/f", {"v": 2})
    assert cart.stat("/f").metadata == {"v": 2}
    with pytest.raises(cartridge.MetadataError):
        cart.write("/g", b"", metadata={"obj": object()})
    with pytest.raises(cartridge.MetadataError):
        cart.write("/g", b"", metadata={"big": "x" * 5000})
    with pytest.raises(ValueError):
        cart.write("/g", b"", metadata={1: 2})
    assert cart.stat("/").kind == "dir"


def test_metadata_on_big_inline_converts(cart):
    cart.write("/f", b"q" * 1500)
    cart.set_metadata("/f", {"k": "v" * 600})
    assert cart.read("/f") == b"q" * 1500
    cart.commit()
    assert cart.verify().ok


# ----------------------------------------------------------- transactions
def test_commit_rollback_close(tmp_path):
    path = tmp_path / "t.cart"
    c = cartridge.create(path)
    c.write("/kept", b"1")
    c.commit()
    c.write("/dropped", b"2")
    c.delete("/kept")
    c.rollback()
    assert c.list("/") == ["/kept"]
    c.write("/on-close", b"3")
    c.close()
    c.close()  # idempotent
    with pytest.raises(cartridge.ClosedError):
        c.read("/kept")
    with cartridge.open(path, "r") as r:
        assert r.list("/") == ["/kept", "/on-close"]


def test_context_manager_commits_or_rolls_back(tmp_path):
    path = tmp_path / "t.cart"
    with cartridge.create(path) as c:
        c.write("/a", b"a")
    with pytest.raises(RuntimeError):
        with cartridge.open(path) as c:
            c.write("/b", b"b")
            raise RuntimeError("boom")
    with cartridge.open(path, "r") as c:
        assert c.list("/") == ["/a"]


def test_read_only_handle(tmp_path):
    path = tmp_path / "t.cart"
    with cartridge.create(path) as c:
        c.write("/a", b"a")
    with cartridge.open(path, "r") as r:
        with pytest.raises(cartridge.ReadOnlyError) as e:
            r.write("/b", b"b")
        assert isinstance(e.value, PermissionError)
        assert r.read("/a") == b"a"


def test_reader_sees_each_new_commit(tmp_path):
    path = tmp_path / "t.cart"
    w = cartridge.create(path)
    r = cartridge.open(path, "r")
    assert r.list("/") == []
    w.write("/a", b"1")
    assert r.list("/") == []  # not committed yet
    w.commit()
    assert r.read("/a") == b"1"
    w.write("/big", os.urandom(5_000_000))  # grows the file
    w.commit()
    assert len(r.read("/big")) == 5_000_000
    r.close()
    w.close()


# ---------------------------------------------------------------- locking
def test_second_writer_is_refused(tmp_path):
    path = tmp_path / "t.cart"
    w = cartridge.create(path)
    t0 = time.monotonic()
    with pytest.raises(cartridge.LockedError) as e:
        cartridge.open(path, "r+")
    assert isinstance(e.value, BlockingIOError)
    assert time.monotonic() - t0 < 1
    t0 = time.monotonic()
    with pytest.raises(cartridge.LockedError):
        cartridge.open(path, "r+", timeout=0.3)
    assert time.monotonic() - t0 >= 0.3
    with cartridge.open(path, "r") as r:  # readers always work
        assert r.list("/") == []
    w.close()
    with cartridge.open(path, "r+") as again:
        again.write("/ok", b"")


def test_writer_lock_across_processes(tmp_path):
    path = tmp_path / "t.cart"
    with cartridge.create(path) as w:
        w.write("/a", b"x")
        w.commit()
        code = textwrap.dedent(f"""
            import cartridge, sys
            try:
                cartridge.open({str(path)!r}, "r+")
            except cartridge.LockedError as e:
                print("locked", e)
                sys.exit(3)
            sys.exit(0)
        """)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 3, proc.stderr
        assert "open for writing" in proc.stdout


# -------------------------------------------------------------- space
def test_max_size_keeps_last_commit(tmp_path):
    path = tmp_path / "t.cart"
    c = cartridge.create(path, max_size=1 << 20)
    c.write("/small", b"s" * 100_000)
    c.commit()
    with pytest.raises(cartridge.ContainerFullError) as e:
        c.write("/huge", b"h" * (2 << 20))
    assert isinstance(e.value, OSError)
    assert c.read("/small") == b"s" * 100_000
    assert not c.exists("/huge")
    c.write("/fits", b"f" * 10_000)
    c.commit()
    c.close()
    assert os.path.getsize(path) <= 1 << 20
    with cartridge.open(path, "r") as r:
        assert r.read("/fits") == b"f" * 10_000
        assert r.verify().ok


def test_growth_doubles_and_space_is_reused(cart):
    sizes = []
    for i in range(6):
        cart.write(f"/f{i}", os.urandom(100_000))
        cart.commit()
        sizes.append(os.path.getsize(cart.path))
    assert all(b in (a, 2 * a) or b <= a + (1 << 30) for a, b in zip(sizes, sizes[1:]))
    for _round in range(30):
        for i in range(6):
            cart.write(f"/f{i}", os.urandom(100_000))
        cart.commit()
    assert os.path.getsize(cart.path) <= 2 * sizes[-1]
    assert cart.verify().ok


def test_large_file_is_one_extent(cart):
    cart.write("/big", os.urandom(8 << 20))
    recs = [r for _i, r in cart.txn.catalog.chunks(cart.txn.entry("/big").file_id)]
    starts = [r[0] for r in recs]
    assert starts == list(range(starts[0], starts[0] + 16 * len(recs), 16))


def test_info_reports_fragmentation(cart):
    for i in range(40):
        cart.write(f"/f{i:02d}", b"x" * 70_000)
    cart.commit()
    for i in range(0, 40, 2):
        cart.delete(f"/f{i:02d}")
    cart.commit()
    cart.commit()
    info = cart.info()
    assert info.file_count == 20 and info.generation >= 3
    assert info.free_runs > 1 and 0 < info.fragmentation < 1
    assert info.free > 0 and info.size == os.path.getsize(cart.path)
    assert info["free"] == info.free and info.as_dict()["generation"] == info.generation
    with pytest.raises(KeyError):
        info["nonsense"]


# --------------------------------------------------------------- file objects
def test_open_file_streams(cart):
    payload = os.urandom(3_000_000)
    with cart.open_file("/stream.bin", "wb") as f:
        for i in range(0, len(payload), 100_000):
            f.write(payload[i : i + 100_000])
    assert cart.read("/stream.bin") == payload
    with cart.open_file("/stream.bin", "rb") as f:
        assert f.read(10) == payload[:10]
        f.seek(-5, os.SEEK_END)
        assert f.read() == payload[-5:]
        f.seek(1_000_000)
        buf = bytearray(1000)
        assert f.readinto(buf) == 1000 and bytes(buf) == payload[1_000_000:1_001_000]
        assert f.tell() == 1_001_000
    with cart.open_file("/stream.bin", "r+b") as f:
        f.seek(10)
        f.write(b"HELLO")
    with cart.open_file("/stream.bin", "ab") as f:
        f.write(b"TAIL")
    expected = payload[:10] + b"HELLO" + payload[15:] + b"TAIL"
    assert cart.read("/stream.bin") == expected
    with pytest.raises(FileNotFoundError):
        cart.open_file("/missing", "rb")
    with pytest.raises(ValueError):
        cart.open_file("/stream.bin", "w")
    cart.commit()
    assert cart.verify().ok


# ---------------------------------------------------------- commit protocol
def test_torn_single_sync_commit_falls_back(tmp_path):
    """A single-sync commit whose listed pages did not reach disk is rejected."""
    path = tmp_path / "t.cart"
    with cartridge.create(path) as c:
        c.write("/a", b"first")
        c.commit()
        gen_before = c.generation
        c.write("/a", b"second")
        c.commit()
        meta = c.txn.meta
        assert int(meta["commit_flags"]) & 1
        victim = int(meta["sync_pages"][0])
    with open(path, "r+b") as f:
        f.seek(victim * PAGE_SIZE + 100)
        f.write(b"\xde\xad")
    with cartridge.open(path, "r") as r:
        assert r.generation == gen_before
        assert r.read("/a") == b"first"
        problems = r.verify().problems
        assert len(problems) == 1 and "torn single-sync" in problems[0]
    with cartridge.open(path, "r+") as w:  # the next commit overwrites the torn slot
        w.write("/b", b"new")
    with cartridge.open(path, "r") as r:
        assert r.read("/a") == b"first" and r.verify().ok


def _two_commits(path, first: tuple[str, bytes], second: tuple[str, bytes]):
    """A container whose two meta pages hold two commits; return its handle, still open."""
    c = cartridge.create(path)
    c.write(*first)
    c.commit()
    c.write(*second)
    c.commit()
    return c


def test_torn_meta_falls_back(tmp_path):
    path = tmp_path / "t.cart"
    with _two_commits(path, ("/a", b"first"), ("/a", b"second")) as c:
        slot = 1 + c.generation % 2
    with open(path, "r+b") as f:
        f.seek(slot * PAGE_SIZE + 2000)
        f.write(b"\x00torn")
    with cartridge.open(path, "r") as r:
        assert r.read("/a") == b"first"


def test_corrupted_single_sync_commit_is_reported(tmp_path):
    """A valid newest meta page rejected for a bad listed page is named by verify()."""
    path = tmp_path / "t.cart"
    with _two_commits(path, ("/a.txt", b"one"), ("/b.txt", b"two")) as c:
        root = int(c.txn.meta["root"]["page"])
    with open(path, "r+b") as f:
        f.seek(root * PAGE_SIZE + 200)
        byte = f.read(1)
        f.seek(root * PAGE_SIZE + 200)
        f.write(bytes([byte[0] ^ 0xFF]))
    with cartridge.open(path, "r") as r:
        report = r.verify()
        assert not report.ok
        assert any(f"page {root}" in p and "lost" in p for p in report.problems)


def test_directory_is_not_a_container(tmp_path):
    for mode in ("r", "r+"):
        with pytest.raises(cartridge.IsADirectoryError) as e:
            cartridge.open(tmp_path, mode)
        assert str(tmp_path) in str(e.value)


def test_two_level_free_map(tmp_path, monkeypatch):
    """Containers with more free-map segments than fit in the meta page.

    The real threshold is 128 segments (~17 GB); lowering it to 1 exercises the
    same writer and reader code with 2-3 segments.
    """
    import cartridge.allocator as allocator_module

    monkeypatch.setattr(allocator_module, "META_FM_INLINE", 1)
    path = tmp_path / "t.cart"
    blob = os.urandom(1 << 20)
    with cartridge.create(path) as c:
        for i in range(150):
            c.write(f"/f{i:03d}", blob)
        c.commit()
        assert int(c.txn.meta["fm_levels"]) == 2 and int(c.txn.meta["fm_segments"]) >= 2
        for i in range(0, 150, 3):
            c.delete(f"/f{i:03d}")
        c.commit()
        assert c.verify().ok
    with cartridge.open(path, "r") as r:
        assert int(r.txn.meta["fm_levels"]) == 2
        assert r.read("/f001") == blob and not r.exists("/f000")
        assert r.verify().ok
    monkeypatch.setattr(allocator_module, "META_FM_INLINE", 128)
    with cartridge.open(path, "r+") as w:  # back to one level on the next commit
        w.write("/g", b"x" * 5000)
        w.commit()
        assert int(w.txn.meta["fm_levels"]) == 1
        assert w.verify().ok
