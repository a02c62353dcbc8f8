"""How ``cart`` prints what it found: short aligned text for people, JSON for scripts.

Two audiences, two formats, one place.  Human output is a few aligned
columns (``ls -l`` lines, ``key: value`` blocks, sizes in binary units) meant
to be read, not parsed: it may change between versions.  ``--json`` output is
the interface for scripts: it keeps every field of the library's value
objects (:class:`cartridge.FileInfo`, :class:`cartridge.ContainerInfo`, ...)
under the same names, and since JSON has no bytes type, bytes metadata values
are hex-encoded.  The command modules only decide *what* to print; how it
looks is decided here so every command looks the same.
"""

from __future__ import annotations

import dataclasses
import stat as stat_mod
import time
from typing import Any

import cartridge

__all__ = [
    "container_fields",
    "file_json",
    "human_size",
    "print_fields",
    "print_long",
    "timestamp",
]

#: ContainerInfo fields that count bytes, shown humanized by ``cart info``.
_BYTE_FIELDS = frozenset({"size", "page_size", "free"})


def human_size(n: float) -> str:
    """Format a byte count with binary units, e.g. ``1.5 MiB``.

    Parameters
    ----------
    n : float
        Number of bytes.

    Returns
    -------
    str
        ``"512 B"`` below 1 KiB, otherwise one decimal and the largest unit
        that keeps the number at or above 1.
    """
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            break
    return f"{n:.1f} {unit}"


def timestamp(ts: float) -> str:
    """A Unix time as local ``YYYY-MM-DD HH:MM:SS``."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def file_json(info: cartridge.FileInfo) -> dict[str, Any]:
    """A JSON-ready dict of a :class:`~cartridge.FileInfo` (bytes metadata as hex).

    ``dtype``, ``shape`` and ``chunks`` appear for arrays only, so the record
    of a plain file or directory keeps the keys it had before arrays existed.
    """
    record = dataclasses.asdict(info)
    for key in ("dtype", "shape", "chunks"):
        del record[key]
    if info.dtype is not None:
        record["dtype"] = str(info.dtype)
        record["shape"] = None if info.shape is None else list(info.shape)
        record["chunks"] = None if info.chunks is None else list(info.chunks)
    record["metadata"] = {
        key: value.hex() if isinstance(value, bytes) else value
        for key, value in info.metadata.items()
    }
    return record


def array_text(info: cartridge.FileInfo) -> str:
    """``array float32 (3, 4)`` (``chunks (..)`` added for chunked datasets)."""
    text = f"array {info.dtype} {info.shape}"
    return text if info.chunks is None else f"{text} chunks {info.chunks}"


def _long_line(info: cartridge.FileInfo, size_width: int) -> str:
    """One ``ls -l`` style line: permissions, size, mtime, path."""
    kind_bit = stat_mod.S_IFDIR if info.kind == "dir" else stat_mod.S_IFREG
    mode = stat_mod.filemode(kind_bit | info.mode)
    mtime = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.mtime))
    line = f"{mode} {info.size:>{size_width}} {mtime} {info.path}"
    return f"{line}  {array_text(info)}" if info.is_array else line


def print_long(infos: list[cartridge.FileInfo]) -> None:
    """Print ``ls -l`` style lines with the sizes right-aligned in one column."""
    width = max((len(str(i.size)) for i in infos), default=1)
    for info in infos:
        print(_long_line(info, width))


def print_fields(fields: dict[str, str], indent: str = "") -> None:
    """Print ``key: value`` lines with the values aligned in one column."""
    width = max(len(key) for key in fields) + 1
    for key, value in fields.items():
        print(f"{indent}{key + ':':<{width}} {value}")


def container_fields(info: cartridge.ContainerInfo) -> dict[str, str]:
    """Human-readable values of every :class:`~cartridge.ContainerInfo` field."""
    fields = {}
    for key, value in dataclasses.asdict(info).items():
        if key in _BYTE_FIELDS:
            fields[key] = f"{human_size(value)} ({value} bytes)"
        elif key == "fragmentation":
            fields[key] = f"{value:.1%}"
        else:
            fields[key] = str(value)
    return fields
