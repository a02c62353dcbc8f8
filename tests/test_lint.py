"""The code base stays ruff clean (the style rules live in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.fail("ruff is not installed; it is part of the [test] extra")
    targets = [d for d in ("cartridge", "tests", "bench", "asv_benchmarks")
               if (ROOT / d).is_dir()]
    proc = subprocess.run([ruff, "check", *targets], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(path).exists():
        pytest.fail(f"{name} is not installed; it is part of the [test] extra")
    return path


def test_layers_contract():
    """An import from a lower layer into a higher one (pyproject's
    [tool.importlinter] layers) fails here."""
    proc = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_mypy_clean():
    """``mypy`` (pyproject's [tool.mypy]: the cartridge package) and the kernels
    package report no error."""
    for target in ([], ["kernels"]):
        proc = subprocess.run([sys.executable, "-m", "mypy", *target], cwd=ROOT,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
