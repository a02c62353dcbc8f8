"""Compaction: give deleted space back to the filesystem.

Copy-on-write never moves a live page, so space freed in the middle of the
file is reused but the file never shrinks by itself.  ``compact()`` moves
the live pages that lie past the point where everything would fit (the
*boundary*: the first page below which there are at least as many free pages
as there are used pages above it) into holes below it, then cuts the file.

Each step is an ordinary commit, so a kill at any moment loses nothing
committed: a chunk is copied into new pages and its record repointed; a
B+tree node is moved by copying its root-to-leaf path (copy-on-write does
that when the path is dirtied); free-map segments are rewritten.  The old
pages go to the pending-free list like any other freed page, so a live
reader, view or snapshot that can reach them keeps them (and the file cannot
shrink past them until it lets go).  Pages a snapshot reaches are not moved
at all: the snapshot keeps the original, so a copy would only add space.
``max_pages`` bounds the pages moved by one call, so a writer can interleave
compaction with its own work.

Cutting the file: the logical size (``total_pages``) shrinks with a commit;
the file itself is truncated only to the larger size of the two meta pages,
so the fallback commit always stays readable.  ``copy(dest, compact=True)``
is the other way to defragment: it writes a fresh container holding the
current files only (like ``mdb_copy -c``).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arrayformat import ATTRS_INDEX, FLAG_FRAGMENTED, LAYOUT_CONTIGUOUS, decode_desc
from .catalog import Entry
from .errors import EncodedDataError, NotContiguousError
from .filedata import entry_policy
from .layout import (
    CHUNK_STRUCT,
    CODEC_NAMES,
    ENTRY_ARRAY,
    ENTRY_INLINE,
    FM_BITS,
    KEY_CHUNK,
    KEY_PATH,
    PAGE_SIZE,
)

#: Signature of progress callbacks: ``callback(done, total)`` in pages (compact)
#: or bytes (copy).
Callback = Callable[[int, int], Any]


@dataclass(frozen=True, slots=True)
class CompactResult:
    """What :meth:`Cartridge.compact` did."""

    moved_pages: int
    """Live pages copied to lower positions."""
    size_before: int
    """Bytes of the file before."""
    size_after: int
    """Bytes of the file after."""
    done: bool
    """True when nothing more can be moved now (False when ``max_pages`` stopped it)."""
    commits: int
    """Commits made (each step is one, crash-safe on its own)."""


class CompactMixin:
    """``compact`` and ``copy``."""

    def compact(self, max_pages: int | None = None,
                callback: Callback | None = None) -> CompactResult:
        """Move live pages from the end of the file into holes, then truncate it.

        ``max_pages`` bounds the pages moved by this call (None: as many as it
        takes); call again to continue.  Pending changes are committed
        first.  ``callback(moved, to_move)`` reports progress.
        """
        if max_pages is not None:
            if isinstance(max_pages, bool) or not isinstance(max_pages, (int, np.integer)):
                raise TypeError(f"max_pages must be an int or None, got {max_pages!r}")
            if max_pages < 1:
                raise ValueError(f"max_pages must be at least 1, got {max_pages}")
            max_pages = int(max_pages)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        with self._lock:
            self._check_writable()
            self.commit()
            before = self._mf.file_size()
            start_gen = self._gen
            moved = 0
            done = False
            while True:
                budget = None if max_pages is None else max_pages - moved
                if budget is not None and budget <= 0:
                    break
                step, remaining = self._compact_step(budget)
                moved += step
                if callback is not None:
                    callback(moved, moved + remaining)
                if step == 0:
                    done = True
                    break
            self._compact_truncate()
            return CompactResult(moved, before, self._mf.file_size(), done,
                                 self._gen - start_gen)

    def _boundary(self) -> tuple[int, int]:
        """(first page of the tail to empty, used pages at or past it)."""
        alloc = self._alloc
        nbits = alloc.nbits
        used = np.unpackbits(alloc.words.view(np.uint8), bitorder="little")[:nbits].astype(bool)
        free_below = np.concatenate(([0], np.cumsum(~used)))
        used_from = used.sum() - np.concatenate(([0], np.cumsum(used)))
        b = int(np.argmax(free_below >= used_from))
        return b, int(used_from[b])

    def _compact_step(self, budget: int | None) -> tuple[int, int]:
        """Move up to ``budget`` pages below the boundary in one commit."""
        alloc = self._alloc
        boundary, tail_used = self._boundary()
        if tail_used == 0:
            return 0, 0
        nodes: list[bytes] = []
        chunks: list[tuple[bytes, tuple]] = []
        viewable: set[int] = set()
        store = self._store
        # A page a snapshot reaches stays where it is whatever we do: moving
        # it would only add a copy.  (Pages under readers and views are
        # moved: their old copies stay pending until the pin goes.)
        newest_snap = max(self._snapshot_generations(), default=-1)
        encrypted = self._pager.encrypted  # then every array is encoded chunk by chunk

        def first_key(node: Any) -> bytes | None:
            while not node.leaf:
                node = store.load(node.vals[0])
            return node.keys[0] if node.keys else None

        def visit(page: int, gen: int, node: Any, _depth: int) -> None:
            if page >= boundary and gen > newest_snap:
                key = first_key(node)
                if key is not None:
                    nodes.append(key)
            if node.leaf:
                for key, val in zip(node.keys, node.vals):
                    if key[:1] == KEY_PATH and not encrypted and _viewable(val):
                        viewable.add(Entry.decode(val).file_id)
                    if key[:1] == KEY_CHUNK:
                        rec = CHUNK_STRUCT.unpack(val)
                        if rec[0] and rec[0] + rec[1] > boundary and rec[7] > newest_snap:
                            chunks.append((key, rec))

        self._tree.walk(visit)
        moved = 0
        pager = self._pager
        extents = _viewable_extents(self._cat, chunks, viewable)
        for fid, recs in extents.items():
            if budget is not None and moved >= budget:
                break
            # A viewable array is one page run (FORMAT.md 12.3): move it whole.
            first = min(rec[0] for _idx, rec in recs)
            npages = max(rec[0] + rec[1] for _idx, rec in recs) - first
            new = alloc.alloc_below(npages, first)
            if new is None:
                continue
            pager.write_data(new, pager.data(first, npages))
            for idx, rec in recs:
                # The record keeps its generation: it is in an encrypted chunk's
                # associated data, and as a birth it is only ever too old (safe).
                self._cat.put_chunk(fid, idx, (new + rec[0] - first, *rec[1:]))
                alloc.free(rec[0], rec[1], rec[7])
            self._wrote_data = True
            moved += npages
        for key, rec in chunks:
            if budget is not None and moved >= budget:
                break
            if int.from_bytes(key[1:9], "big") in extents:
                continue
            page, npages = rec[0], rec[1]
            new = alloc.alloc_below(npages, page)
            if new is None:
                continue
            pager.write_data(new, pager.data(page, npages)[: rec[3]])
            fid = int.from_bytes(key[1:9], "big")
            idx = int.from_bytes(key[9:17], "big")
            self._cat.put_chunk(fid, idx, (new, *rec[1:]))  # generation kept: see above
            alloc.free(page, npages, rec[7])
            self._wrote_data = True
            moved += npages
        for key in nodes:
            if budget is not None and moved >= budget:
                break
            self._tree._descend(key)
            moved += 1
        for seg, (page, _g) in enumerate(alloc.fm_ptrs):
            if page >= boundary:
                alloc.dirty_segs.add(seg)
                moved += 1
        runs = [alloc.pending_run, alloc.dir_run]
        moved += sum(n for p, n in runs if n and p + n > boundary)
        if not moved:
            return 0, 0
        alloc.limit = boundary
        try:
            self._dirty = True
            self.commit()
        finally:
            alloc.limit = 0
        return moved, max(0, tail_used - moved)

    def _compact_truncate(self) -> None:
        """Shrink the logical size, then the file, as far as both meta pages allow."""
        alloc = self._alloc
        for _ in range(2):  # the second commit makes the fallback meta small too
            if alloc.shrink() < int(self._meta["total_pages"]) or self._other_total() > alloc.nbits:
                self._dirty = True
                self.commit()
        keep = max(int(self._meta["total_pages"]), self._other_total())
        if self._mf.file_size() > keep * PAGE_SIZE:
            self._mf.sync()
            os.ftruncate(self._mf.fd, keep * PAGE_SIZE)
            self._mf.remap()

    def _other_total(self) -> int:
        """``total_pages`` of the other (fallback) meta page, if it is valid."""
        slot = 1 + (self._gen + 1) % 2
        _gen, meta, _problem = self._pager.read_meta_slot(slot)
        return int(meta["total_pages"]) if meta is not None else 0

    # ------------------------------------------------------------------ copy
    def copy(self, dest: str | os.PathLike[str], compact: bool = True, *,
             overwrite: bool = False, callback: Callback | None = None) -> None:
        """Write the current commit to a new container at ``dest``.

        With ``compact=True`` (like ``mdb_copy -c``) the copy is a fresh,
        defragmented container holding the files and directories with their
        metadata and times, and no snapshots.  With ``compact=False`` it is
        the pages of this commit as they are, snapshots included.
        ``callback(done, total)`` reports progress in bytes.
        """
        from .container import create

        with self._lock:
            self._check_open()
            if self._alloc is not None and self._dirty:
                self.commit()
        with self.reader() as src:
            if not compact:
                src._copy_raw(os.fspath(dest), overwrite, callback)
                return
            total = sum(info.size for _p, info in src.walk("/"))
            done = 0
            # The copy keeps the source's encryption (same key or password)
            # and default compression: a copy must not be weaker than its source.
            codec, level = src._default_policy()
            secrets = {k: self._options[k] for k in ("key", "password") if self._options.get(k)}
            with create(dest, overwrite=overwrite, chunk_size=src._chunk,
                        compression=CODEC_NAMES[codec], level=level or None,
                        **secrets) as out:
                for path, raw in src._scan("/", True):
                    entry = Entry.decode(raw)
                    if entry.kind != 1:
                        out.mkdir(path, exist_ok=True)
                    elif entry.flags & ENTRY_ARRAY:
                        _copy_array(src, out, path)
                        done += entry.size
                        if callback is not None:
                            callback(done, total)
                    else:
                        out.write(path, b"")
                        step = 64 << 20
                        for off in range(0, entry.size, step):
                            out.write_at(path, off, src.read(path, off, step))
                            done += min(step, entry.size - off)
                            if callback is not None:
                                callback(done, total)
                    _copy_attributes(out, path, entry)
                out.commit()
                out.compact()  # only drops the growth reserve: a fresh copy has no holes
            if callback is not None:
                callback(total, total)

    def _copy_raw(self, dest: str, overwrite: bool, callback: Callback | None) -> None:
        if os.path.exists(dest) and not overwrite:
            from .errors import FileExistsError

            raise FileExistsError(f"{dest!r} already exists; pass overwrite=True", dest)
        total = int(self._meta["total_pages"]) * PAGE_SIZE
        tmp = dest + ".tmp-copy"
        view = self._mf.view
        with builtins.open(tmp, "wb") as fh:
            step = FM_BITS * PAGE_SIZE
            for off in range(0, total, step):
                fh.write(view[off : min(total, off + step)])
                if callback is not None:
                    callback(min(total, off + step), total)
            # Only this commit's meta page: the other slot may describe a newer
            # commit whose pages this copy does not hold.
            other = (1 + (self._gen + 1) % 2) * PAGE_SIZE
            fh.seek(other)
            fh.write(bytes(PAGE_SIZE))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)


def _copy_array(src: Any, out: Any, path: str) -> None:
    """Copy an array with its layout, dtype, attrs and (for datasets) chunking."""
    ds = src.array(path)
    attrs = dict(ds.attrs)
    compression = src.stat(path).compression
    if ds.chunks is None:
        try:
            data = src.view(path)  # zero-copy, and keeps a Fortran order
        except (NotContiguousError, EncodedDataError):
            data = ds[...]
        out.write_array(path, data, attrs=attrs, compression=compression)
        return
    dst = out.create_dataset(path, ds.shape, ds.dtype, maxshape=ds.maxshape,
                             chunks=ds.chunks, fill_value=ds.fillvalue, attrs=attrs,
                             compression=compression)
    if ds.ndim == 0 or ds.size == 0:
        return
    rows = ds.chunks[0]  # one row of blocks at a time: bounded memory
    for lo in range(0, ds.shape[0], rows):
        dst[lo : lo + rows] = ds[lo : lo + rows]


def _copy_attributes(out: Any, path: str, entry: Entry) -> None:
    """Give the copied entry the source's metadata, mode and times."""
    new = out._entry(path)
    new.meta = entry.meta
    new.mode = entry.mode
    new.mtime_ns = entry.mtime_ns
    new.ctime_ns = entry.ctime_ns
    if new.flags & ENTRY_INLINE and not out._fits_inline(path, new.meta, new.size):
        new = out._to_chunked(new)
    out._cat.put(path, new)
    out._dirty = True



def _viewable(value: bytes) -> bool:
    """True for the ENTRY of a contiguous, unfragmented, uncompressed array (in a
    plain container: an encrypted one's arrays are encoded chunk by chunk)."""
    entry = Entry.decode(value)
    if not entry.flags & ENTRY_ARRAY or entry_policy(entry):
        return False
    desc = decode_desc(entry.inline)
    return desc.layout == LAYOUT_CONTIGUOUS and not desc.flags & FLAG_FRAGMENTED


def _viewable_extents(cat: Any, chunks: list[tuple[bytes, tuple]],
                      viewable: set[int]) -> dict[int, list]:
    """Data chunks of contiguous, unfragmented arrays among ``chunks``, by file id.

    Such an array's chunks must stay one page run (a view maps it as one
    array), so compaction moves all of them together or none.  Returns every
    data chunk record of each such file (not only the ones past the boundary).
    """
    fids = {int.from_bytes(key[1:9], "big") for key, _rec in chunks} & viewable
    out: dict[int, list] = {}
    for fid in fids:
        recs = [(idx, rec) for idx, rec in cat.chunks(fid, 0, ATTRS_INDEX) if rec[0]]
        if recs and fid in viewable:
            out[fid] = recs
    return out
