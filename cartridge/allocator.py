"""Free space: a bitmap of pages, extent search, and pending frees.

The state of every page of the container is one bit (1 = used) in a bitmap
held in memory as uint64 words and persisted as *free-map segments*: headed
pages of 504 words (32,256 pages each).  Only the segments a transaction
changed are rewritten, copy-on-write like everything else, so a commit costs
O(pages touched), not O(container size).

Extent search runs in numba kernels (``kernels/bitmap.py``): best fit for a
contiguous run of ``n`` pages, so large files land in one extent whenever free
space allows and small holes are used by small allocations.  When no run fits,
the logical end of the container moves out (the mapped file below grows by
doubling).

Why frees are *pending*: a page freed by commit ``g`` is still reachable from
commit ``g-1``, which is the fallback if commit ``g`` turns out torn, and which a
reader may still be reading.  Such pages stay marked used and are listed with
``g`` in the pending-free list until no one can need ``g-1`` any more
(``release``); only then do they return to the bitmap.  Each record also keeps
the *birth* generation of its pages (from the node reference or chunk record
that pointed to them): a run born at ``b`` and freed at ``f`` is reachable
from commit ``s`` exactly when ``b <= s < f``, so a snapshot or a long-lived
reader pinning ``s`` holds back only the pages it can reach, and the file does
not grow without bound behind it.  Pages allocated and
freed inside one transaction were never durable and are free at once.
"""

from __future__ import annotations

import weakref
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

import numpy as np

from .errors import CorruptionError
from .kernels import bitmap as kb
from .layout import (
    FM_BITS,
    FM_WORDS,
    FMDIR_ENTRIES,
    META_FM_INLINE,
    META_PENDING_INLINE,
    PAGE_REF,
    PENDING_ENTRY,
    PENDING_PER_PAGE,
    PT_FMDIR,
    PT_FREEMAP,
    PT_PENDING,
)
from .pager import Pager


