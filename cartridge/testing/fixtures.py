"""Shared pytest fixtures: a pytest plugin.

Enable it in a ``conftest.py``::

    pytest_plugins = ["cartridge.testing.fixtures"]

Fixtures (every container lives under pytest's temporary directory and is
closed at teardown, pending changes rolled back):

* ``cart_path`` -- a path for a container that does not exist yet.
* ``make_cart`` -- a factory: ``make_cart(name="t.cart", **create_kwargs)``.
* ``cart`` -- a new, empty container open read-write, created with
  ``cart_options``.
* ``module_cart`` -- the same, shared by a whole test module (for hypothesis
  tests whose examples would otherwise create thousands of files).
* ``encrypted_cart`` -- a new container encrypted with :data:`TEST_KEY`, its
  files compressed with zstd.
* ``cart_options`` -- the keyword arguments ``cart`` and ``module_cart`` pass
  to :func:`cartridge.create` (``{}``); a test module overrides it with a
  module-scoped fixture of the same name, e.g. to set ``chunk_size``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import cartridge

__all__ = ["TEST_KEY", "cart", "cart_options", "cart_path", "encrypted_cart", "make_cart",
           "module_cart"]

#: The 32-byte key of ``encrypted_cart`` (never use a fixed key outside tests).
TEST_KEY = bytes(range(7, 39))


def _dispose(cart: cartridge.Cartridge) -> None:
    """Close a test's container unless the test did; its uncommitted changes are dropped."""
    if not cart.closed:
        cart.rollback()
        cart.close()


@pytest.fixture
def cart_path(tmp_path: Path) -> Path:
    """A path for a container that does not exist yet."""
    return tmp_path / "test.cart"


@pytest.fixture
def make_cart(tmp_path: Path) -> Iterator[Callable[..., cartridge.Cartridge]]:
    """Create containers under the test's temporary directory; all closed at teardown."""
    made: list[cartridge.Cartridge] = []

    def make(name: str = "t.cart", **create_kwargs: Any) -> cartridge.Cartridge:
        made.append(cartridge.create(tmp_path / name, **create_kwargs))
        return made[-1]

    yield make
    for c in made:
        _dispose(c)


@pytest.fixture(scope="module")
def cart_options() -> dict[str, Any]:
    """Keyword arguments ``cart`` and ``module_cart`` pass to ``cartridge.create``."""
    return {}


@pytest.fixture
def cart(make_cart: Callable[..., cartridge.Cartridge],
         cart_options: dict[str, Any]) -> cartridge.Cartridge:
    """A new, empty container open read-write."""
    return make_cart(**cart_options)


@pytest.fixture(scope="module")
def module_cart(tmp_path_factory: pytest.TempPathFactory,
                cart_options: dict[str, Any]) -> Iterator[cartridge.Cartridge]:
    """One container shared by the tests of a module."""
    c = cartridge.create(tmp_path_factory.mktemp("module") / "m.cart", **cart_options)
    yield c
    _dispose(c)


@pytest.fixture
def encrypted_cart(make_cart: Callable[..., cartridge.Cartridge]) -> cartridge.Cartridge:
    """A new container encrypted with :data:`TEST_KEY`, files compressed with zstd."""
    return make_cart("sealed.cart", key=TEST_KEY, compression="zstd")
