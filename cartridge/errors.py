"""The exception hierarchy.

Every error Cartridge raises derives from :class:`CartridgeError`, and each
subclass also inherits the builtin exception it resembles, so callers can catch
either ``cartridge.NotFoundError`` or plain ``FileNotFoundError``.  The idea is
zarr's ``errors.py`` and py-lmdb's one-class-per-failure-kind: a caller should
be able to tell "the path is missing" from "the file is damaged" from "another
process holds the write lock" without parsing messages.

Messages say what happened, to which path or page, and what to do about it.
"""

from __future__ import annotations

import builtins
import errno

__all__ = [
    "CartridgeError",
    "NotFoundError",
    "FileExistsError",
    "IsADirectoryError",
    "NotADirectoryError",
    "DirectoryNotEmptyError",
    "InvalidPathError",
    "ReadOnlyError",
    "LockedError",
    "CorruptionError",
    "FormatError",
    "ContainerFullError",
    "ClosedError",
    "MetadataError",
    "StaleFileError",
    "UnsupportedDtypeError",
    "NotAnArrayError",
    "IsAnArrayError",
    "NotContiguousError",
    "SnapshotNotFoundError",
    "LockingUnsupportedError",
    "SnapshotExistsError",
    "AuthenticationError",
    "WrongKeyError",
    "EncodedDataError",
    "PolicyError",
    "AccessDeniedError",
]


class CartridgeError(Exception):
    """Root of every error raised by Cartridge."""


class NotFoundError(CartridgeError, builtins.FileNotFoundError):
    """A path, or the container file itself, does not exist."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(errno.ENOENT, message)
        self.filename = path

    def __str__(self) -> str:
        return self.strerror or ""


class FileExistsError(CartridgeError, builtins.FileExistsError):  # noqa: A001
    """The path (or the container file) already exists."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(errno.EEXIST, message)
        self.filename = path

    def __str__(self) -> str:
        return self.strerror or ""


class IsADirectoryError(CartridgeError, builtins.IsADirectoryError):  # noqa: A001
    """A file operation was applied to a directory."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(errno.EISDIR, message)
        self.filename = path

    def __str__(self) -> str:
        return self.strerror or ""


class NotADirectoryError(CartridgeError, builtins.NotADirectoryError):  # noqa: A001
    """A directory operation was applied to a file, or a parent is a file."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(errno.ENOTDIR, message)
        self.filename = path

    def __str__(self) -> str:
        return self.strerror or ""


class DirectoryNotEmptyError(CartridgeError, builtins.OSError):
    """``rmdir`` of a directory that still has children."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(errno.ENOTEMPTY, message)
        self.filename = path

    def __str__(self) -> str:
        return self.strerror or ""


class InvalidPathError(CartridgeError, builtins.ValueError):
    """A path is malformed: ``..``, ``.``, NUL bytes, not UTF-8, or too long."""


class ReadOnlyError(CartridgeError, builtins.PermissionError):
    """A write was attempted through a read-only handle."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EROFS, message)

    def __str__(self) -> str:
        return self.strerror or ""


class LockedError(CartridgeError, builtins.BlockingIOError):
    """Another handle or process holds the container's write lock."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EAGAIN, message)

    def __str__(self) -> str:
        return self.strerror or ""


class CorruptionError(CartridgeError, builtins.OSError):
    """A page or structure failed its checksum or a structural check.

    ``page`` names the page number when one is known.
    """

    def __init__(self, message: str, page: int | None = None) -> None:
        super().__init__(errno.EIO, message)
        self.page = page

    def __str__(self) -> str:
        return self.strerror or ""


class FormatError(CartridgeError, builtins.ValueError):
    """The file is not a Cartridge container, or of an unsupported version."""


class ContainerFullError(CartridgeError, builtins.OSError):
    """No space: ``max_size`` was reached or the disk is full.

    The last commit is always intact.  Raised by a write, it leaves the
    pending transaction as it was before that call (delete something, or
    commit what is pending, and retry).  Raised by ``commit()``, it means the
    commit's own metadata pages did not fit: the pending transaction has been
    rolled back.
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror or ""


class StaleFileError(CartridgeError, builtins.OSError):
    """A streaming file object's file changed in a newer commit while it was open.

    A file object on a read-only handle reads the newest commit at each read;
    rather than splice two versions of a file, it raises this.  Reopen it.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(errno.ESTALE, message)
        self.filename = path

    def __str__(self) -> str:
        return self.strerror or ""


class ClosedError(CartridgeError, builtins.ValueError):
    """An operation on a closed container or file object."""


class MetadataError(CartridgeError, builtins.ValueError):
    """User metadata that cannot be stored (bad type, or too large)."""


class UnsupportedDtypeError(CartridgeError, builtins.TypeError):
    """An array's dtype cannot be stored faithfully (objects, variable-width strings)."""


class NotAnArrayError(CartridgeError, builtins.TypeError):
    """An array operation named a plain file (or an array operation a plain file)."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.filename = path


class NotContiguousError(CartridgeError, builtins.ValueError):
    """``view`` was asked for an array whose bytes are not one contiguous extent."""


class IsAnArrayError(CartridgeError, builtins.TypeError):
    """A byte-level write (append, write_at, truncate) named a numpy array."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.filename = path


class SnapshotNotFoundError(NotFoundError):
    """No snapshot of that name exists (it was never taken, or was deleted)."""


class SnapshotExistsError(FileExistsError):
    """A snapshot of that name already exists; delete it first or pick another."""


class LockingUnsupportedError(LockedError):
    """The filesystem does not support the file locks Cartridge uses.

    Raised with ``locking=True`` (the default), typically on a network
    filesystem; ``locking="best-effort"`` then proceeds without locks, and
    ``locking=False`` never takes them.
    """


class AuthenticationError(CorruptionError):
    """An encrypted page or chunk failed AES-GCM authentication.

    Raised when sealed bytes were altered, or moved, swapped or replayed from
    another place or an older generation: the data is refused, never returned.
    """


class WrongKeyError(CartridgeError, builtins.PermissionError):
    """The key or password does not open this encrypted container (or none was given)."""


class EncodedDataError(CartridgeError, builtins.ValueError):
    """Zero-copy access was asked of data stored compressed or encrypted.

    A memory view needs the raw bytes in the mapped file; compressed or
    encrypted chunks must be decoded first (``cart.array(path)[...]`` or
    ``cart.read(path)`` do that).
    """


class PolicyError(CartridgeError, builtins.ValueError):
    """A policy document is malformed, or a request cannot be evaluated.

    ``statement`` is the index of the statement at fault (None for the
    document as a whole), ``sid`` its Sid when it has one, and ``field`` the
    element (``"Action"``, ``"Condition"``...).  A document is refused whole:
    nothing of it is ever applied half-read.
    """

    def __init__(self, message: str, *, statement: int | None = None,
                 sid: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.statement = statement
        self.sid = sid
        self.field = field


class AccessDeniedError(CartridgeError, builtins.PermissionError):
    """A policy refused an operation.

    The message names the principal, the action, the path and the statement
    that denied it (or says that no statement allowed it); ``decision`` holds
    the full :class:`cartridge.policy.Decision` when one is known.
    """

    def __init__(self, message: str, decision: object = None) -> None:
        super().__init__(errno.EACCES, message)
        self.decision = decision

    def __str__(self) -> str:
        return self.strerror or ""


class UncommittedChangesWarning(UserWarning):
    """A read-write handle was dropped (collected, or the interpreter exited) with
    changes that were never committed: they are lost, as the transactional rule
    says.  A warning, not an error, so a restarted notebook kernel still exits."""
