"""The array methods of ``Cartridge``: ``write_array``, ``create_dataset``, ``array``, ``view``.

Why this is still a mixin.  These methods read and write the handle's
transaction state directly (its catalog, allocator, file data, generation and
dirty flags), as the rest of the handle does today.  They are kept here, as
they were, while the handle's internals become transaction objects; then this
class becomes a service that works through a transaction's public surface
(issue 11), and the modules beside it, which already take their inputs as
arguments, stay as they are.

What it owns.  The descriptor of an array lives inline in its catalog entry
(``_store_array``); attributes too large for the entry's cell move to an
attrs blob under the reserved chunk index ``ATTRS_INDEX``.  New arrays get
their pages in one call of the array data layer (``arraydata.py``): one
contiguous extent, so ``view`` can map it, or encoded chunks for a compressed
array or an encrypted container.  Reads run through ``_with_read``, which
wraps each function of ``reads.py``/``views.py`` in the handle's pinned read
call (``mvcc._read_op``); writes validate with numpy (``indexing.py``), then
scatter only the chunks that change (``gather.py``).
"""

from __future__ import annotations

import math
import operator
import time
from typing import Any

import numpy as np

from .. import paths
from ..arraydata import ArrayData
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
from ..codec import DEFAULT, parse_policy
from ..errors import IsADirectoryError, NotAnArrayError, UnsupportedDtypeError
from ..layout import ENTRY_POLICY_SHIFT, ENTRY_STRUCT, KIND_DIR, KIND_FILE, MAX_CELL
from ..mvcc import _read_op
from .dataset import Dataset
from .descriptors import decode_cached
from .gather import gather, set_chunked, set_contiguous, shrink_chunks
from .indexing import normalize_key, validate_set
from .pins import ViewPins
from .reads import attrs_of, desc_of, getitem
from .shapes import as_shape, check_dtype, check_grid, guess_chunks
from .views import view_of

__all__ = ["ArrayMixin"]

#: The read functions above, each wrapped once as a pinned read call.
_READ_OPS: dict = {}


