"""Cartridge: a whole mutable filesystem in one memory-mapped, crash-safe file.

>>> import cartridge
>>> with cartridge.create("data.cart", overwrite=True) as cart:   # doctest: +SKIP
...     cart.write("/raw/a.bin", b"hello")
...     cart.read("/raw/a.bin")
b'hello'

See README.md for the tour, ARCHITECTURE.md for the layers and FORMAT.md for
the bytes on disk.
"""

from .arrays import Dataset
from .compaction import CompactResult
from .container import Cartridge, ContainerInfo, FileInfo, create, open
from .errors import (
    AccessDeniedError,
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
    IsAnArrayError,
    LockedError,
    LockingUnsupportedError,
    MetadataError,
    NotADirectoryError,
    NotAnArrayError,
    NotContiguousError,
    NotFoundError,
    PolicyError,
    ReadOnlyError,
    SnapshotExistsError,
    SnapshotNotFoundError,
    StaleFileError,
    UncommittedChangesWarning,
    UnsupportedDtypeError,
    WrongKeyError,
)
from .snapshots import DiffResult, SnapshotInfo
from .verify import VerifyReport

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``cartridge.sqlite`` on first use, so ``import cartridge`` does not import apsw."""
    if name == "sqlite":
        import importlib

        return importlib.import_module(".sqlite", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "AccessDeniedError",
    "Cartridge",
    "CartridgeError",
    "ClosedError",
    "ContainerFullError",
    "ContainerInfo",
    "CorruptionError",
    "Dataset",
    "DirectoryNotEmptyError",
    "FileExistsError",
    "FileInfo",
    "FormatError",
    "InvalidPathError",
    "IsADirectoryError",
    "IsAnArrayError",
    "LockedError",
    "LockingUnsupportedError",
    "MetadataError",
    "NotADirectoryError",
    "NotAnArrayError",
    "NotContiguousError",
    "NotFoundError",
    "PolicyError",
    "ReadOnlyError",
    "SnapshotExistsError",
    "SnapshotNotFoundError",
    "SnapshotInfo",
    "DiffResult",
    "CompactResult",
    "StaleFileError",
    "UnsupportedDtypeError",
    "AuthenticationError",
    "EncodedDataError",
    "UncommittedChangesWarning",
    "WrongKeyError",
    "VerifyReport",
    "create",
    "open",
]
