"""One knob for how hard the test suite works: ``CARTRIDGE_TEST_SCALE``.

Every count a test uses to decide how much to do (SIGKILLs, hypothesis
examples, rows, seconds) is written as a *base* figure, the one CI runs, and
passed through :func:`scaled`.  ``CARTRIDGE_TEST_SCALE=10`` multiplies all of
them by ten (the "10x" runs before a release); ``0.2`` gives a quick smoke run.
Counts that get *finer* as the scale grows (a stride through offsets) use
:func:`scaled_down`.  One variable instead of one per test file means a 10x
run cannot forget a file, and a new test gets the knob for free.
"""

from __future__ import annotations

import math
import os
from typing import Any

__all__ = ["SCALE_ENV", "hypothesis_settings", "scale", "scaled", "scaled_down"]

#: The environment variable read by :func:`scale`.
SCALE_ENV = "CARTRIDGE_TEST_SCALE"


def scale() -> float:
    """The factor in ``CARTRIDGE_TEST_SCALE`` (default 1), read on every call.

    Raises ``ValueError`` naming the variable when it is not a positive number,
    so a typo does not silently run the suite at its base scale.
    """
    raw = os.environ.get(SCALE_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{SCALE_ENV} must be a positive number, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{SCALE_ENV} must be a positive number, got {raw!r}")
    return value


def scaled(base: float, minimum: int = 1) -> int:
    """``base`` times the scale, rounded, and at least ``minimum``."""
    return max(minimum, round(base * scale()))


def scaled_down(base: float, minimum: int = 1) -> int:
    """``base`` divided by the scale, rounded, and at least ``minimum`` (for strides)."""
    return max(minimum, round(base / scale()))


def hypothesis_settings(max_examples: int, **kwargs: Any) -> Any:
    """``hypothesis.settings`` with ``max_examples`` scaled and ``deadline=None``.

    Crash-safe storage does real I/O whose time varies with the machine's
    load, so no example has a deadline unless ``kwargs`` gives one.
    """
    from hypothesis import settings

    kwargs.setdefault("deadline", None)
    return settings(max_examples=scaled(max_examples), **kwargs)
