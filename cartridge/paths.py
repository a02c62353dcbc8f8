"""Path normalization: the one place that decides what a container path is.

Paths are absolute POSIX-style UTF-8 strings.  ``a/b`` means ``/a/b``, repeated
slashes collapse and a trailing slash is dropped.  ``.`` and ``..`` components
are rejected rather than resolved: a container has no working directory and a
silently resolved ``..`` is how archive extractors write outside their target.
NUL bytes, names over 255 bytes and paths over 1024 bytes are rejected too.

The catalog stores the normalized UTF-8 bytes as B+tree keys, so byte order is
listing order and every descendant of ``/a`` sorts in the range
``[b"/a/", b"/a0")`` (``"0"`` is the byte after ``"/"``).
"""

from __future__ import annotations

import os

from .errors import InvalidPathError
from .layout import MAX_NAME_BYTES, MAX_PATH_BYTES

ROOT = "/"


def normalize(path: str | os.PathLike[str]) -> str:
    """Return the canonical form of ``path`` or raise :class:`InvalidPathError`."""
    if (
        type(path) is str
        and path[:1] == "/"
        and len(path) <= MAX_NAME_BYTES
        and path.isascii()
        and "//" not in path
        and "/." not in path
        and "\x00" not in path
        and path[-1:] != "/"
    ):
        return path  # already canonical: the common case, checked cheaply
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise InvalidPathError(
            f"container paths are str, got {type(path).__name__}: {path!r}"
        )
    if "\x00" in path:
        raise InvalidPathError(f"path {path!r} contains a NUL byte")
    parts = [p for p in path.split("/") if p]
    for part in parts:
        if part in (".", ".."):
            raise InvalidPathError(
                f"path {path!r} contains {part!r}; use absolute paths without . or .."
            )
        try:
            encoded = part.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidPathError(f"path {path!r} is not valid UTF-8: {exc}") from None
        if len(encoded) > MAX_NAME_BYTES:
            raise InvalidPathError(
                f"path component {part[:40]!r}... is {len(encoded)} bytes; "
                f"the limit is {MAX_NAME_BYTES}"
            )
    norm = "/" + "/".join(parts)
    if len(norm.encode("utf-8")) > MAX_PATH_BYTES:
        raise InvalidPathError(
            f"path {norm[:60]!r}... is longer than {MAX_PATH_BYTES} bytes"
        )
    return norm


def parent(path: str) -> str:
    """Parent of a normalized path (the root is its own parent)."""
    head = path.rpartition("/")[0]
    return head or ROOT


def ancestors(path: str) -> list[str]:
    """Proper ancestors of a normalized path, outermost first, root excluded."""
    parts = path.split("/")[1:-1]
    out = []
    acc = ""
    for part in parts:
        acc += "/" + part
        out.append(acc)
    return out


def name(path: str) -> str:
    """Last component of a normalized path."""
    return path.rpartition("/")[2]
