"""Moving bytes between host streams and container files, with a bar when a human watches.

Why streaming: ``put`` and ``get`` move file bytes through
:meth:`cartridge.Cartridge.open_file` in :data:`PIECE` pieces, so copying a
50 GiB file in or out costs 1 MiB of memory, the same as ``cp``.

Why the bar is decided here: the library reports progress through callbacks
and never draws.  The CLI draws a tqdm bar on stderr, and only when stderr is
a terminal and the copy is larger than :data:`PROGRESS_MIN_BYTES`, so pipes
and scripts see clean output and small copies do not flicker.
"""

from __future__ import annotations

import contextlib
import os
import stat as stat_mod
import sys
from collections.abc import Iterator
from typing import IO

from tqdm import tqdm

__all__ = [
    "PIECE",
    "PROGRESS_MIN_BYTES",
    "copy",
    "open_source",
    "progress",
    "stdin_size",
    "stdout_bytes",
]

#: Bytes moved per read/write call when streaming file contents.
PIECE = 1 << 20

#: Copies larger than this get a progress bar (when stderr is a terminal).
PROGRESS_MIN_BYTES = 8 << 20


@contextlib.contextmanager
def progress(total: int, desc: str) -> Iterator[tqdm | None]:
    """A byte-counting tqdm bar on stderr, or None when nobody would see it.

    Parameters
    ----------
    total : int
        Bytes the copy will move.
    desc : str
        Label in front of the bar (the path being copied).
    """
    if total <= PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    with tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
              file=sys.stderr, leave=False) as bar:
        yield bar


def copy(src: IO[bytes], dst: IO[bytes], bar: tqdm | None) -> None:
    """Stream ``src`` to ``dst`` in :data:`PIECE` pieces, advancing ``bar`` by each."""
    while piece := src.read(PIECE):
        dst.write(piece)
        if bar is not None:
            bar.update(len(piece))


def open_source(host: str) -> contextlib.AbstractContextManager[IO[bytes]]:
    """Open a host file for reading; ``-`` is stdin (left open afterwards)."""
    return contextlib.nullcontext(sys.stdin.buffer) if host == "-" else open(host, "rb")


def stdin_size() -> int:
    """Size of stdin when it is a regular file, else 0 (unknown)."""
    try:
        st = os.fstat(sys.stdin.buffer.fileno())
    except (OSError, ValueError, AttributeError):
        return 0
    return st.st_size if stat_mod.S_ISREG(st.st_mode) else 0


def stdout_bytes() -> IO[bytes]:
    """The binary stream under ``sys.stdout`` (text written before is flushed first)."""
    sys.stdout.flush()
    return sys.stdout.buffer
