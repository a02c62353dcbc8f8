"""View lifetime: a view shows its generation whatever happens afterwards, and its
pages are reused only after it (and everything derived from it) is collected.

Each case takes a view, changes the container under it (overwrite, delete,
rename, 100x growth, rollback, close, another process's commits), checks the
view bit for bit, shows that its pages are *not* reused while it lives, then
drops it and shows that they are.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cartridge
from cartridge.kernels import bitmap as kb

N = 64 * 1024  # float64 elements: 512 KiB, 128 pages


def data(seed: int, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


def first_page(cart: cartridge.Cartridge, path: str) -> int:
    """First page of a contiguous array's extent (from a fresh view's address)."""
    v = cart.view(path)
    page = (v.ctypes.data - cart.mapping.ctypes.data) // 4096
    del v
    return page


def churn(cart: cartridge.Cartridge, rounds: int = 3) -> list[int]:
    """Commits that free and allocate pages of the view's size; returns the pages used."""
    pages = []
    for i in range(rounds):
        cart.write_array(f"/churn/{i % 2}", data(100 + i))
        cart.commit()
        pages.append(first_page(cart, f"/churn/{i % 2}"))
        cart.delete(f"/churn/{i % 2}")
        cart.commit()
    return pages


def reused_after_drop(cart: cartridge.Cartridge, page: int) -> bool:
    """After the view is gone, a commit returns its pages to the free map, and
    same-sized arrays written until every hole is filled land on them."""
    gc.collect()
    cart.write("/tick", b"x")
    cart.commit()
    if kb.count_used(cart.txn.allocator.words, page, N * 8 // 4096):
        return False
    for i in range(cart.info().free_runs + 1):
        cart.write_array(f"/reuse/{i}", data(999))
        if abs(first_page(cart, f"/reuse/{i}") - page) < N * 8 // 4096:  # overlaps
            cart.commit()
            return True
    return False


def setup_view(cart: cartridge.Cartridge) -> tuple[np.ndarray, np.ndarray, int]:
    original = data(1)
    cart.write_array("/a", original)
    cart.commit()
    page = first_page(cart, "/a")
    return cart.view("/a"), original, page


@pytest.mark.parametrize("change", ["overwrite", "delete", "rename", "setitem"])
def test_view_survives_change_and_pages_come_back(cart, change):
    view, original, page = setup_view(cart)
    derived = view[::2]
    if change == "overwrite":
        cart.write_array("/a", data(2))
    elif change == "delete":
        cart.delete("/a")
    elif change == "rename":
        cart.rename("/a", "/b")
        cart.write_array("/b", data(3))
    else:
        cart.array("/a")[:] = 0
    cart.commit()
    assert page not in churn(cart)
    np.testing.assert_array_equal(view, original)
    del view  # the derived array alone still holds the pages
    assert page not in churn(cart)
    np.testing.assert_array_equal(derived, original[::2])
    del derived
    assert reused_after_drop(cart, page)
    assert cart.verify().ok


def test_view_survives_growth_by_100x(cart):
    view, original, page = setup_view(cart)
    size = cart.info().size
    cart.write_array("/a", data(2))
    for i in range(7):
        cart.write_array(f"/grow/{i}", np.full(2 << 20, float(i)))
        cart.commit()
    assert cart.info().size >= 100 * size
    assert not np.shares_memory(view, cart.mapping)  # remapped; the old map lives on
    np.testing.assert_array_equal(view, original)
    for i in range(7):
        cart.delete(f"/grow/{i}")
    cart.commit()
    assert page not in churn(cart)
    np.testing.assert_array_equal(view, original)
    del view
    assert reused_after_drop(cart, page)


def test_view_of_uncommitted_data_survives_overwrite_and_rollback(cart):
    cart.write("/keep", b"k")
    cart.commit()
    fresh = data(5)
    cart.write_array("/new", fresh)
    page = first_page(cart, "/new")
    view = cart.view("/new")
    cart.write_array("/new", data(6))  # frees the fresh pages inside the transaction
    cart.write_array("/other", data(7))  # must not land on them
    assert first_page(cart, "/other") != page
    cart.rollback()
    np.testing.assert_array_equal(view, fresh)
    cart.write_array("/after", data(8))
    cart.commit()
    assert first_page(cart, "/after") != page
    assert page not in churn(cart)
    np.testing.assert_array_equal(view, fresh)
    assert cart.verify().ok
    del view
    assert reused_after_drop(cart, page)
    assert cart.verify().ok


def test_view_of_committed_data_survives_rollback(cart):
    view, original, page = setup_view(cart)
    cart.delete("/a")
    cart.write_array("/x", data(3))
    cart.rollback()
    np.testing.assert_array_equal(view, original)
    np.testing.assert_array_equal(cart.view("/a"), original)
    del view
    assert reused_after_drop(cart, page) is False  # /a still lives there
    cart.delete("/a")
    cart.commit()
    assert reused_after_drop(cart, page)


def test_view_survives_close_and_another_handle(tmp_path):
    path = tmp_path / "a.cart"
    cart = cartridge.create(path)
    view, original, page = setup_view(cart)
    cart.close()
    np.testing.assert_array_equal(view, original)  # no BufferError, map still alive
    with cartridge.open(path, "r+") as other:
        other.write_array("/a", data(2))
        other.commit()
        assert page not in churn(other)
        np.testing.assert_array_equal(view, original)
        del view
        assert reused_after_drop(other, page)


def test_read_only_handle_views(tmp_path):
    path = tmp_path / "a.cart"
    original = data(1)
    with cartridge.create(path) as w:
        w.write_array("/a", original)
    reader = cartridge.open(path, "r")
    view = reader.view("/a")
    writer = cartridge.open(path, "r+")
    page = first_page(writer, "/a")
    writer.delete("/a")
    writer.commit()
    assert page not in churn(writer)
    reader.close()
    np.testing.assert_array_equal(view, original)
    del view
    assert reused_after_drop(writer, page)
    writer.close()


def test_views_without_locking(tmp_path):
    cart = cartridge.create(tmp_path / "a.cart", locking=False)
    view, original, page = setup_view(cart)
    cart.write_array("/a", data(2))
    cart.commit()
    assert page not in churn(cart)
    np.testing.assert_array_equal(view, original)
    del view
    assert reused_after_drop(cart, page)
    cart.close()


CHILD = textwrap.dedent("""
    import sys, numpy as np, cartridge
    path = sys.argv[1]
    cart = cartridge.open(path, "r")
    views = {p: cart.view(p) for p in ("/a", "/b")}
    copies = {p: v.copy() for p, v in views.items()}
    cart.close()
    print("ready", flush=True)
    sys.stdin.readline()  # the parent commits changes meanwhile
    ok = all(np.array_equal(views[p], copies[p]) for p in views)
    print("same" if ok else "CHANGED", flush=True)
    del views
    import gc; gc.collect()
    print("dropped", flush=True)
    sys.stdin.readline()
""")


def test_other_process_holds_views_while_this_one_commits(tmp_path):
    path = tmp_path / "a.cart"
    with cartridge.create(path) as w:
        w.write_array("/a", data(1))
        w.write_array("/b", np.arange(N, dtype=">i8"))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        with cartridge.open(path, "r+") as w:
            pages = {p: first_page(w, p) for p in ("/a", "/b")}
            w.write_array("/a", data(2))
            w.array("/b")[::7] = -1
            w.commit()
            w.delete("/a")
            w.rename("/b", "/c")
            w.commit()
            used = churn(w, 6)
            assert not set(pages.values()) & set(used)
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "same"
            assert child.stdout.readline().strip() == "dropped"
            assert reused_after_drop(w, pages["/a"])
            assert w.verify().ok
        child.stdin.write("exit\n")
        child.stdin.flush()
        assert child.wait(60) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_uncommitted_view_survives_repeated_rollbacks_and_reopen(tmp_path):
    path = tmp_path / "a.cart"
    cart = cartridge.create(path)
    fresh = data(5)
    cart.write_array("/new", fresh)
    page = first_page(cart, "/new")
    view = cart.view("/new")
    cart.rollback()
    cart.rollback()  # the held pages stay out of the free map until a commit records them
    cart.write_array("/x", data(6))
    assert first_page(cart, "/x") != page
    cart.close()  # commits the pending record of the held pages
    with cartridge.open(path, "r+") as other:
        other.write_array("/y", data(7))
        other.commit()
        assert first_page(other, "/y") != page
        assert page not in churn(other)
        np.testing.assert_array_equal(view, fresh)
        del view
        assert reused_after_drop(other, page)
        assert other.verify().ok


def test_dataset_on_read_only_handle_follows_commits(tmp_path):
    path = tmp_path / "a.cart"
    with cartridge.create(path) as w:
        w.write_array("/a", np.arange(N, dtype=np.float64))
        w.create_dataset("/g", (100,), "i4", chunks=(7,))[...] = np.arange(100)
    reader = cartridge.open(path, "r")
    ds, g = reader.array("/a"), reader.array("/g")
    assert ds[5] == 5 and ds[10:13].tolist() == [10, 11, 12]
    assert g[5] == 5 and g[90:].tolist() == list(range(90, 100)) and g[3] == 3
    page = first_page(reader, "/a")
    writer = cartridge.open(path, "r+")
    writer.write_array("/a", np.arange(N, dtype=np.float64) * 2)
    writer.array("/g")[3] = -3
    writer.commit()
    assert page not in churn(writer)  # the Dataset's pinned view still holds the old pages
    assert ds[5] == 10 and g[3] == -3  # the next read sees the new commit
    assert reused_after_drop(writer, page)  # ...and released the old generation
    writer.delete("/a")
    writer.commit()
    with pytest.raises(cartridge.NotFoundError):
        ds[5]
    reader.close()
    writer.close()


def test_view_of_rolled_back_pages_the_transaction_reused_survives_reopen(tmp_path):
    """A view of uncommitted data whose pages the transaction had taken back from
    the durable pending list (freed by an earlier commit) stays intact after
    rollback, close and a reopen that allocates (found by the dataset state
    machine): the pending record is rewritten so the view's pin holds it."""
    path = tmp_path / "a.cart"
    c = cartridge.create(path, chunk_size=4096)
    ds = c.create_dataset("/d", (0, 3), "<i4", maxshape=(None, 3), chunks=(4, 2),
                          fill_value=-7, compression="zstd")
    c.commit()
    ds.append(np.ones((1, 3), "<i4"))
    c.commit()
    ds.resize((0, 3))
    c.commit()
    arr = np.random.default_rng(0).integers(0, 9, 5000)
    c.write_array("/v0", arr, compression=None)
    view = c.view("/v0")
    c.rollback()
    c.close()
    with cartridge.open(path, "r+") as other:
        for _ in range(4):
            other.array("/d").append(np.ones((1, 3), "<i4"))
            other.write("/pad", np.arange(3000, dtype=np.int64).tobytes())
            other.commit()
        np.testing.assert_array_equal(view, arr)
        assert other.verify().ok


def test_views_survive_rollbacks_of_released_and_reused_pages(tmp_path):
    """The dataset state machine's sequence at 10x: a view of uncommitted data
    written into pages the reopened handle had just released (its durable
    pending records listed them), then rollback and reopen: the rewritten
    pending records must be committed, or a later write reuses the view's pages."""
    path = tmp_path / "m.cart"
    cart = cartridge.create(path, chunk_size=4096)
    cart.create_dataset("/d", (0, 3), "<i4", maxshape=(None, 3), chunks=(4, 2),
                        fill_value=-7, compression="zstd")
    cart.commit()
    views = []
    arr = np.random.default_rng(0).integers(0, 9, 5000)
    for step in ["view", "rollback", "reopen", "view", "reopen", "view", "view", "view",
                 "reopen", "view", "rollback", "reopen", "view"]:
        if step == "view":
            cart.write_array("/v0", arr)
            views = [*views, cart.view("/v0")][-4:]
        elif step == "rollback":
            cart.rollback()
        else:
            cart.close()
            cart = cartridge.open(path, "r+")
        for view in views:
            np.testing.assert_array_equal(view, arr)
    cart.close()
    with cartridge.open(path, "r") as r:
        assert r.verify().ok