def _segments(nbits: int) -> int:
    return max(1, -(-nbits // FM_BITS))


class Allocator:
    """Page allocator for one read-write handle.

    Parameters
    ----------
    pager:
        The pager of the open container.
    meta:
        The durable meta record the transaction starts from.
    max_size:
        Size cap in bytes for growth, or None.
    """

    def __init__(self, pager: Pager, meta: np.ndarray, max_size: int | None) -> None:
        self.pager = pager
        self.max_size = max_size
        self.limit = 0  # when set (compaction), look below this page first
        # Runs a live view reads that were fresh when it was taken (see hold):
        # (generation, start, count, weak reference to the view's array).
        self.held: list[tuple[int, int, int, weakref.ref[Any]]] = []
        self._load(meta)

    # ------------------------------------------------------------------ load
    def _load(self, meta: np.ndarray) -> None:
        self.nbits = int(meta["total_pages"])
        nseg = int(meta["fm_segments"])
        if nseg != _segments(self.nbits):
            raise CorruptionError(
                f"meta page says {nseg} free-map segments for {self.nbits} pages", page=1
            )
        self.fm_ptrs: list[tuple[int, int]] = self._load_fm_ptrs(meta)
        self.words = np.zeros(nseg * FM_WORDS, np.uint64)
        for seg, (page, gen) in enumerate(self.fm_ptrs):
            self.words[seg * FM_WORDS : (seg + 1) * FM_WORDS] = self._read_segment(page, gen)
        self.fresh = np.zeros_like(self.words)
        self.pending = self._load_pending(meta)
        self.pending_run = (int(meta["pending_page"]), int(meta["pending_npages"]))
        self.dir_run = (
            (int(meta["fm_ptrs"][0]["page"]), int(meta["fm_nptrs"]))
            if int(meta["fm_levels"]) == 2
            else (0, 0)
        )
        self._reset_txn()
        self._durable = (self.nbits, list(self.fm_ptrs), list(self.pending),
                         self.pending_run, self.dir_run)

    def _load_fm_ptrs(self, meta: np.ndarray) -> list[tuple[int, int]]:
        nptrs = int(meta["fm_nptrs"])
        ptrs = [(int(p["page"]), int(p["generation"])) for p in meta["fm_ptrs"][:nptrs]]
        if int(meta["fm_levels"]) == 1:
            return ptrs
        out: list[tuple[int, int]] = []
        for page, gen in ptrs:
            body = self.pager.read_headed(page, PT_FMDIR, gen)
            count = self.pager.header_of(page)[5]
            refs = np.frombuffer(body[32 : 32 + count * PAGE_REF.itemsize], PAGE_REF)
            out.extend((int(r["page"]), int(r["generation"])) for r in refs)
        if len(out) != int(meta["fm_segments"]):
            raise CorruptionError("free-map directory does not match the meta page", page=1)
        return out

    def _read_segment(self, page: int, gen: int) -> np.ndarray:
        body = self.pager.read_headed(page, PT_FREEMAP, gen)
        return np.frombuffer(body[32 : 32 + FM_WORDS * 8], np.uint64)

    def _load_pending(self, meta: np.ndarray) -> list[tuple[int, int, int, int]]:
        start, npages = int(meta["pending_page"]), int(meta["pending_npages"])
        count = int(meta["pending_count"])
        if not npages:
            if count > META_PENDING_INLINE:
                raise CorruptionError("meta page claims too many inline pending records", page=1)
            recs = meta["pending_inline"][:count]
            return [_pending_rec(r) for r in recs]
        out: list[tuple[int, int, int, int]] = []
        for i in range(npages):
            body = self.pager.read_headed(start + i, PT_PENDING, None)
            k = self.pager.header_of(start + i)[5]
            recs = np.frombuffer(body[32 : 32 + k * PENDING_ENTRY.itemsize], PENDING_ENTRY)
            out.extend(_pending_rec(r) for r in recs)
        if len(out) != count:
            raise CorruptionError("pending-free list does not match the meta page", page=start)
        return out

    def _reset_txn(self) -> None:
        self.dirty_segs: set[int] = set()
        self.fresh_runs: list[tuple[int, int]] = []
        self.txn_freed: list[tuple[int, int, int]] = []

    # ------------------------------------------------------------- bit twiddling
    def _touch(self, start: int, count: int) -> None:
        if count > 0:
            self.dirty_segs.update(range(start // FM_BITS, (start + count - 1) // FM_BITS + 1))

    def _ensure_capacity(self, nbits: int) -> None:
        need = _segments(nbits) * FM_WORDS
        if need > self.words.size:
            cap = max(need, 2 * self.words.size)
            cap = -(-cap // FM_WORDS) * FM_WORDS
            grown = np.zeros(cap, np.uint64)
            grown[: self.words.size] = self.words
            self.words = grown
            fresh = np.zeros(cap, np.uint64)
            fresh[: self.fresh.size] = self.fresh
            self.fresh = fresh

    def _extend(self, n: int) -> int:
        """Move the logical end out so that a run of ``n`` pages fits there.

        The run starts at the free tail of the current bitmap, if any: found
        from the last non-zero word, not by walking the tail page by page.
        """
        used_words = np.flatnonzero(self.words[: -(-self.nbits // 64)])
        if used_words.size:
            w = int(used_words[-1])
            start = w * 64 + int(self.words[w]).bit_length()  # one past the last used page
        else:
            start = 0
        new_nbits = start + n
        self.pager.mf.grow(new_nbits * 4096, self.max_size)
        self._ensure_capacity(new_nbits)
        old = self.nbits
        self.nbits = new_nbits
        self._touch(old, new_nbits - old)
        return start

    def _take(self, start: int, count: int) -> None:
        kb.set_range(self.words, start, count)
        kb.set_range(self.fresh, start, count)
        self.fresh_runs.append((start, count))
        self._touch(start, count)

    # ---------------------------------------------------------------- public
    def _search_end(self) -> int:
        """Allocation looks below this page first (compaction lowers it)."""
        return min(self.nbits, self.limit) if self.limit else self.nbits

    def alloc_below(self, n: int, end: int) -> int | None:
        """Allocate ``n`` contiguous pages entirely below page ``end``, or None."""
        start = int(kb.find_best_fit(self.words, min(end, self.nbits), n))
        if start < 0:
            return None
        self._take(start, n)
        return start

    def alloc(self, n: int) -> int:
        """Allocate ``n`` contiguous pages (best fit); return the first page."""
        start = int(kb.find_best_fit(self.words, self._search_end(), n))
        if start < 0 and self.limit:
            start = int(kb.find_best_fit(self.words, self.nbits, n))
        if start < 0:
            start = self._extend(n)
        self._take(start, n)
        return start

    def alloc_scattered(self, n: int) -> list[int]:
        """Allocate ``n`` single pages, contiguous if possible; return them sorted."""
        if n == 0:
            return []
        end = self._search_end()
        start = int(kb.find_best_fit(self.words, end, n))
        if start >= 0:
            self._take(start, n)
            return list(range(start, start + n))
        pages: list[int] = []
        hint = 3
        while len(pages) < n:
            page = int(kb.find_first_fit(self.words, end, 1, hint))
            if page < 0:
                break
            self._take(page, 1)
            pages.append(page)
            hint = page + 1
        if len(pages) < n:
            start = self.alloc(n - len(pages))
            pages.extend(range(start, start + n - len(pages)))
        return sorted(pages)

    def free(self, start: int, count: int, birth: int = 0) -> None:
        """Free a run: at once if this transaction allocated it, else pending.

        ``birth`` is the generation that wrote the run (0 when unknown, which
        is safe but holds the run behind every older pin).
        """
        if count <= 0:
            return
        if self.holds(start, count):
            # A live view reads it while pinning an older generation (see hold).
            self.txn_freed.append((start, count, 0))
            return
        fresh = int(kb.count_used(self.fresh, start, count))
        if fresh == count:
            kb.clear_range(self.words, start, count)
            kb.clear_range(self.fresh, start, count)
            self._touch(start, count)
        elif fresh == 0:
            self.txn_freed.append((start, count, birth))
        else:
            for page in range(start, start + count):
                self.free(page, 1, birth)

    def hold(self, start: int, count: int, generation: int, owner: object) -> None:
        """Keep a run this transaction wrote from reuse while ``owner`` (a view) lives.

        The view pins a generation older than the run's birth, so the birth
        rule alone would not protect the run.  Until ``owner`` is collected, a
        free of the run (in this transaction or a later one) goes through the
        pending list with birth 0, so the view's pin decides when it returns,
        and a rollback that forgets the run keeps it used and pending at
        ``generation`` instead of freeing it.
        """
        self.held.append((generation, start, count, weakref.ref(owner)))

    def holds(self, start: int, count: int) -> bool:
        """True when a live view holds part of the run (see :meth:`hold`)."""
        return bool(self.held) and any(s < start + count and start < s + c
                                       for _g, s, c, _r in self._live_held())

    def _live_held(self) -> list[tuple[int, int, int, weakref.ref[Any]]]:
        self.held = [h for h in self.held if h[3]() is not None]
        return self.held

    def release(self, safe_generation: int, pins: Iterable[int] = ()) -> None:
        """Return pending runs no commit still in use can reach.

        A run freed at ``f`` and born at ``b`` is released when
        ``f <= safe_generation`` (the commit that freed it is durable), no
        generation in ``pins`` (live readers, views and snapshots) lies in
        ``[b, f)`` and no live view of this handle holds part of it (see
        :meth:`hold`).
        """
        pins = sorted(set(pins))
        keep = []
        for rec in self.pending:
            gen, start, count, birth = rec
            i = bisect_left(pins, birth)
            if (gen <= safe_generation and (i == len(pins) or pins[i] >= gen)
                    and not self.holds(start, count)):
                kb.clear_range(self.words, start, count)
                self._touch(start, count)
            else:
                keep.append(rec)
        self.pending = keep

    def resurrect(self, pages: np.ndarray) -> None:
        """Take ``pages`` (sorted, all pending) back into use: restore reuses them."""
        if not pages.size:
            return
        keep = []
        for gen, start, count, birth in self.pending:
            lo, hi = np.searchsorted(pages, [start, start + count])
            if lo == hi:
                keep.append((gen, start, count, birth))
                continue
            mask = np.ones(count, bool)
            mask[pages[lo:hi] - start] = False
            for s, c in _runs(np.flatnonzero(mask) + start):
                keep.append((gen, s, c, birth))
        self.pending = keep

    def shrink(self) -> int:
        """Cut the logical end to just past the last used page; return it."""
        used_words = np.flatnonzero(self.words[: -(-self.nbits // 64)])
        if used_words.size:
            w = int(used_words[-1])
            end = w * 64 + int(self.words[w]).bit_length()
        else:
            end = 3
        self.nbits = min(self.nbits, end)
        return self.nbits

    # ---------------------------------------------------------------- commit
    def write_state(self, generation: int) -> tuple[dict[str, Any], list[int]]:
        """Persist the free map and pending list for commit ``generation``.

        Returns the meta fields to record and the headed pages written.  The
        allocations made here (new free-map pages, directory, pending list)
        change the bitmap they describe, so the sizes are iterated to a fixed
        point before anything is written.
        """
        assigned: dict[int, int] = {}
        nd, np_ = self.dir_run, self.pending_run
        for run in (nd, np_):
            if run[1]:
                self.txn_freed.append((run[0], run[1], self.pager.header_of(run[0])[2]))
        dir_run = (0, 0)
        pend_run = (0, 0)
        dropped: set[int] = set()
        while True:
            nseg = _segments(self.nbits)
            for seg in range(nseg, len(self.fm_ptrs)):  # the container shrank
                if seg not in dropped:
                    dropped.add(seg)
                    self.free(self.fm_ptrs[seg][0], 1, self.fm_ptrs[seg][1])
            self.dirty_segs = {seg for seg in self.dirty_segs if seg < nseg}
            new_segs = set(range(len(self.fm_ptrs), nseg))
            todo = sorted(seg for seg in self.dirty_segs | new_segs if seg not in assigned)
            for seg in todo:
                if seg < len(self.fm_ptrs):
                    self.txn_freed.append((self.fm_ptrs[seg][0], 1, self.fm_ptrs[seg][1]))
                assigned[seg] = self.alloc(1)  # may grow the container: loop again
            if _segments(self.nbits) != nseg:
                continue
            ndir = -(-nseg // FMDIR_ENTRIES) if nseg > META_FM_INLINE else 0
            if dir_run[1] != ndir:
                if dir_run[1]:
                    self.free(*dir_run)
                dir_run = (self.alloc(ndir), ndir) if ndir else (0, 0)
                continue
            listed = self._pending_entries(generation)
            npend = (-(-len(listed) // PENDING_PER_PAGE)
                     if len(listed) > META_PENDING_INLINE else 0)
            if pend_run[1] != npend:
                if pend_run[1]:
                    self.free(*pend_run)
                pend_run = (self.alloc(npend), npend) if npend else (0, 0)
                continue
            if _segments(self.nbits) == nseg and self.dirty_segs <= assigned.keys():
                break
        written: list[int] = []
        fm_ptrs = list(self.fm_ptrs) + [(0, 0)] * (nseg - len(self.fm_ptrs))
        fm_ptrs = fm_ptrs[:nseg]
        for seg, page in sorted(assigned.items()):
            words = self.words[seg * FM_WORDS : (seg + 1) * FM_WORDS]
            self.pager.write_headed(page, PT_FREEMAP, generation, FM_WORDS, words.view(np.uint8))
            fm_ptrs[seg] = (page, generation)
            written.append(page)
        refs = np.array(fm_ptrs, dtype=PAGE_REF)
        if dir_run[1]:
            top = []
            for i in range(dir_run[1]):
                part = refs[i * FMDIR_ENTRIES : (i + 1) * FMDIR_ENTRIES]
                page = dir_run[0] + i
                self.pager.write_headed(page, PT_FMDIR, generation, part.size, part.view(np.uint8))
                top.append((page, generation))
                written.append(page)
            ptrs, levels = np.array(top, dtype=PAGE_REF), 2
        else:
            ptrs, levels = refs, 1
        pending = self._pending_entries(generation)
        entries = np.array(pending, dtype=PENDING_ENTRY)
        for i in range(pend_run[1]):
            part = entries[i * PENDING_PER_PAGE : (i + 1) * PENDING_PER_PAGE]
            page = pend_run[0] + i
            self.pager.write_headed(page, PT_PENDING, generation, part.size, part.view(np.uint8))
            written.append(page)
        fields = {
            "total_pages": self.nbits,
            "fm_segments": nseg,
            "fm_levels": levels,
            "fm_nptrs": ptrs.size,
            "fm_ptrs": ptrs,
            "pending_page": pend_run[0],
            "pending_npages": pend_run[1],
            "pending_count": entries.size,
            "pending_inline": entries if not pend_run[1] else entries[:0],
        }
        self._staged = (fm_ptrs, pending, pend_run, dir_run)
        return fields, written

    def _pending_entries(self, generation: int) -> list[tuple[int, int, int, int]]:
        return self.pending + [(generation, s, c, b) for s, c, b in _coalesce(self.txn_freed)]

    def committed(self) -> None:
        """The commit whose state ``write_state`` wrote is durable."""
        fm_ptrs, pending, pend_run, dir_run = self._staged
        self.fm_ptrs = fm_ptrs
        self.pending = pending
        self.pending_run = pend_run
        self.dir_run = dir_run
        for start, count in self.fresh_runs:
            kb.clear_range(self.fresh, start, count)
        self._reset_txn()
        self._durable = (self.nbits, list(self.fm_ptrs), list(self.pending),
                         self.pending_run, self.dir_run)

    def rollback(self) -> int:
        """Forget the transaction: reload changed segments from the durable map.

        Returns how many runs that live views hold (see :meth:`hold`) were
        kept pending; the caller must commit that state for it to outlive the
        handle.  Held pages the durable map already marks used are left alone.
        """
        nbits, fm_ptrs, pending, pend_run, dir_run = self._durable
        for seg in self.dirty_segs:
            lo, hi = seg * FM_WORDS, (seg + 1) * FM_WORDS
            if seg < len(fm_ptrs):
                self.words[lo:hi] = self._read_segment(*fm_ptrs[seg])
            elif lo < self.words.size:
                self.words[lo:hi] = 0
        self.fresh[:] = 0
        self.nbits = nbits
        self.fm_ptrs = list(fm_ptrs)
        self.pending = list(pending)
        self.pending_run = pend_run
        self.dir_run = dir_run
        self._reset_txn()
        kept = 0
        held = self._live_held()
        if held:
            # A durable pending run that a live view reads (the transaction had
            # released and reused it) must outlive this handle: only the view's
            # pin may hold it back after a reopen, so it becomes born at 0 and
            # freed no earlier than the view's hold, which its pin lies under.
            # The rewritten record must be committed for that to last: count it.
            pending = []
            for g, s, c, b in self.pending:
                over = [hg for hg, hs, hc, _r in held if hs < s + c and s < hs + hc]
                if over and (max(g, *over), 0) != (g, b):
                    pending.append((max(g, *over), s, c, 0))
                    kept += 1
                else:
                    pending.append((g, s, c, b))
            self.pending = pending
        for generation, start, count, _ref in held:
            if start + count > self.nbits:
                self._ensure_capacity(start + count)
                self._touch(self.nbits, start + count - self.nbits)
                self.nbits = start + count
            # Pages the durable state uses (its tree or its pending runs) stay
            # as they are: release() skips runs a live view holds.  The rest
            # were this transaction's and would be free: keep them pending.
            w0 = start // 64
            bits = np.unpackbits(self.words[w0 : -(-(start + count) // 64)].view(np.uint8),
                                 bitorder="little")[start - w0 * 64 :][:count]
            for s, c in _runs(np.flatnonzero(bits == 0) + start):
                kb.set_range(self.words, s, c)
                self._touch(s, c)
                # Birth 0: whatever generation the view pins holds the run back.
                self.pending.append((generation, s, c, 0))
                kept += 1
        return kept

    # ------------------------------------------------------------------ stats
    def stats(self) -> tuple[int, int, int]:
        """(free runs, largest free run, free pages) within the logical size."""
        runs, largest, free = kb.free_run_stats(self.words, self.nbits)
        return int(runs), int(largest), int(free)


def _coalesce(runs: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Sort ``(start, count, birth)`` runs and merge adjacent ones of one birth."""
    out: list[tuple[int, int, int]] = []
    for start, count, birth in sorted(runs):
        if out and out[-1][0] + out[-1][1] == start and out[-1][2] == birth:
            out[-1] = (out[-1][0], out[-1][1] + count, birth)
        else:
            out.append((start, count, birth))
    return out


def _runs(pages: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs ``(start, count)`` of a sorted array of page numbers."""
    if not pages.size:
        return []
    breaks = np.flatnonzero(np.diff(pages) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [pages.size]))
    return [(int(pages[a]), int(b - a)) for a, b in zip(starts, ends)]


def _pending_rec(rec: np.void) -> tuple[int, int, int, int]:
    return int(rec["generation"]), int(rec["start"]), int(rec["count"]), int(rec["birth"])

