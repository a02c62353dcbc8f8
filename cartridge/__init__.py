"""Cartridge: a whole mutable filesystem in one memory-mapped, crash-safe file.

>>> import cartridge
>>> with cartridge.create("data.cart", overwrite=True) as cart:   # doctest: +SKIP
...     cart.write("/raw/a.bin", b"hello")
...     cart.read("/raw/a.bin")
b'hello'

See README.md for the tour, ARCHITECTURE.md for the layers and FORMAT.md for
the bytes on disk.
"""

from .container import Cartridge, ContainerInfo, FileInfo, create, open
from .errors import (
    CartridgeError,
    ClosedError,
    ContainerFullError,
    CorruptionError,
    DirectoryNotEmptyError,
    FileExistsError,
    FormatError,
    InvalidPathError,
    IsADirectoryError,
    LockedError,
    MetadataError,
    NotADirectoryError,
    NotFoundError,
    ReadOnlyError,
    StaleFileError,
)
from .verify import VerifyReport

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``cartridge.sqlite`` on first use, so ``import cartridge`` does not import apsw."""
    if name == "sqlite":
        import importlib

        return importlib.import_module(".sqlite", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Cartridge",
    "CartridgeError",
    "ClosedError",
    "ContainerFullError",
    "ContainerInfo",
    "CorruptionError",
    "DirectoryNotEmptyError",
    "FileExistsError",
    "FileInfo",
    "FormatError",
    "InvalidPathError",
    "IsADirectoryError",
    "LockedError",
    "MetadataError",
    "NotADirectoryError",
    "NotFoundError",
    "ReadOnlyError",
    "StaleFileError",
    "VerifyReport",
    "create",
    "open",
]
