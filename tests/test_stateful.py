"""Model-based test: random operations on a container and on a plain dict.

The machine is :class:`cartridge.testing.stateful.CartridgeMachine`: every
rule applies the same operation to the container and to a dict model and
requires the same outcome, including the same exception type; ``reopen``
commits by closing, ``crash`` drops the handle without committing, ``check``
compares everything and runs ``verify()``.

Scale (``CARTRIDGE_TEST_SCALE``): 150 examples.
"""

from __future__ import annotations

from hypothesis import HealthCheck

from cartridge.testing import hypothesis_settings
from cartridge.testing.stateful import CartridgeMachine

CartridgeMachine.TestCase.settings = hypothesis_settings(
    150,
    stateful_step_count=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestCartridgeStateful = CartridgeMachine.TestCase
