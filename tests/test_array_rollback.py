"""A view of rolled-back data keeps its pages even when the transaction had
reused pages the last commit left pending (found by test_array_indexing's
state machine: the rollback restored that pending entry beside the view's
hold, and releasing it freed a page under the view)."""

from __future__ import annotations

import numpy as np

import cartridge


def test_view_of_rolled_back_array_over_reused_pending_pages(tmp_path):
    cart = cartridge.create(tmp_path / "r.cart", chunk_size=4096)
    ds = cart.create_dataset("/d", (0, 3), "<i4", maxshape=(None, 3), chunks=(4, 2),
                             fill_value=-7)
    cart.commit()
    for _ in range(2):  # each commit leaves catalog pages pending, released in memory
        ds.resize((0, 3))
        cart.commit()
    arr = np.random.default_rng(0).integers(0, 9, 5000)
    cart.write_array("/v", arr)  # reuses those pages
    view = cart.view("/v")
    cart.rollback()
    ds.append(np.ones((5, 3), "<i4"))  # allocates: must not get a page under the view
    cart.write("/f", b"x" * 100_000)
    assert np.array_equal(view, arr)
    cart.commit()
    assert np.array_equal(view, arr) and cart.verify().ok
    del view
    cart.commit()
    assert cart.verify().ok
    cart.close()
