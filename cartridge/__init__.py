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
    AuthenticationError,
    CartridgeError,
    ClosedError,
    ContainerFullError,
    CorruptionError,
    DirectoryNotEmptyError,
    EncodedDataError,
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
    WrongKeyError,
)
from .verify import VerifyReport

__version__ = "0.1.0"

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
    "AuthenticationError",
    "EncodedDataError",
    "WrongKeyError",
    "VerifyReport",
    "create",
    "open",
]
