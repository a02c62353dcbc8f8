"""The array service: ``write_array``, ``create_dataset``, views, slices, resize, attrs.

Why a service.  Arrays are files with a descriptor (``arrayformat.py``) and
two data layouts (``arraydata.py``); everything numpy-shaped about them lives
in this package.  The facade (``container.py``) owns the handle's lock, the
choke point and the pins of read calls; it hands each call a transaction and
this service does the work through that transaction's public surface (its
catalog, file data, array data, allocator and the building blocks of a
write).  One :class:`ArrayService` exists per handle, for the state arrays
keep per handle: the view pins (``pins.py``) and the per-generation cache of
whole mapped arrays (``views.mapped_whole``).

What it owns.  The descriptor of an array lives inline in its catalog entry
(:meth:`ArrayService._store`); attributes too large for the entry's cell move
to an attrs blob under the reserved chunk index ``ATTRS_INDEX``.  New arrays
get their pages in one call of the array data layer: one contiguous extent,
so ``view`` can map it, or encoded chunks for a compressed array or an
encrypted container.  Writes validate with numpy (``indexing.py``), then
scatter only the chunks that change (``gather.py``).
"""

from __future__ import annotations

import math
import operator
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..arrayformat import (
    ATTRS_INDEX,
    ENTRY_ARRAY,
    FLAG_ATTRS_EXTERNAL,
    FLAG_FRAGMENTED,
    LAYOUT_CHUNKED,
    LAYOUT_CONTIGUOUS,
    ArrayDesc,
    encode_attrs,
)
from ..catalog import Entry
from ..errors import (
    EncodedDataError,
    IsADirectoryError,
    NotContiguousError,
    UnsupportedDtypeError,
)
from ..layout import ENTRY_POLICY_SHIFT, ENTRY_STRUCT, KIND_DIR, KIND_FILE, MAX_CELL
from ..txn import ReadTxn, WriteTxn
from .descriptors import array_entry, decode_cached
from .gather import gather, set_chunked, set_contiguous, shrink_chunks
from .indexing import normalize_key, validate_set
from .pins import ViewPins
from .reads import attrs_of, getitem
from .shapes import as_shape, check_dtype, check_grid, guess_chunks
from .views import WholeCache, view_of

__all__ = ["ArrayService", "DatasetPlan", "plan_dataset"]


@dataclass(frozen=True, slots=True)
class DatasetPlan:
    """A validated ``create_dataset`` request (checked before the handle is locked)."""

    shape: tuple[int, ...]
    """Initial shape."""
    dtype: np.dtype
    """Element type."""
    maxshape: tuple[int | None, ...]
    """Largest shape ``resize`` accepts (None: unlimited)."""
    chunks: tuple[int, ...] | None
    """Chunk shape, None for a contiguous array."""
    fill: np.ndarray
    """The fill value as a 0-d array of ``dtype``."""
    attrs: dict[str, Any] | None
    """Attributes to store (None: none)."""


def plan_dataset(shape: Any, dtype: Any, maxshape: Any, chunks: Any, fill_value: Any,
                 attrs: dict[str, Any] | None) -> DatasetPlan:
    """Validate and complete the arguments of ``create_dataset`` (see the facade)."""
    shape = as_shape(shape)
    dtype = np.dtype(dtype)
    check_dtype(dtype)
    if maxshape is None:
        maxshape = shape
    elif isinstance(maxshape, (int, np.integer)):
        maxshape = (int(maxshape),)
    maxshape = tuple(None if m is None else operator.index(m) for m in maxshape)
    if len(maxshape) != len(shape) or any(
            m is not None and m < s for s, m in zip(shape, maxshape)):
        raise ValueError(f"maxshape {maxshape} does not fit shape {shape}")
    try:
        fill = np.array(fill_value, dtype)  # a tuple is one record of a structured dtype
        if fill.shape != ():
            fill = np.full((), fill_value, dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"fill_value {fill_value!r} does not fit dtype {dtype}: {exc}") \
            from None
    if attrs is not None:
        encode_attrs(attrs)
    if chunks is False:
        chunks = None
    if maxshape != shape and chunks is None:
        chunks = True
    if chunks is not None and not shape:
        raise TypeError("a 0-d dataset cannot be chunked")
    if chunks is True:
        chunks = guess_chunks(shape, maxshape, dtype.itemsize)
    elif chunks is not None:
        chunks = as_shape(chunks)
        if len(chunks) != len(shape) or 0 in chunks:
            raise ValueError(f"chunks {chunks} must be positive, one per axis of {shape}")
    if chunks and math.prod(chunks) * dtype.itemsize >= 1 << 32:
        raise ValueError(f"chunks {chunks} of {dtype} are 4 GiB or more")
    return DatasetPlan(shape, dtype, maxshape, chunks, fill, attrs)


