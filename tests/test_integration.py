"""Features meeting each other: arrays under compaction, snapshots and copies."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest

import cartridge


def fragmented(path) -> cartridge.Cartridge:
    """A container with a viewable array near the end of a file full of holes."""
    cart = cartridge.create(path)
    for i in range(40):
        cart.write(f"/junk/{i}", os.urandom(100_000))
    cart.commit()
    cart.write_array("/arr", np.arange(300_000, dtype="<f8").reshape(1000, 300))
    cart.write_array("/fortran", np.asfortranarray(np.arange(12.0).reshape(3, 4)),
                     attrs={"unit": "m"})
    ds = cart.create_dataset("/ds", (0, 4), "<i4", maxshape=(None, 4), chunks=(16, 4),
                             fill_value=-1)
    ds.append(np.arange(400, dtype="<i4").reshape(100, 4))
    cart.commit()
    for i in range(40):
        cart.delete(f"/junk/{i}")
    cart.commit()
    return cart


def test_compaction_keeps_arrays_viewable_and_equal(tmp_path):
    cart = fragmented(tmp_path / "c.cart")
    expected = np.arange(300_000, dtype="<f8").reshape(1000, 300)
    before = os.path.getsize(tmp_path / "c.cart")
    result = cart.compact()
    assert result.moved_pages > 0
    assert os.path.getsize(tmp_path / "c.cart") < before
    view = cart.view("/arr")  # still one extent: moved whole
    np.testing.assert_array_equal(view, expected)
    assert np.shares_memory(view, cart.mapping)
    np.testing.assert_array_equal(cart.array("/ds")[...],
                                  np.arange(400, dtype="<i4").reshape(100, 4))
    assert cart.verify().ok
    cart.close()
    with cartridge.open(tmp_path / "c.cart", "r") as again:
        np.testing.assert_array_equal(again.view("/arr"), expected)


def test_compaction_under_a_live_view(tmp_path):
    cart = fragmented(tmp_path / "v.cart")
    view = cart.view("/arr")
    original = view.copy()
    cart.compact()
    cart.write("/after", os.urandom(3_000_000))  # would land on freed pages
    cart.commit()
    np.testing.assert_array_equal(view, original)
    del view
    gc.collect()
    assert cart.verify().ok
    cart.close()


def test_view_pins_every_generation_it_reads(tmp_path):
    """Views of two generations: pages the newer one reads survive the older pin."""
    cart = cartridge.create(tmp_path / "g.cart")
    cart.write_array("/a", np.zeros(50_000))
    cart.commit()
    old = cart.view("/a")
    cart.write_array("/b", np.ones(50_000))
    cart.commit()
    new = cart.view("/b")
    cart.delete("/b")
    cart.commit()
    for i in range(5):
        cart.write_array(f"/churn{i}", np.full(50_000, 7.0))
        cart.commit()
    np.testing.assert_array_equal(new, np.ones(50_000))
    np.testing.assert_array_equal(old, np.zeros(50_000))
    cart.close()


def test_copy_compact_keeps_arrays(tmp_path):
    cart = fragmented(tmp_path / "src.cart")
    cart.copy(tmp_path / "dst.cart", compact=True)
    with cartridge.open(tmp_path / "dst.cart", "r") as dst:
        info = dst.stat("/arr")
        assert info.is_array and info.shape == (1000, 300)
        np.testing.assert_array_equal(dst.view("/arr"), cart.view("/arr"))
        f = dst.view("/fortran")
        assert f.flags.f_contiguous and dst.array("/fortran").attrs["unit"] == "m"
        ds = dst.array("/ds")
        assert ds.chunks == (16, 4) and ds.maxshape == (None, 4) and ds.fillvalue == -1
        np.testing.assert_array_equal(ds[...], cart.array("/ds")[...])
        assert dst.verify().ok
    cart.close()


def test_snapshot_keeps_an_overwritten_array(tmp_path):
    cart = cartridge.create(tmp_path / "s.cart")
    cart.write_array("/a", np.arange(10_000))
    cart.commit()
    cart.snapshot("v1")
    cart.write_array("/a", np.zeros(10_000, int))
    cart.commit()
    cart.close()
    with cartridge.open(tmp_path / "s.cart", "r", snapshot="v1") as snap:
        np.testing.assert_array_equal(snap.view("/a"), np.arange(10_000))
    with cartridge.open(tmp_path / "s.cart", "r+") as cart:
        cart.restore("v1")
        np.testing.assert_array_equal(cart.view("/a"), np.arange(10_000))
        assert cart.verify().ok


def test_threads_sharing_a_read_only_handle_read_in_parallel(tmp_path):
    """Each thread gets its own handle (own lock and pin) behind the shared object."""
    import threading

    path = tmp_path / "t.cart"
    with cartridge.create(path) as cart:
        for i in range(50):
            cart.write(f"/f{i}", bytes([i]) * (1000 + i))
        cart.write_array("/a", np.arange(1000))
    shared = cartridge.open(path, "r")
    errors: list = []
    handles: list = []
    barrier = threading.Barrier(4)

    def work(k: int) -> None:
        try:
            barrier.wait()
            for i in range(50):
                j = (i + k) % 50
                assert shared.read(f"/f{j}") == bytes([j]) * (1000 + j)
                assert shared.exists("/a") and shared.stat("/a").shape == (1000,)
            assert shared.list("/")[:2] == ["/a", "/f0"]
            handles.append(shared._thread_handle())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert shared.read("/f3") == bytes([3]) * 1003  # the opening thread uses the handle itself
    assert len({id(h) for h in handles}) == 4 and shared not in handles
    children = handles
    with cartridge.open(path, "r+") as writer:  # a writer beside them is not blocked
        writer.write("/f0", b"new")
    t = threading.Thread(target=lambda: errors.append(shared.read("/f0")))
    t.start()
    t.join()
    assert errors == [b"new"]  # a thread's handle follows new commits too
    shared.close()
    assert all(c.closed for c in children)
    seen: list = []

    def late() -> None:
        try:
            shared.read("/f0")
        except cartridge.ClosedError as exc:
            seen.append(exc)

    t = threading.Thread(target=late)
    t.start()
    t.join()
    assert len(seen) == 1  # a closed handle stays closed in every thread


def test_compacting_copy_of_an_encrypted_container_stays_encrypted(tmp_path):
    key = bytes(range(32))
    with cartridge.create(tmp_path / "src.cart", key=key, compression="zstd") as cart:
        cart.write("/secret-name.txt", b"attack at dawn " * 100)
        cart.write_array("/arr", np.arange(1000))
        cart.copy(tmp_path / "dst.cart", compact=True)
    raw = (tmp_path / "dst.cart").read_bytes()
    assert b"secret-name" not in raw and b"attack at dawn" not in raw
    with pytest.raises(cartridge.WrongKeyError):
        cartridge.open(tmp_path / "dst.cart", "r")
    with cartridge.open(tmp_path / "dst.cart", "r", key=key) as dst:
        assert dst.info().encrypted and dst.info().compression == "zstd"
        assert dst.read("/secret-name.txt") == b"attack at dawn " * 100
        np.testing.assert_array_equal(dst.array("/arr")[...], np.arange(1000))
        assert dst.verify().ok
