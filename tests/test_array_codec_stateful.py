"""test_array_indexing's dataset state machine on encoded datasets: compressed
(zstd, beside raw viewable arrays) and encrypted (lz4 + AES-GCM), against the
same plain ndarray model.

Scale (``CARTRIDGE_TEST_SCALE``): 30 examples each.
"""

from __future__ import annotations

import shutil

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis.stateful import rule

import cartridge
from cartridge.testing import hypothesis_settings
from cartridge.testing.stateful import DatasetMachine


class CompressedDatasetMachine(DatasetMachine):
    """The dataset compressed with zstd; the snapshot arrays stay raw (viewable)."""

    SECRETS: dict = {}
    COMPRESSION = "zstd"
    create_kwargs = SECRETS
    dataset_kwargs = {"compression": COMPRESSION}

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
    create_kwargs = SECRETS
    dataset_kwargs = {"compression": COMPRESSION}

    @rule(seed=st.integers(0, 1 << 16))
    def snapshot_view(self, seed):
        arr = np.random.default_rng(seed).integers(0, 9, 5000)
        self.cart.write_array(f"/v{seed % 3}", arr, compression=None)
        with pytest.raises(cartridge.EncodedDataError):
            self.cart.view(f"/v{seed % 3}")
        assert np.array_equal(self.cart.array(f"/v{seed % 3}")[...], arr)


_SETTINGS = hypothesis_settings(30, stateful_step_count=25)
TestCompressedDatasetMachine = CompressedDatasetMachine.TestCase
TestCompressedDatasetMachine.settings = _SETTINGS
TestEncryptedDatasetMachine = EncryptedDatasetMachine.TestCase
TestEncryptedDatasetMachine.settings = _SETTINGS