class ArrayService:
    """Array operations of one handle, each run on the transaction it is given."""

    def __init__(self, container_path: str, locking: bool) -> None:
        #: Generations this handle's live views read (a pin source of the environment).
        self.pins = ViewPins(container_path, locking)
        #: Whole mapped arrays of read-only handles, per generation and mapping.
        self.whole_cache: WholeCache = {}
        #: path -> (generation, pinned view or None) of a plain read-only handle:
        #: while no newer commit exists, slices index the view without a read call.
        self.kept: dict[str, tuple[int, np.ndarray | None]] = {}

    # ------------------------------------------------------------------ reads
    def describe(self, txn: ReadTxn, p: str) -> ArrayDesc:
        """The descriptor of the array at ``p``."""
        return array_entry(txn, p)[1]

    def attrs(self, txn: ReadTxn, p: str) -> dict[str, Any]:
        """The ``attrs`` of the array at ``p``."""
        return attrs_of(txn, p)

    def view(self, txn: ReadTxn, p: str) -> np.ndarray:
        """A read-only, zero-copy, pinned ndarray on the array at ``p``."""
        return view_of(txn, self.pins, p)

    def getitem(self, txn: ReadTxn, p: str, key: Any) -> Any:
        """``array[key]`` as a new array (or scalar)."""
        return getitem(txn, self.whole_cache, p, key)

    def kept_view(self, p: str, newest: int) -> tuple[bool, np.ndarray | None]:
        """``(True, view)`` when a view of ``p`` kept for generation ``newest`` exists
        (the view is None for arrays that cannot be viewed), else ``(False, None)``."""
        hit = self.kept.get(p)
        if hit is not None and hit[0] == newest:
            return True, hit[1]
        return False, None

    def keep_view(self, txn: ReadTxn, p: str) -> None:
        """Keep a pinned view of ``p`` for the next slices of a plain read-only handle.

        The view pins its generation like any view, so holding it between
        calls is safe.  Only views of one generation are kept: the first read
        after a newer commit drops every older one (letting their generations
        go), and :meth:`forget` drops them all when the handle closes.  Arrays
        that cannot be viewed (chunked, changed in place, compressed,
        encrypted) are remembered as such, so the next slice does not try
        again.
        """
        try:
            view: np.ndarray | None = view_of(txn, self.pins, p)
        except (NotContiguousError, EncodedDataError):
            view = None
        gen = txn.generation
        if len(self.kept) >= 256 or any(g != gen for g, _v in self.kept.values()):
            self.kept = {q: kept for q, kept in self.kept.items() if kept[0] == gen}
            if len(self.kept) >= 256:
                self.kept.clear()
        self.kept[p] = (gen, view)

    def forget(self) -> None:
        """Drop the kept views and cached arrays (the handle closes or was forked)."""
        self.kept = {}
        self.whole_cache.clear()

    def read_bytes(self, txn: ReadTxn, entry: Entry, offset: int, end: int) -> bytes:
        """``read()`` of an array: its stored bytes (C-order bytes when chunked)."""
        desc = decode_cached(entry.inline)
        if desc.layout == LAYOUT_CONTIGUOUS:
            return txn.data.read(entry, offset, end)
        full = gather(txn, entry, desc, [(0, s) for s in desc.shape])
        return full.tobytes()[offset:end]

    # ----------------------------------------------------------------- writes
    def write_array(self, txn: WriteTxn, p: str, arr: np.ndarray, attrs: dict[str, Any] | None,
                    policy: int, level: int) -> None:
        """Store ``arr`` at ``p`` as one contiguous array (replacing what is there)."""
        fortran = arr.ndim > 1 and arr.flags.f_contiguous and not arr.flags.c_contiguous
        order: Literal["C", "F"] = "F" if fortran else "C"
        flat = arr.ravel(order=order)
        raw = flat.view(np.uint8).data if flat.size else memoryview(b"")
        entry, existing, missing = self._new_entry(txn, p, policy)
        desc = ArrayDesc(arr.dtype, arr.shape, order, LAYOUT_CONTIGUOUS, 0, arr.shape,
                         None, b"", b"")
        data = txn.arrays
        if data.encoded(entry):
            data.write_encoded(entry, raw, txn.generation + 1, level)
        else:
            data.write_extent(entry.file_id, raw, txn.generation + 1)
        txn.wrote_data = True
        entry.size = len(raw)
        self._finish_new(txn, p, entry, existing, missing, desc, attrs)

    def create_dataset(self, txn: WriteTxn, p: str, plan: DatasetPlan, policy: int,
                       level: int) -> None:
        """Create the array ``plan`` describes at ``p`` without data (fill value)."""
        entry, existing, missing = self._new_entry(txn, p, policy)
        dtype, shape = plan.dtype, plan.shape
        fill_raw = plan.fill.tobytes()
        stored_fill = fill_raw if any(fill_raw) else b""
        if plan.chunks is None:
            desc = ArrayDesc(dtype, shape, "C", LAYOUT_CONTIGUOUS, 0, shape, None,
                             stored_fill, b"")
            data = txn.arrays
            if data.encoded(entry):
                data.fill_encoded(entry, desc.nbytes, fill_raw, txn.generation + 1, level)
            else:
                data.fill_extent(entry.file_id, desc.nbytes, fill_raw, txn.generation + 1)
            txn.wrote_data = True
        else:
            desc = ArrayDesc(dtype, shape, "C", LAYOUT_CHUNKED, 0, plan.maxshape, plan.chunks,
                             stored_fill, b"")
            check_grid(desc, shape, p)
        entry.size = desc.nbytes
        self._finish_new(txn, p, entry, existing, missing, desc, plan.attrs)

    def set_attrs(self, txn: WriteTxn, p: str, attrs: dict[str, Any]) -> None:
        """Replace the ``attrs`` of the array at ``p``."""
        entry, desc = array_entry(txn, p)
        entry.mtime_ns = time.time_ns()
        self._store(txn, p, entry, desc, attrs)

    def setitem(self, txn: WriteTxn, p: str, key: Any, value: Any) -> None:
        """``array[key] = value``, copying on write only the chunks that change."""
        entry, desc = array_entry(txn, p)
        validate_set(key, value, desc)
        box, new = normalize_key(key, desc.shape)
        if desc.layout == LAYOUT_CONTIGUOUS:
            changed = set_contiguous(txn, entry, desc, box, new, value)
            if changed:
                desc = desc.replace(flags=desc.flags | FLAG_FRAGMENTED)
        else:
            changed = set_chunked(txn, entry, desc, box, new, value)
        if changed:
            entry.mtime_ns = time.time_ns()
            self._store(txn, p, entry, desc, None)

    def append(self, txn: WriteTxn, p: str, values: Any, axis: int) -> None:
        """Grow the chunked dataset at ``p`` along ``axis`` by ``values``, as one change:
        if writing the values fails, the dataset keeps its old shape."""
        shape = array_entry(txn, p)[1].shape
        if not shape:
            raise TypeError("cannot append to a 0-d dataset")
        axis = operator.index(axis)
        if not -len(shape) <= axis < len(shape):
            raise np.exceptions.AxisError(axis, len(shape))
        axis %= len(shape)
        values = np.asarray(values)
        if values.ndim == len(shape) - 1:
            values = np.expand_dims(values, axis)
        rest = shape[:axis] + shape[axis + 1:]
        if values.ndim != len(shape) or values.shape[:axis] + values.shape[axis + 1:] != rest:
            raise ValueError(f"cannot append values of shape {values.shape} along axis "
                             f"{axis} of a dataset of shape {shape}")
        n = values.shape[axis]
        if n == 0:
            return
        grown = list(shape)
        grown[axis] += n
        self.resize(txn, p, tuple(grown))
        try:
            self.setitem(txn, p, (slice(None),) * axis + (slice(shape[axis], shape[axis] + n),),
                         values)
        except BaseException:
            self.resize(txn, p, shape)  # cut back: the chunks it added go again
            raise

    def resize(self, txn: WriteTxn, p: str, shape: Any) -> None:
        """Change the shape of the chunked dataset at ``p`` within its maxshape."""
        entry, desc = array_entry(txn, p)
        shape = as_shape(shape)
        if desc.layout != LAYOUT_CHUNKED:
            raise TypeError(f"{p} is not chunked, so it cannot be resized; create it with "
                            "create_dataset(..., maxshape=...)")
        if len(shape) != len(desc.shape):
            raise ValueError(f"cannot change the number of dimensions of {p} "
                             f"({desc.shape} -> {shape})")
        for s, m in zip(shape, desc.maxshape):
            if m is not None and s > m:
                raise ValueError(f"shape {shape} exceeds maxshape {desc.maxshape} of {p}")
        check_grid(desc, shape, p)
        shrink_chunks(txn, entry, desc, shape)
        desc = desc.replace(shape=shape)
        entry.size = desc.nbytes
        entry.mtime_ns = time.time_ns()
        self._store(txn, p, entry, desc, None)

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _store(txn: WriteTxn, p: str, entry: Entry, desc: ArrayDesc,
               attrs: dict[str, Any] | None) -> None:
        """Put an array entry, its attrs inline or (when too large) in the attrs blob."""
        data = txn.arrays
        gen = txn.generation + 1
        if attrs is not None:
            raw = encode_attrs(attrs) if attrs else b""
            data.drop_chunk(entry.file_id, ATTRS_INDEX)
            desc = desc.replace(attrs_json=raw, flags=desc.flags & ~FLAG_ATTRS_EXTERNAL)
            fixed = 1 + len(p.encode("utf-8")) + ENTRY_STRUCT.size + len(entry.meta)
            if fixed + len(desc.encode()) > MAX_CELL:
                desc = desc.replace(attrs_json=b"", flags=desc.flags | FLAG_ATTRS_EXTERNAL)
                data.put_chunk(entry, ATTRS_INDEX, raw, gen)
                txn.wrote_data = True
        entry.inline = desc.encode()
        cell = 1 + len(p.encode("utf-8")) + ENTRY_STRUCT.size + len(entry.meta) + len(entry.inline)
        if cell > MAX_CELL:
            raise UnsupportedDtypeError(
                f"{p}: the array descriptor ({len(entry.inline)} bytes for dtype "
                f"{desc.dtype}) does not fit a catalog entry with this path; use a "
                "shorter path or fewer structured fields")
        txn.catalog.put(p, entry)
        txn.mark_dirty()

    @staticmethod
    def _new_entry(txn: WriteTxn, p: str, policy: int) -> tuple[Entry, Entry | None, list[str]]:
        existing = txn.entry(p)
        if p == "/" or (existing is not None and existing.kind == KIND_DIR):
            raise IsADirectoryError(f"{p} is a directory", p)
        missing = txn.missing_parents(p)
        now = time.time_ns()
        entry = Entry(KIND_FILE, ENTRY_ARRAY | policy << ENTRY_POLICY_SHIFT,
                      existing.mode if existing else 0o644, 0, now,
                      existing.ctime_ns if existing else now, txn.new_file_id(),
                      existing.meta if existing else b"")
        return entry, existing, missing

    def _finish_new(self, txn: WriteTxn, p: str, entry: Entry, existing: Entry | None,
                    missing: list[str], desc: ArrayDesc, attrs: dict[str, Any] | None) -> None:
        if existing is not None:
            txn.data.free(existing)
        else:
            txn.file_count += 1
        txn.make_dirs(missing, entry.mtime_ns)
        self._store(txn, p, entry, desc, attrs if attrs is not None else {})
