"""test_array_indexing's dataset state machine on encoded datasets: compressed
(zstd, beside raw viewable arrays) and encrypted (lz4 + AES-GCM), against the
same plain ndarray model.

Scale: ``CARTRIDGE_STATEFUL_EXAMPLES`` (as test_array_indexing).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, rule
from test_array_indexing import STATEFUL, DatasetMachine

import cartridge


class CompressedDatasetMachine(DatasetMachine):
    """The dataset compressed with zstd; the snapshot arrays stay raw (viewable)."""

    SECRETS: dict = {}
    COMPRESSION = "zstd"

    def __init__(self) -> None:
        RuleBasedStateMachine.__init__(self)
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "m.cart")
        self.cart = cartridge.create(self.path, chunk_size=4096, **self.SECRETS)
        self.ds = self.cart.create_dataset("/d", (0, 3), "<i4", maxshape=(None, 3),
                                           chunks=(4, 2), fill_value=-7,
                                           compression=self.COMPRESSION)
        self.cart.commit()
        self.model = np.zeros((0, 3), "<i4")
        self.durable = self.model.copy()
        self.views: list[tuple[np.ndarray, np.ndarray]] = []

    @rule()
    def reopen(self):
        self.cart.close()
        self.durable = self.model.copy()
        self.cart = cartridge.open(self.path, "r+", **self.SECRETS)
        self.ds = self.cart.array("/d")
        assert self.cart.stat("/d").compression == self.COMPRESSION

    @rule(seed=st.integers(0, 1 << 16))
    def snapshot_view(self, seed):
        arr = np.random.default_rng(seed).integers(0, 9, 5000)
        self.cart.write_array(f"/v{seed % 3}", arr, compression=None)
        self.views.append((self.cart.view(f"/v{seed % 3}"), arr))
        if len(self.views) > 4:
            self.views.pop(0)

    def teardown(self):
        self.cart.close()
        with cartridge.open(self.path, "r", **self.SECRETS) as c:
            assert c.verify(data=True).ok
            assert (c.array("/d")[...] == self.model).all()
        self.views.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


class EncryptedDatasetMachine(CompressedDatasetMachine):
    """Everything sealed (and the dataset lz4-compressed): no array is viewable."""

    SECRETS = {"password": "stateful"}
    COMPRESSION = "lz4"

    @rule(seed=st.integers(0, 1 << 16))
    def snapshot_view(self, seed):
        arr = np.random.default_rng(seed).integers(0, 9, 5000)
        self.cart.write_array(f"/v{seed % 3}", arr, compression=None)
        with pytest.raises(cartridge.EncodedDataError):
            self.cart.view(f"/v{seed % 3}")
        assert np.array_equal(self.cart.array(f"/v{seed % 3}")[...], arr)


_SETTINGS = settings(max_examples=max(10, STATEFUL // 5), stateful_step_count=25,
                     deadline=None)
TestCompressedDatasetMachine = CompressedDatasetMachine.TestCase
TestCompressedDatasetMachine.settings = _SETTINGS
TestEncryptedDatasetMachine = EncryptedDatasetMachine.TestCase
TestEncryptedDatasetMachine.settings = _SETTINGS
