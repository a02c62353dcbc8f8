"""Regression tests for bugs found by review: each reproduces one scenario."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

import cartridge
from cartridge.catalog import encode_metadata
from cartridge.layout import FM_BITS, MAX_CELL, PAGE_SIZE


def test_commit_growing_into_a_new_free_map_segment(tmp_path):
    """The commit's own free-map page allocation crosses a segment boundary."""
    path = tmp_path / "seg.cart"
    with cartridge.create(path, chunk_size=1 << 24) as c:
        c.write("/big", np.zeros((FM_BITS - 5) * PAGE_SIZE, np.uint8))
    for mode in ("r", "r+"):
        with cartridge.open(path, mode) as c:
            assert int(c.txn.meta["fm_segments"]) * FM_BITS >= int(c.txn.meta["total_pages"])
            assert c.verify(data=False).ok


def test_root_split_with_huge_cells_on_the_right(tmp_path):
    path = tmp_path / "split.cart"
    md = {"k": "v" * 320}
    ml = len(encode_metadata(md))
    with cartridge.create(path) as c:
        for i in range(13):
            c.write(f"/a{i:02d}", b"x" * 56)
        for i in range(5):
            c.write(f"/c{i:02d}", b"y" * 56)
        for tag in ("b1", "b2"):
            name = "/" + tag + "q" * 97
            c.write(name, b"z" * (2000 - 1 - len(name) - 40 - ml), metadata=md)
        c.commit()
        assert len(c.list("/")) == 20 and c.verify().ok


def test_failure_after_the_meta_page_never_rolls_back(tmp_path):
    path = tmp_path / "pm.cart"
    w = cartridge.create(path)
    w.write("/a", b"A" * 100_000)
    w.commit()
    real, calls = w.env.pager.sync, {"n": 0}

    def flaky() -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the sync after the meta page was written
            raise OSError(errno.EIO, "simulated fdatasync failure")
        real()

    w.env.pager.sync = flaky
    w.write("/b", b"B" * 100_000)
    try:
        w.commit()
    except OSError:
        pass
    w.env.pager.sync = real
    r = cartridge.open(path, "r")
    assert r.generation == w.generation  # the writer adopted what the file says
    assert r.exists("/b")  # the meta page reached the page cache: the commit is visible
    w.write("/c", b"C" * 100_000)  # must not reuse /b's pages
    w.commit()
    assert r.read("/b") == b"B" * 100_000
    assert r.verify().ok and w.verify().ok
    r.close()
    w.close()


def test_abandoned_attempt_at_the_same_generation_is_not_trusted(tmp_path):
    path = tmp_path / "gr.cart"
    c = cartridge.create(path)
    c.write("/x", b"committed-v1")
    c.commit()
    g = c.generation
    c.write("/x", b"NEVER-COMMITTED")
    real = c.txn.allocator.write_state

    def boom(gen: int) -> None:
        raise cartridge.ContainerFullError("simulated")

    c.txn.allocator.write_state = boom
    try:
        c.commit()
    except cartridge.ContainerFullError:
        pass
    c.txn.allocator.write_state = real
    stale = {pg: bytes(c.env.file.view[pg * PAGE_SIZE : (pg + 1) * PAGE_SIZE])
             for pg in range(3, c.env.pager.npages) if c.env.pager.header_of(pg)[2] == g + 1}
    c.write("/x", b"committed-v2")
    c.commit()
    listed = c.txn.meta["sync_pages"][: int(c.txn.meta["sync_count"])].tolist()
    c.close()
    reuse = [pg for pg in listed if pg in stale]
    assert reuse, "the scenario needs a listed page that an abandoned attempt also used"
    with open(path, "r+b") as f:  # power loss: these listed pages kept the stale image
        for pg in reuse:
            f.seek(pg * PAGE_SIZE)
            f.write(stale[pg])
    with cartridge.open(path, "r") as r:
        assert r.generation == g and r.read("/x") == b"committed-v1"


def test_rename_keeps_cells_within_the_limit(tmp_path):
    path = tmp_path / "rn.cart"
    md = {"k": "v" * 400}
    long = "/" + "/".join(["d" * 200] * 4) + "/" + "n" * 150
    with cartridge.create(path) as c:
        c.write("/s", b"x" * 1536, metadata=md)
        c.write("/t", b"y" * 1536, metadata=md)
        c.mkdir(long.rsplit("/", 1)[0])
        c.rename("/s", long)
        c.rename("/t", long + "2")
        c.commit()
        for name in (long, long + "2"):
            raw = c.txn.tree.get(b"\x10" + name.encode())
            assert 1 + len(name) + len(raw) <= MAX_CELL
        assert c.read(long) == b"x" * 1536 and c.verify().ok


def test_streaming_reader_never_splices_versions(tmp_path):
    path = tmp_path / "st.cart"
    w = cartridge.create(path)
    w.write("/f", b"A" * 150_000)
    w.commit()
    r = cartridge.open(path, "r")
    f = r.open_file("/f", "rb")
    first = f.read(65536)
    w.write("/f", b"B" * 150_000)
    w.commit()
    assert first == b"A" * 65536
    with pytest.raises(cartridge.StaleFileError) as info:
        f.read()
    assert isinstance(info.value, OSError)
    r.close()
    w.close()


def test_write_at_nothing_changes_nothing_and_mode_is_kept(tmp_path):
    with cartridge.create(tmp_path / "m.cart") as c:
        c.write("/f", b"abc", mode=0o600)
        c.write_at("/f", 1000, b"")
        assert c.stat("/f").size == 3
        c.write("/f", b"abcd")
        assert c.stat("/f").mode == 0o600


def test_overwrite_replaces_the_file_instead_of_truncating_it(tmp_path):
    path = tmp_path / "o.cart"
    with cartridge.create(path) as c:
        c.write("/a", b"old" * 10_000)
    r = cartridge.open(path, "r")
    view_before = r.read("/a")
    with cartridge.create(path, overwrite=True) as c:
        c.write("/b", b"new")
    assert r.read("/a") == view_before  # the old reader keeps the old file
    r.close()
    with cartridge.open(path, "r") as n:
        assert n.list("/") == ["/b"]


def test_remap_retries_when_the_file_shrinks_under_it(tmp_path, monkeypatch):
    """A reader opening while the writer's compaction truncates the file: the size
    it measured is gone by the time it maps; it must map what is there instead of
    failing with 'mmap length is greater than file size' (seen at 10x)."""
    from cartridge.mapfile import MappedFile

    path = tmp_path / "s.cart"
    with cartridge.create(path) as c:
        c.write("/f", b"x" * 100_000)
    real = MappedFile.file_size
    sizes = iter([real_size + 8 * PAGE_SIZE for real_size in [os.path.getsize(path)]])

    def shrinking(self):
        return next(sizes, None) or real(self)

    monkeypatch.setattr(MappedFile, "file_size", shrinking)
    with cartridge.open(path, "r") as r:
        assert r.read("/f") == b"x" * 100_000
