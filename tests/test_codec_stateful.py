"""The model-based test of test_stateful.py on an encrypted container whose files
default to zstd (every rule, reopen and crash included), and on one whose files
default to "auto" with a small decoded-chunk cache.

Scale (``CARTRIDGE_TEST_SCALE``): 40 examples each.
"""

from __future__ import annotations

from hypothesis import HealthCheck

from cartridge.testing import hypothesis_settings
from cartridge.testing.stateful import CartridgeMachine

KEY = bytes(range(7, 39))
SETTINGS = hypothesis_settings(40, stateful_step_count=30,
                               suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])


class SealedZstdMachine(CartridgeMachine):
    create_kwargs = {"key": KEY, "compression": "zstd"}
    open_kwargs = {"key": KEY, "verify_reads": True}


class AutoSmallCacheMachine(CartridgeMachine):
    create_kwargs = {"compression": "auto", "cache_size": 3 * 65536}
    open_kwargs = {"cache_size": 3 * 65536}


SealedZstdMachine.TestCase.settings = SETTINGS
AutoSmallCacheMachine.TestCase.settings = SETTINGS
TestSealedZstd = SealedZstdMachine.TestCase
TestAutoSmallCache = AutoSmallCacheMachine.TestCase
