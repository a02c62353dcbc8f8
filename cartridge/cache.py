"""The decoded-chunk cache: an ARC bounded in bytes.

Compressed or encrypted chunks cost a decode (decompression, AES-GCM) on
every read; the decoded bytes of recently and frequently used chunks are kept
here.  Replacement is ARC (see ``kernels/arc.py``): its bookkeeping runs in
numba kernels over numpy arrays, and this class only keeps the decoded bytes
in a dict keyed by the same integer keys.

A chunk's identity is ``(file id, chunk index, first page, stored checksum,
generation)``: a rewritten chunk gets a new generation and checksum, so a
stale entry can never be returned (the dict stores the full identity and a
hash collision reads as a miss).  Raw chunks of plain files never come here:
the OS page cache already holds their mapped pages.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .kernels.arc import arc_access, new_state

#: A chunk's identity: (file id, chunk index, first page, stored checksum, generation).
ChunkIdent = tuple[int, int, int, int, int]

#: Default bound of the decoded-chunk cache: 64 MiB.
DEFAULT_CACHE_SIZE = 64 << 20


class ChunkCache:
    """ARC cache of decoded chunk bytes, at most ``capacity`` bytes held."""

    def __init__(self, capacity: int = DEFAULT_CACHE_SIZE) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)):
            raise TypeError(f"cache_size must be an int, got {type(capacity).__name__}")
        if capacity < 0:
            raise ValueError(f"cache_size must be >= 0, got {capacity}")
        self.capacity = int(capacity)
        # Room for the resident entries plus as many ghosts, at 4 KiB or more each.
        self.state = new_state(self.capacity, 2 * (self.capacity // 4096) + 64)
        self.evicted = np.zeros(self.state[0].shape[0] + 8, np.int64)
        self.data: dict[int, tuple[ChunkIdent, Any]] = {}
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    @staticmethod
    def _key(ident: ChunkIdent) -> int:
        return hash(ident) & 0x7FFF_FFFF_FFFF_FFFF

    def get(self, ident: ChunkIdent) -> Any:
        """Decoded bytes of a chunk, or None (a miss; the caller decodes and ``put``s)."""
        key = self._key(ident)
        with self._lock:
            found = self.data.get(key)
            if found is None or found[0] != ident:
                self.misses += 1
                return None
            self.hits += 1
            self._access(key, len(found[1]))
            return found[1]

    def put(self, ident: ChunkIdent, value: Any) -> None:
        """Admit a freshly decoded chunk (a no-op for a zero-capacity cache)."""
        if not self.capacity:
            return
        key = self._key(ident)
        with self._lock:
            if self._access(key, len(value)) & 1 or len(value) <= self.capacity:
                self.data[key] = (ident, value)

    def _access(self, key: int, size: int) -> int:
        res = int(arc_access(*self.state, key, size, self.evicted))
        for k in self.evicted[: res >> 1].tolist():
            self.data.pop(k, None)
        return res

    def stats(self) -> dict[str, int]:
        """``hits``, ``misses``, ``p`` (ARC's target for T1, bytes), ``bytes`` held,
        ``capacity`` and ``entries``."""
        lists, scal = self.state[1], self.state[4]
        return {"hits": self.hits, "misses": self.misses, "p": int(scal[0]),
                "bytes": int(lists[1, 2] + lists[2, 2]), "capacity": self.capacity,
                "entries": len(self.data)}