class ArrayMixin:
    """Array methods of :class:`~cartridge.Cartridge` (see the module doc)."""

    # -------------------------------------------------------------- internals
    def _arrays(self) -> ArrayData:
        return ArrayData(self._pager, self._cat, self._alloc, self._chunk, self._data)

    def _view_pins(self) -> ViewPins:
        pins = self.__dict__.get("_vpins")
        if pins is None:
            pins = self._vpins = ViewPins(self.path, self._table is not None)
        return pins

    def _views_generations(self) -> list[int]:
        pins = self.__dict__.get("_vpins")
        return [] if pins is None else pins.generations()

    @property
    def mapping(self) -> np.ndarray:
        """The current memory map as a read-only uint8 array.

        Views returned by :meth:`view` point into it (``np.shares_memory(view,
        cart.mapping)`` holds until the container grows and is remapped).
        """
        with self._lock:
            self._check_open()
            out = self._mf.buf[:]
            out.flags.writeable = False
            return out

    def _array_entry(self, p: str) -> tuple[Entry, ArrayDesc]:
        entry = self._file_entry(p)  # NotFoundError / IsADirectoryError
        if not entry.flags & ENTRY_ARRAY:
            raise NotAnArrayError(f"{p} is a plain file, not an array; read it with "
                                  "cart.read() or store arrays with cart.write_array()", p)
        return entry, decode_cached(entry.inline)

    def _store_array(self, p: str, entry: Entry, desc: ArrayDesc, attrs: dict | None) -> None:
        """Put an array entry, its attrs inline or (when too large) in the attrs blob."""
        data = self._arrays()
        gen = self._gen + 1
        if attrs is not None:
            raw = encode_attrs(attrs) if attrs else b""
            data.drop_chunk(entry.file_id, ATTRS_INDEX)
            desc = desc.replace(attrs_json=raw, flags=desc.flags & ~FLAG_ATTRS_EXTERNAL)
            fixed = 1 + len(p.encode("utf-8")) + ENTRY_STRUCT.size + len(entry.meta)
            if fixed + len(desc.encode()) > MAX_CELL:
                desc = desc.replace(attrs_json=b"", flags=desc.flags | FLAG_ATTRS_EXTERNAL)
                data.put_chunk(entry, ATTRS_INDEX, raw, gen)
                self._wrote_data = True
        entry.inline = desc.encode()
        cell = 1 + len(p.encode("utf-8")) + ENTRY_STRUCT.size + len(entry.meta) + len(entry.inline)
        if cell > MAX_CELL:
            raise UnsupportedDtypeError(
                f"{p}: the array descriptor ({len(entry.inline)} bytes for dtype "
                f"{desc.dtype}) does not fit a catalog entry with this path; use a "
                "shorter path or fewer structured fields")
        self._cat.put(p, entry)
        self._dirty = True

    def _new_array_entry(self, p: str, policy: int) -> tuple[Entry, Entry | None, list[str]]:
        existing = self._entry(p)
        if p == "/" or (existing is not None and existing.kind == KIND_DIR):
            raise IsADirectoryError(f"{p} is a directory", p)
        missing = self._missing_parents(p)
        now = time.time_ns()
        entry = Entry(KIND_FILE, ENTRY_ARRAY | policy << ENTRY_POLICY_SHIFT,
                      existing.mode if existing else 0o644, 0, now,
                      existing.ctime_ns if existing else now, self._next_fid,
                      existing.meta if existing else b"")
        self._next_fid += 1
        return entry, existing, missing

    def _finish_new(self, p: str, entry: Entry, existing: Entry | None,
                    missing: list[str], desc: ArrayDesc, attrs: dict | None) -> None:
        if existing is not None:
            self._data.free(existing)
        else:
            self._file_count += 1
        self._make_dirs(missing, entry.mtime_ns)
        self._store_array(p, entry, desc, attrs if attrs is not None else {})

    # ----------------------------------------------------------------- public
    def write_array(self, path: str, arr: Any, *, attrs: dict | None = None,
                    compression: str | None = DEFAULT, level: int | None = None) -> None:
        """Store a numpy array at ``path`` (replacing what is there).

        Any non-object dtype (numbers, bool, complex, ``S``/``U`` strings,
        datetime64/timedelta64, nested structured dtypes) keeps its byte order;
        the bytes go to one contiguous page-aligned extent in C order (Fortran
        order for Fortran-contiguous arrays), so :meth:`view` can map them.
        ``attrs`` is a JSON-able dict.  Raises :class:`TypeError`
        (:class:`~cartridge.UnsupportedDtypeError`) for object dtypes and
        variable-width strings.

        ``compression`` (``"lz4"``, ``"zstd"``, ``"auto"`` or None; the
        container's default when not given) and ``level`` compress each chunk
        on its own, as for files.  A compressed array, and every array of an
        encrypted container, is read by decoding only the chunks a read
        touches; it cannot be viewed (:class:`~cartridge.EncodedDataError`).
        """
        arr = np.asarray(arr)
        check_dtype(arr.dtype)
        if attrs is not None:
            encode_attrs(attrs)
        with self._lock:
            self._check_writable()
            policy, level = parse_policy(compression, level, self._default_policy())
            p = paths.normalize(path)
            order = "F" if arr.ndim > 1 and arr.flags.f_contiguous and not arr.flags.c_contiguous \
                else "C"
            flat = arr.ravel(order=order)
            raw = memoryview(flat.view(np.uint8)) if flat.size else memoryview(b"")
            entry, existing, missing = self._new_array_entry(p, policy)
            desc = ArrayDesc(arr.dtype, arr.shape, order, LAYOUT_CONTIGUOUS, 0, arr.shape,
                             None, b"", b"")
            data = self._arrays()
            if data.encoded(entry):
                data.write_encoded(entry, raw, self._gen + 1, level)
            else:
                data.write_extent(entry.file_id, raw, self._gen + 1)
            self._wrote_data = True
            entry.size = len(raw)
            self._finish_new(p, entry, existing, missing, desc, attrs)

    def create_dataset(self, path: str, shape: Any, dtype: Any = np.float64, *,
                       maxshape: Any = None, chunks: Any = None, fill_value: Any = 0,
                       attrs: dict | None = None, compression: str | None = DEFAULT,
                       level: int | None = None) -> Dataset:
        """Create an array without data (h5py-style) and return its :class:`Dataset`.

        ``maxshape`` (a tuple, ``None`` entries meaning unlimited) makes it
        resizable, which needs chunked storage: ``chunks`` is a chunk shape or
        ``True`` for an automatic one (implied by ``maxshape``).  Without
        either, the array is contiguous (viewable), filled with ``fill_value``.
        ``compression``/``level`` as for :meth:`write_array`; ``level`` applies
        to the chunks this call writes (later writes use the codec's default
        level, as partial writes of files do).
        """
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
        fill_raw = fill.tobytes()
        if not any(fill_raw):
            fill_raw = b""
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
        with self._lock:
            self._check_writable()
            policy, level = parse_policy(compression, level, self._default_policy())
            p = paths.normalize(path)
            entry, existing, missing = self._new_array_entry(p, policy)
            if chunks is None:
                desc = ArrayDesc(dtype, shape, "C", LAYOUT_CONTIGUOUS, 0, shape, None,
                                 fill_raw, b"")
                data = self._arrays()
                if data.encoded(entry):
                    data.fill_encoded(entry, desc.nbytes, fill.tobytes(), self._gen + 1, level)
                else:
                    data.fill_extent(entry.file_id, desc.nbytes, fill.tobytes(), self._gen + 1)
                self._wrote_data = True
                entry.size = desc.nbytes
            else:
                if chunks and math.prod(chunks) * dtype.itemsize >= 1 << 32:
                    raise ValueError(f"chunks {chunks} of {dtype} are 4 GiB or more")
                desc = ArrayDesc(dtype, shape, "C", LAYOUT_CHUNKED, 0, maxshape, chunks,
                                 fill_raw, b"")
                check_grid(desc, shape, p)
                entry.size = desc.nbytes
            self._finish_new(p, entry, existing, missing, desc, attrs)
        return Dataset(self, p)

    def array(self, path: str) -> Dataset:
        """A lazy :class:`Dataset` on the array at ``path`` (checked to exist)."""
        p = paths.normalize(path)
        self._array_desc(p)
        return Dataset(self, p)

    def view(self, path: str) -> np.ndarray:
        """A read-only, zero-copy ndarray on the mapped pages of the array at ``path``.

        O(1) in the array's size.  The view shows the generation it was taken
        from and stays valid and unchanged whatever happens to the file or the
        container afterwards (see the module doc and the README's Caveats).
        Chunked datasets and arrays changed in place are not one extent: read
        them with ``cart.array(path)[...]`` (raises :class:`NotContiguousError`).
        Compressed arrays and every array of an encrypted container are not in
        the map as they are (raises :class:`EncodedDataError`).
        """
        return self._view(paths.normalize(path))

    # ---------------------------------------------------------- read helpers
    def _with_read(self, func: Any, *args: Any) -> Any:
        """Run ``func(self, *args)`` as a pinned read (``mvcc._read_op``)."""
        op = _READ_OPS.get(func)
        if op is None:
            op = _READ_OPS[func] = _read_op(func)
        return op(self, *args)

    def _array_desc(self, p: str) -> ArrayDesc:
        return self._with_read(desc_of, p)

    def _view(self, p: str) -> np.ndarray:
        return self._with_read(view_of, p)

    def _array_getitem(self, p: str, key: Any) -> Any:
        return self._with_read(getitem, p, key)

    def _array_attrs(self, p: str) -> dict:
        return self._with_read(attrs_of, p)

    def _array_bytes(self, entry: Entry, offset: int, end: int) -> bytes:
        """``read()`` of an array: its stored bytes (C-order bytes when chunked)."""
        desc = decode_cached(entry.inline)
        if desc.layout == LAYOUT_CONTIGUOUS:
            return self._data.read(entry, offset, end)
        full = gather(self, entry, desc, [(0, s) for s in desc.shape])
        return full.tobytes()[offset:end]

    # --------------------------------------------------------- write helpers
    def _set_array_attrs(self, path: str, attrs: dict) -> None:
        encode_attrs(attrs)
        with self._lock:
            self._check_writable()
            p = paths.normalize(path)
            entry, desc = self._array_entry(p)
            entry.mtime_ns = time.time_ns()
            self._store_array(p, entry, desc, attrs)

    def _array_setitem(self, path: str, key: Any, value: Any) -> None:
        with self._lock:
            self._check_writable()
            p = paths.normalize(path)
            entry, desc = self._array_entry(p)
            validate_set(key, value, desc)
            box, new = normalize_key(key, desc.shape)
            if desc.layout == LAYOUT_CONTIGUOUS:
                changed = set_contiguous(self, entry, desc, box, new, value)
                if changed:
                    desc = desc.replace(flags=desc.flags | FLAG_FRAGMENTED)
            else:
                changed = set_chunked(self, entry, desc, box, new, value)
            if changed:
                entry.mtime_ns = time.time_ns()
                self._store_array(p, entry, desc, None)

    def _array_resize(self, path: str, shape: Any) -> None:
        with self._lock:
            self._check_writable()
            p = paths.normalize(path)
            entry, desc = self._array_entry(p)
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
            shrink_chunks(self, entry, desc, shape)
            desc = desc.replace(shape=shape)
            entry.size = desc.nbytes
            entry.mtime_ns = time.time_ns()
            self._store_array(p, entry, desc, None)

