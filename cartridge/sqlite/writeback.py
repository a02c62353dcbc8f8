"""Applying SQLite's buffered writes to the container, a chunk at a time.

SQLite writes pages (4 KiB by default) one call at a time, often the same
page several times in one transaction and usually many pages of one 64 KiB
chunk.  Handing each call to :meth:`Cartridge.write_at` would copy a chunk
on write for its first page and then rewrite it in place for every other
page: correct, but a Python round trip per page.  So the VFS buffers writes
(see :mod:`.filestate`) and this module applies a file's buffer in one go:

1. each chunk the writes touch is *staged* once: its current bytes (or zeros
   when a write covers it whole, or past the end of the file), then every
   write to it in the order SQLite issued them, so later writes win;
2. runs of consecutive staged chunks go to ``write_at`` as one call, cut at
   the file's logical size (a staged chunk is zero-padded to full length).

Whatever the buffer held, the container sees it as one ordered sequence of
SQLite's writes, so a commit always captures a prefix of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..container import Cartridge

__all__ = ["apply_writes"]


def apply_writes(cart: Cartridge, path: str, writes: Sequence[tuple[int, bytes]], *,
                 stored: int, size: int, shift: int) -> list[int]:
    """Apply ``writes`` (``(offset, bytes)`` in SQLite's order) to file ``path``.

    Parameters
    ----------
    cart:
        The writable container holding the file.
    path:
        The file's path inside the container.
    writes:
        The buffered writes, oldest first.
    stored:
        The file's size in the container before these writes.
    size:
        Its size once they are applied (as SQLite sees it).
    shift:
        log2 of the container's chunk size.

    Returns
    -------
    list[int]
        The chunk indices written (their cached locations are now stale).
    """
    ch = 1 << shift
    mask = ch - 1
    staged: dict[int, bytearray] = {}
    for off, data in writes:
        n = len(data)
        index, lo = off >> shift, off & mask
        if lo + n <= ch:  # the common case: inside one chunk
            chunk = staged.get(index)
            if chunk is None:
                chunk = staged[index] = _stage(cart, path, index, shift, stored,
                                               lo == 0 and n == ch)
            chunk[lo : lo + n] = data
            continue
        view = memoryview(data)
        pos = 0
        while pos < n:
            o = off + pos
            index, lo = o >> shift, o & mask
            take = min(n - pos, ch - lo)
            chunk = staged.get(index)
            if chunk is None:
                chunk = staged[index] = _stage(cart, path, index, shift, stored, take == ch)
            chunk[lo : lo + take] = view[pos : pos + take]
            pos += take
    order = sorted(staged)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and order[j + 1] == order[j] + 1:
            j += 1
        start = order[i] << shift
        end = min((order[j] + 1) << shift, size)
        run = staged[order[i]] if i == j else b"".join(staged[c] for c in order[i : j + 1])
        cart.write_at(path, start, memoryview(run)[: end - start])
        i = j + 1
    return order


def _stage(cart: Cartridge, path: str, index: int, shift: int, stored: int,
           whole: bool) -> bytearray:
    """A chunk's current bytes to apply writes to (zeros past the end, and
    when the writes cover it whole)."""
    ch = 1 << shift
    chunk = bytearray(ch)
    have = min(ch, stored - (index << shift))
    if have > 0 and not whole:
        chunk[:have] = cart.read(path, index << shift, have)
    return chunk
