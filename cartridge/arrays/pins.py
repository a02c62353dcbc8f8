"""View pins: which generations a handle's live views read, held in the reader table.

Why a view needs a pin.  ``view`` returns an ndarray whose memory *is* the
mapped pages of one commit.  The writer (of this process or any other) frees
a page when a commit stops reaching it, and reuses it once no reader can still
reach it; a reader announces what it reaches by pinning a generation in the
reader table (``readers.py``).  A plain read call pins for its duration only,
but a view outlives the call that made it, so it needs a pin of its own, held
until the view (and every array derived from it) is garbage-collected.

Why one slot per generation.  The writer keeps a page freed at ``f`` and born
at ``b`` while some pin lies in ``[b, f)``.  Views of several generations can
be alive at once, and pinning only the oldest would let the writer reuse a
page born after it that a newer view still reads; so every distinct
generation gets a slot of its own, with a count of the views reading it.

Why the slots outlive the handle.  ``close()`` must not pull the pages from
under a live view, so a ``ViewPins`` is independent of its handle's open
file: it opens its own reader-table handles and keeps them until the last
view of their generation dies.

Why it forgets across processes.  A forked child inherits the parent's slots
(through the open file descriptions) and must never unpin them; a pickled
``ViewPins`` arrives in a process that has no views at all.  Both start with
no counts: only the constructor arguments cross a process boundary.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ..readers import ReaderTable

__all__ = ["ViewPins"]


class ViewPins:
    """Generations read by live views of one handle, published as reader pins.

    Each distinct generation gets its own slot of the reader table: the writer
    keeps a page freed at ``f`` and born at ``b`` while some pin lies in
    ``[b, f)``, so every generation a view reads must be visible, not just
    the oldest.  Survives the handle: after ``close()`` the slots stay claimed
    until the last view of their generation dies.  Finalizers may run in any
    thread at any moment (even inside another call of this object), hence the
    reentrant lock.

    Pickles as its constructor arguments only (the receiving process holds no
    views, so it starts with no counts and no slots).
    """

    def __init__(self, container_path: str, locking: bool) -> None:
        self._path = container_path
        self._locking = locking
        self._lock = threading.RLock()
        self._counts: dict[int, int] = {}
        self._tables: dict[int, ReaderTable] = {}
        self._pid = os.getpid()

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self._path, self._locking)

    def _forked(self) -> bool:
        """In a forked child the slots are the parent's: forget them, never unpin."""
        if self._pid == os.getpid():
            return False
        self._pid = os.getpid()
        self._counts = {}
        self._tables = {}
        return True

    def add(self, generation: int) -> None:
        """A view of ``generation`` was created."""
        with self._lock:
            self._forked()
            if self._locking and generation not in self._tables:
                table = ReaderTable(self._path)
                try:
                    table.acquire()
                    # Generation 0 means "not reading" in the table; no view can
                    # read anything a commit >= 1 freed before generation 1 existed.
                    table.pin(max(1, generation))
                except BaseException:
                    table.close()
                    raise
                self._tables[generation] = table
            self._counts[generation] = self._counts.get(generation, 0) + 1

    def drop(self, generation: int) -> None:
        """A view of ``generation`` was garbage-collected."""
        with self._lock:
            if self._forked():
                return
            left = self._counts.get(generation, 0) - 1
            if left < 0:  # a view inherited across fork: not counted here
                return
            if left > 0:
                self._counts[generation] = left
                return
            self._counts.pop(generation, None)
            table = self._tables.pop(generation, None)
            if table is not None:
                table.unpin()
                table.close()

    def generations(self) -> list[int]:
        """Every generation a live view reads."""
        with self._lock:
            return list(self._counts)

    def live(self) -> int:
        """Number of live views."""
        with self._lock:
            return sum(self._counts.values())
