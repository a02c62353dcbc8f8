"""Numpy arrays in a container: ``write_array``, zero-copy ``view``, ``Dataset``.

Why views are safe.  ``view`` returns an ndarray whose memory *is* the mapped
pages of one commit.  Three things keep those bytes valid and unchanged for as
long as the array, or any array derived from it, is alive:

1. **The mapping.**  The ndarray's buffer is a read-only memoryview of the
   ``mmap`` object, which therefore cannot be closed (``mmap.close`` raises
   ``BufferError``, which the mapped-file layer tolerates) or replaced under
   it: growth maps the file anew and leaves the old map to its views.
2. **A pin.**  Each handle owns a :class:`ViewPins`: a count of live views per
   generation, published as one slot of the reader table (``readers.py``,
   through its ordinary ``pin``/``unpin``), so the writer of *any* process
   keeps the pages that generation reaches out of the free map.  The root
   ndarray of every view carries a ``weakref.finalize`` that drops its count;
   numpy makes every derived array's ``base`` that root (the collapse of
   ``base`` chains stops at an array whose own base is not an ndarray), so the
   count drops only when the last derived array dies.
3. **Held pages.**  A writer's view of data written in the *current*
   transaction reads pages no commit reaches yet, which a free in the same
   transaction, or a rollback, would return at once.  Such runs are *held*
   (``Allocator.hold``): a free sends them through the pending list, where the
   pin decides, and a rollback keeps them pending.

Pages of dead views return at the next commit (or rollback) of a writer.

``Dataset`` is the lazy, h5py-style handle: every ``__getitem__`` copies only
the chunks (or bytes) the index touches into a new array, and indexing
semantics come from numpy itself: the index is first applied to a zero-strided
dummy of the dataset's shape (same exceptions), then translated to the
bounding box it touches, which is gathered and indexed.
"""

from __future__ import annotations

import itertools
import math
import operator
import os
import threading
import time
import weakref
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import numpy as np

from . import paths
from .arraydata import ArrayData
from .arrayformat import (
    ATTRS_INDEX,
    ENTRY_ARRAY,
    FLAG_ATTRS_EXTERNAL,
    FLAG_FRAGMENTED,
    LAYOUT_CHUNKED,
    LAYOUT_CONTIGUOUS,
    ArrayDesc,
    chunk_coords,
    chunk_index,
    decode_attrs,
    decode_desc,
    encode_attrs,
    encode_dtype,
)
from .catalog import Entry
from .codec import DEFAULT, parse_policy
from .errors import (
    EncodedDataError,
    IsADirectoryError,
    NotAnArrayError,
    NotContiguousError,
    UnsupportedDtypeError,
)
from .kernels import bitmap as kb
from .layout import ENTRY_POLICY_SHIFT, ENTRY_STRUCT, KIND_DIR, KIND_FILE, MAX_CELL
from .readers import ReaderTable

if TYPE_CHECKING:
    from .container import Cartridge

__all__ = ["ArrayMixin", "Dataset", "ViewPins"]

#: Chunk size ``chunks=True`` aims at: large enough for fast sequential reads,
#: small enough that a random slice copies little.
AUTO_CHUNK_BYTES = 256 * 1024


class ViewPins:
    """Generations read by live views of one handle, published as reader pins.

    Each distinct generation gets its own slot of the reader table: the writer
    keeps a page freed at ``f`` and born at ``b`` while some pin lies in
    ``[b, f)``, so every generation a view reads must be visible, not just
    the oldest.  Survives the handle: after ``close()`` the slots stay claimed
    until the last view of their generation dies.  Finalizers may run in any
    thread at any moment (even inside another call of this object), hence the
    reentrant lock.
    """

    def __init__(self, container_path: str, locking: bool) -> None:
        self._path = container_path
        self._locking = locking
        self._lock = threading.RLock()
        self._counts: dict[int, int] = {}
        self._tables: dict[int, ReaderTable] = {}
        self._pid = os.getpid()

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


class Attrs(MutableMapping):
    """The JSON-able ``attrs`` of an array, read and written through the container.

    Every change is stored at once (in the handle's transaction; ``commit()``
    makes it durable), like h5py's ``AttributeManager``.
    """

    def __init__(self, cart: Cartridge, path: str) -> None:
        self._cart = cart
        self._path = path

    def _get(self) -> dict:
        return self._cart._array_attrs(self._path)

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        attrs = self._get()
        attrs[key] = value
        self._cart._set_array_attrs(self._path, attrs)

    def __delitem__(self, key: str) -> None:
        attrs = self._get()
        del attrs[key]
        self._cart._set_array_attrs(self._path, attrs)

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return f"<Attrs of {self._path}: {self._get()!r}>"


class Dataset:
    """A lazy handle on an array in a container (see :meth:`ArrayMixin.array`).

    Reads copy only what the index touches; writes copy-on-write only the
    chunks they change.  Shape and dtype are read from the catalog on each
    access, so the handle follows ``resize`` and ``append`` by anyone using
    the same container handle.
    """

    def __init__(self, cart: Cartridge, path: str) -> None:
        self._cart = cart
        self.path = path
        # (generation, pinned view) of a contiguous array on a read-only
        # handle: while no newer commit exists, slices index it directly.
        self._pinned: tuple[int, np.ndarray] | None = None

    @property
    def _desc(self) -> ArrayDesc:
        return self._cart._array_desc(self.path)

    @property
    def shape(self) -> tuple[int, ...]:
        """Current shape."""
        return self._desc.shape

    @property
    def dtype(self) -> np.dtype:
        """Element type."""
        return self._desc.dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self._desc.shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        return self._desc.size

    @property
    def nbytes(self) -> int:
        """Bytes of data (as an in-memory array)."""
        return self._desc.nbytes

    @property
    def maxshape(self) -> tuple[int | None, ...]:
        """Largest shape ``resize`` accepts (None = unlimited)."""
        return self._desc.maxshape

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """Chunk shape, or None for a contiguous array."""
        return self._desc.chunks

    @property
    def fillvalue(self) -> Any:
        """What unwritten elements read as."""
        return self._desc.fill_array()[()]

    @property
    def attrs(self) -> Attrs:
        """JSON-able attributes, persisted in the container."""
        return Attrs(self._cart, self.path)

    def __len__(self) -> int:
        shape = self.shape
        if not shape:
            raise TypeError("len() of unsized object")
        return shape[0]

    def __getitem__(self, key: Any) -> Any:
        cart = self._cart
        pinned = self._pinned
        fresh = False
        if pinned is not None and not isinstance(key, (str, list)):
            with cart._lock:
                fresh = not cart._closed and cart._pager.newest_generation() == pinned[0]
            if fresh and pinned[1] is not None:
                out = pinned[1][key]
                if isinstance(out, np.ndarray) and np.may_share_memory(out, pinned[1]):
                    out = out.copy()
                return out
        if not fresh:
            self._pinned = None
        out = cart._array_getitem(self.path, key)
        if cart._alloc is None and not fresh and not isinstance(key, (str, list)):
            self._pin_view()
        return out

    def _pin_view(self) -> None:
        """Keep a view of this generation for the next slices (read-only handles).

        The view pins its generation like any view, so holding it between
        calls is safe; it is replaced at the first read after a newer commit.
        """
        cart = self._cart
        with cart._lock:
            try:
                view = cart.view(self.path)
                self._pinned = (cart._gen, view)  # the generation view() just pinned
            except (NotContiguousError, EncodedDataError):
                # chunked, compressed or encrypted: read through the catalog
                self._pinned = (cart._gen, None)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._cart._array_setitem(self.path, key, value)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self[...])
        return out if dtype is None else out.astype(dtype, copy=False)

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def resize(self, shape: int | tuple[int, ...]) -> None:
        """Change the shape within ``maxshape`` (chunked datasets only).

        New elements read as the fill value; elements cut off are dropped (and
        read as the fill value if the dataset grows back), as in h5py.
        """
        self._cart._array_resize(self.path, shape)

    def append(self, values: Any, axis: int = 0) -> None:
        """Grow along ``axis`` by ``values`` (same shape on the other axes).

        ``values`` with one dimension fewer than the dataset is one slice.
        """
        shape = self.shape
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
        new = list(shape)
        new[axis] += n
        self.resize(tuple(new))
        index = (slice(None),) * axis + (slice(shape[axis], shape[axis] + n),)
        self[index] = values

    def __repr__(self) -> str:
        try:
            desc = self._desc
        except Exception:  # noqa: BLE001 - repr must not raise
            return f"<Dataset {self.path!r} (unavailable)>"
        return f"<Dataset {self.path!r} shape={desc.shape} dtype={desc.dtype}>"


# ---------------------------------------------------------------- indexing
def _normalize_key(key: Any, shape: tuple[int, ...]) -> tuple[list[tuple[int, int]], tuple]:
    """Bounding box ``[(lo, hi)] per axis`` of a *valid* index, and the index
    translated to coordinates relative to that box (same result shape/order)."""
    ndim = len(shape)
    items = list(key) if isinstance(key, tuple) else [key]
    parsed = []
    consumed = 0
    for k in items:
        if k is None or k is Ellipsis:
            parsed.append(("keep", k, 0))
        elif isinstance(k, slice):
            parsed.append(("slice", k, 1))
            consumed += 1
        elif isinstance(k, (bool, np.bool_)):
            parsed.append(("keep", k, 0))
        else:
            try:
                parsed.append(("int", operator.index(k), 1))
                consumed += 1
                continue
            except TypeError:
                pass
            arr = np.asarray(k)
            if arr.dtype == np.bool_:
                parsed.append(("bool", arr, arr.ndim))
                consumed += arr.ndim
            else:
                if arr.size == 0 and arr.dtype.kind not in "iu":
                    arr = arr.astype(np.intp)
                parsed.append(("iarr", arr, 1))
                consumed += 1
    box: list[tuple[int, int]] = []
    new: list[Any] = []
    axis = 0
    for kind, k, n in parsed:
        if k is Ellipsis and kind == "keep":
            for _ in range(ndim - consumed):
                box.append((0, shape[axis]))
                axis += 1
            new.append(Ellipsis)  # kept: it makes an all-integer index return a 0-d array
            continue
        if kind == "keep":
            new.append(k)
        elif kind == "int":
            v = k + shape[axis] if k < 0 else k
            box.append((v, v + 1))
            new.append(0)
        elif kind == "slice":
            r = range(shape[axis])[k]
            if len(r) == 0:
                box.append((0, 0))
                new.append(slice(0, 0))
            else:
                lo, hi = min(r[0], r[-1]), max(r[0], r[-1]) + 1
                stop = r[-1] - lo + r.step
                box.append((lo, hi))
                new.append(slice(r[0] - lo, None if stop < 0 else stop, r.step))
        elif kind == "iarr":
            a = np.where(k < 0, k + shape[axis], k).astype(np.intp)
            if a.size:
                lo, hi = int(a.min()), int(a.max()) + 1
            else:
                lo = hi = 0
            box.append((lo, hi))
            new.append(a - lo)
        else:  # boolean mask over n axes
            nz = np.nonzero(k)
            sub = []
            for d in range(n):
                if nz[d].size:
                    lo, hi = int(nz[d].min()), int(nz[d].max()) + 1
                else:
                    lo = hi = 0
                box.append((lo, hi))
                sub.append(slice(lo, hi))
            new.append(k[tuple(sub)])
        axis += n
    while axis < ndim:
        box.append((0, shape[axis]))
        new.append(slice(None))
        axis += 1
    return box, tuple(new)


def _validate(key: Any, shape: tuple[int, ...]) -> None:
    """Raise exactly what numpy raises for ``key`` on an array of ``shape``."""
    np.broadcast_to(np.zeros((), np.uint8), shape)[key]


def _validate_set(key: Any, value: Any, desc: ArrayDesc) -> None:
    """Raise exactly what numpy raises for ``a[key] = value``: the assignment is
    done on a writable zero-strided dummy of the dataset's shape and dtype."""
    cell = np.zeros(1, desc.dtype)
    dummy = np.lib.stride_tricks.as_strided(cell, desc.shape, (0,) * len(desc.shape),
                                            writeable=True)
    dummy[key] = value


def _strides(desc: ArrayDesc) -> tuple[int, ...]:
    """Byte strides of a contiguous array in its stored order."""
    item = desc.dtype.itemsize
    shape = desc.shape
    axes = range(len(shape) - 1, -1, -1) if desc.order == "C" else range(len(shape))
    out = [0] * len(shape)
    step = item
    for ax in axes:
        out[ax] = step
        step *= max(shape[ax], 1)
    return tuple(out)


def _guess_chunks(shape: tuple[int, ...], maxshape: tuple[int | None, ...],
                  itemsize: int) -> tuple[int, ...]:
    """An automatic chunk shape (``chunks=True``): about AUTO_CHUNK_BYTES per chunk."""
    chunks = [max(s, 1) if m is not None else max(s, 1024) for s, m in zip(shape, maxshape)]
    while math.prod(chunks) * itemsize > AUTO_CHUNK_BYTES and max(chunks) > 1:
        ax = chunks.index(max(chunks))
        chunks[ax] = -(-chunks[ax] // 2)
    return tuple(chunks)


def _check_grid(desc: ArrayDesc, shape: tuple[int, ...], path: str) -> None:
    """Chunk coordinates must fit their ``64 // ndim`` bits of the chunk index."""
    bits = 64 // len(shape)
    for s, c in zip(shape, desc.chunks):
        if -(-s // c) >= (1 << bits) - 1:
            raise ValueError(f"{path}: {-(-s // c)} chunks along an axis exceed the "
                             f"{bits}-bit grid of a {len(shape)}-d dataset; use larger chunks")


def _as_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    out = tuple(operator.index(s) for s in shape)
    if any(s < 0 for s in out):
        raise ValueError(f"negative dimensions are not allowed: {out}")
    return out


def _check_dtype(dtype: np.dtype) -> bytes:
    if dtype.itemsize == 0:
        raise UnsupportedDtypeError(f"dtype {dtype!r} has no size; give strings a width")
    return encode_dtype(dtype)


# ------------------------------------------------------------------- mixin
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
        return entry, _decode_cached(entry.inline)

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
        _check_dtype(arr.dtype)
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
        shape = _as_shape(shape)
        dtype = np.dtype(dtype)
        _check_dtype(dtype)
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
            chunks = _guess_chunks(shape, maxshape, dtype.itemsize)
        elif chunks is not None:
            chunks = _as_shape(chunks)
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
                _check_grid(desc, shape, p)
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
        """Run ``func(self, *args)`` as a pinned read (``container._read_op``)."""
        op = _READ_OPS.get(func)
        if op is None:
            from .container import _read_op

            op = _READ_OPS[func] = _read_op(func)
        return op(self, *args)

    def _array_desc(self, p: str) -> ArrayDesc:
        return self._with_read(_desc_of, p)

    def _view(self, p: str) -> np.ndarray:
        return self._with_read(_view_of, p)

    def _array_getitem(self, p: str, key: Any) -> Any:
        return self._with_read(_getitem, p, key)

    def _array_attrs(self, p: str) -> dict:
        return self._with_read(_attrs_of, p)

    def _array_bytes(self, entry: Entry, offset: int, end: int) -> bytes:
        """``read()`` of an array: its stored bytes (C-order bytes when chunked)."""
        desc = _decode_cached(entry.inline)
        if desc.layout == LAYOUT_CONTIGUOUS:
            return self._data.read(entry, offset, end)
        full = _gather(self, entry, desc, [(0, s) for s in desc.shape])
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
            _validate_set(key, value, desc)
            box, new = _normalize_key(key, desc.shape)
            if desc.layout == LAYOUT_CONTIGUOUS:
                changed = _set_contiguous(self, entry, desc, box, new, value)
                if changed:
                    desc = desc.replace(flags=desc.flags | FLAG_FRAGMENTED)
            else:
                changed = _set_chunked(self, entry, desc, box, new, value)
            if changed:
                entry.mtime_ns = time.time_ns()
                self._store_array(p, entry, desc, None)

    def _array_resize(self, path: str, shape: Any) -> None:
        with self._lock:
            self._check_writable()
            p = paths.normalize(path)
            entry, desc = self._array_entry(p)
            shape = _as_shape(shape)
            if desc.layout != LAYOUT_CHUNKED:
                raise TypeError(f"{p} is not chunked, so it cannot be resized; create it with "
                                "create_dataset(..., maxshape=...)")
            if len(shape) != len(desc.shape):
                raise ValueError(f"cannot change the number of dimensions of {p} "
                                 f"({desc.shape} -> {shape})")
            for s, m in zip(shape, desc.maxshape):
                if m is not None and s > m:
                    raise ValueError(f"shape {shape} exceeds maxshape {desc.maxshape} of {p}")
            _check_grid(desc, shape, p)
            _shrink_chunks(self, entry, desc, shape)
            desc = desc.replace(shape=shape)
            entry.size = desc.nbytes
            entry.mtime_ns = time.time_ns()
            self._store_array(p, entry, desc, None)


# ------------------------------------------------------- module functions
_READ_OPS: dict = {}
_DESC_CACHE: dict[bytes, ArrayDesc] = {}


def _decode_cached(raw: bytes) -> ArrayDesc:
    """Decode a descriptor, remembering recent ones (views and slices are hot)."""
    desc = _DESC_CACHE.get(raw)
    if desc is None:
        if len(_DESC_CACHE) > 1024:
            _DESC_CACHE.clear()
        desc = _DESC_CACHE[raw] = decode_desc(raw)
    return desc


def _desc_of(cart: Cartridge, p: str) -> ArrayDesc:
    return cart._array_entry(p)[1]


def _attrs_of(cart: Cartridge, p: str) -> dict:
    entry, desc = cart._array_entry(p)
    if desc.flags & FLAG_ATTRS_EXTERNAL:
        return decode_attrs(cart._arrays().read_attrs(entry.file_id))
    return decode_attrs(desc.attrs_json)


def _view_of(cart: Cartridge, p: str) -> np.ndarray:
    entry, desc = cart._array_entry(p)
    if cart._arrays().encoded(entry):
        cart.require_raw(p, "a zero-copy view")
    if desc.layout == LAYOUT_CHUNKED or desc.flags & FLAG_FRAGMENTED:
        why = "is a chunked dataset" if desc.layout == LAYOUT_CHUNKED else \
            "was changed in place, so its chunks are no longer one extent"
        raise NotContiguousError(
            f"{p} {why}: its data is not one contiguous extent, so it cannot be viewed "
            f"without a copy; use cart.array({p!r})[...] to read it (or rewrite it with "
            "write_array to view it again)")
    nbytes = desc.nbytes
    if nbytes == 0:
        out = np.empty(desc.shape, desc.dtype, order=desc.order)
        out.flags.writeable = False
        return out
    page, npages = cart._arrays().extent(entry, nbytes)
    pins = cart._view_pins()
    gen = cart._gen
    alloc = cart._alloc
    pins.add(gen)
    try:
        flat = np.frombuffer(cart._mf.view.toreadonly(), desc.dtype, count=desc.size,
                             offset=page * 4096)
    except BaseException:
        pins.drop(gen)
        raise
    weakref.finalize(flat, pins.drop, gen)
    if alloc is not None and (kb.count_used(alloc.fresh, page, npages)
                              or alloc.holds(page, npages)):
        alloc.hold(page, npages, gen + 1, flat)
    return flat.reshape(desc.shape, order=desc.order)


def _getitem(cart: Cartridge, p: str, key: Any) -> Any:
    if isinstance(key, str) or (isinstance(key, list) and key
                                and all(isinstance(k, str) for k in key)):
        return _getitem(cart, p, ...)[key]  # field names, as numpy
    whole = _mapped_whole(cart, p)
    if whole is not None:
        out = whole[key]
        if isinstance(out, np.ndarray) and np.may_share_memory(out, whole):
            out = out.copy()
        return out
    entry, desc = cart._array_entry(p)
    _validate(key, desc.shape)
    box, new = _normalize_key(key, desc.shape)
    return _gather(cart, entry, desc, box)[new]


def _mapped_whole(cart: Cartridge, p: str) -> np.ndarray | None:
    """The whole contiguous array at ``p`` as an ndarray over the map (valid only
    inside the current pinned call), or None for other layouts.

    A read-only handle remembers it per generation and mapping, so repeated
    slicing skips the catalog (its pages cannot change within a generation).
    """
    cache = cart.__dict__.setdefault("_whole_cache", {})
    key = (cart._gen, id(cart._mf.buf))
    hit = cache.get(p) if cart._alloc is None else None
    if hit is not None and hit[0] == key:
        return hit[1]
    entry, desc = cart._array_entry(p)
    whole = None
    if desc.layout == LAYOUT_CONTIGUOUS and not desc.flags & FLAG_FRAGMENTED and desc.nbytes \
            and not cart._arrays().encoded(entry):
        page, _ = cart._arrays().extent(entry, desc.nbytes)
        whole = np.frombuffer(cart._mf.buf, desc.dtype, count=desc.size, offset=page * 4096)
        whole = whole.reshape(desc.shape, order=desc.order)
    if cart._alloc is None:
        if len(cache) > 256:
            cache.clear()
        cache[p] = (key, whole)
    return whole


def _gather(cart: Cartridge, entry: Entry, desc: ArrayDesc,
            box: list[tuple[int, int]]) -> np.ndarray:
    """A new array holding the box ``[lo, hi)`` per axis of the stored array."""
    shape = tuple(hi - lo for lo, hi in box)
    if 0 in shape:
        return np.empty(shape, desc.dtype)
    if desc.layout == LAYOUT_CONTIGUOUS:
        buf, first, strides = _box_bytes(cart, entry, desc, box)
        out = np.ndarray(shape, desc.dtype, buffer=buf, offset=first, strides=strides)
        if first == 0 and len(buf) == out.nbytes and out.flags.c_contiguous:
            return out  # the fresh buffer is exactly the box (a whole C-order array)
        return out.copy()
    out = np.empty(shape, desc.dtype)
    out[...] = desc.fill_array()
    for origin, chunk in _chunks_in(cart, entry, desc, box):
        dst, src = _overlap(box, origin, desc.chunks)
        out[dst] = chunk[src]
    return out


def _box_bytes(cart: Cartridge, entry: Entry, desc: ArrayDesc,
               box: list[tuple[int, int]]) -> tuple[bytearray, int, tuple[int, ...]]:
    """Chunk-aligned bytes covering a box of a contiguous array: ``(bytes, offset of
    the box's first element in them, strides)``; the bytes start at chunk
    ``offset // chunk_size`` of the array."""
    strides = _strides(desc)
    first = sum(lo * s for (lo, _), s in zip(box, strides))
    last = sum((hi - 1) * s for (_, hi), s in zip(box, strides)) + desc.dtype.itemsize
    ch = cart._chunk
    a0 = first // ch * ch
    a1 = min(entry.size, -(-last // ch) * ch)
    return bytearray(cart._data.read(entry, a0, a1)), first - a0, strides


def _chunks_in(cart: Cartridge, entry: Entry, desc: ArrayDesc,
               box: list[tuple[int, int]]) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """``(origin, chunk array)`` of every stored chunk meeting the box."""
    ndim = len(desc.shape)
    ranges = [range(lo // c, -(-hi // c)) for (lo, hi), c in zip(box, desc.chunks)]
    data = cart._arrays()
    fid = entry.file_id
    if math.prod(len(r) for r in ranges) <= 64:
        found = ((cell, data.get_chunk(fid, chunk_index(cell, ndim)))
                 for cell in itertools.product(*ranges))
    else:
        found = _decode_within(data, fid, ndim, ranges)
    for cell, raw in found:
        if raw is None or any(g not in r for g, r in zip(cell, ranges)):
            continue
        chunk = np.frombuffer(raw, desc.dtype).reshape(desc.chunks)
        yield tuple(g * c for g, c in zip(cell, desc.chunks)), chunk


def _decode_within(data: ArrayData, fid: int, ndim: int, ranges: list[range]
                   ) -> Iterator[tuple[tuple[int, ...], memoryview | bytes]]:
    """``(grid cell, bytes)`` of the stored chunks inside ``ranges``, found by a scan
    of the chunk records; only those chunks are decoded."""
    for idx, rec in data.chunk_records(fid):
        cell = chunk_coords(idx, ndim)
        if all(g in r for g, r in zip(cell, ranges)):
            yield cell, data.decode(fid, idx, rec)


def _overlap(box: list[tuple[int, int]], origin: tuple[int, ...],
             chunks: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices of the box array and of the chunk where they overlap."""
    dst, src = [], []
    for (lo, hi), o, c in zip(box, origin, chunks):
        a, b = max(lo, o), min(hi, o + c)
        dst.append(slice(a - lo, b - lo))
        src.append(slice(a - o, b - o))
    return tuple(dst), tuple(src)


def _set_contiguous(cart: Cartridge, entry: Entry, desc: ArrayDesc,
                    box: list[tuple[int, int]], new: tuple, value: Any) -> bool:
    """Assign into a contiguous array, copying on write only the chunks that change."""
    if 0 in (hi - lo for lo, hi in box):
        np.empty([hi - lo for lo, hi in box], desc.dtype)[new] = value
        return False
    buf, first, strides = _box_bytes(cart, entry, desc, box)
    old = bytes(buf)
    shape = tuple(hi - lo for lo, hi in box)
    target = np.ndarray(shape, desc.dtype, buffer=buf, offset=first, strides=strides)
    target[new] = value
    ch = cart._chunk
    a0 = (sum(lo * s for (lo, _), s in zip(box, strides))) // ch * ch
    view = memoryview(buf)
    changed = False
    start = None
    n = len(buf)
    for pos in range(0, n + ch, ch):
        differs = pos < n and view[pos : pos + ch] != old[pos : pos + ch]
        if differs and start is None:
            start = pos
        elif not differs and start is not None:
            cart._data_write(entry, a0 + start, view[start:pos])
            changed = True
            start = None
    return changed


def _set_chunked(cart: Cartridge, entry: Entry, desc: ArrayDesc,
                 box: list[tuple[int, int]], new: tuple, value: Any) -> bool:
    """Assign into a chunked dataset, rewriting only the chunks that change."""
    block = _gather(cart, entry, desc, box)
    before = block.copy()
    block[new] = value
    if not len(block.shape) or 0 in block.shape:
        return False
    ndim = len(desc.shape)
    data = cart._arrays()
    gen = cart._gen + 1
    changed = False
    ranges = [range(lo // c, -(-hi // c)) for (lo, hi), c in zip(box, desc.chunks)]
    for cell in itertools.product(*ranges):
        origin = tuple(g * c for g, c in zip(cell, desc.chunks))
        dst, src = _overlap(box, origin, desc.chunks)
        if block[dst].tobytes() == before[dst].tobytes():
            continue
        idx = chunk_index(cell, ndim)
        raw = data.get_chunk(entry.file_id, idx)
        if raw is None:
            chunk = np.empty(desc.chunks, desc.dtype)
            chunk[...] = desc.fill_array()
        else:
            chunk = np.frombuffer(raw, desc.dtype).reshape(desc.chunks).copy()
        chunk[src] = block[dst]
        data.put_chunk(entry, idx, memoryview(chunk.reshape(-1).view(np.uint8)), gen)
        changed = True
    if changed:
        cart._wrote_data = True
    return changed


def _shrink_chunks(cart: Cartridge, entry: Entry, desc: ArrayDesc,
                   shape: tuple[int, ...]) -> None:
    """Before a resize: drop chunks wholly outside ``shape`` and reset the part of
    edge chunks beyond it to the fill value (so growing back reads fill)."""
    if all(s >= old for s, old in zip(shape, desc.shape)):
        return
    ndim = len(shape)
    data = cart._arrays()
    gen = cart._gen + 1
    for idx, rec in list(data.chunk_records(entry.file_id)):
        origin = [g * c for g, c in zip(chunk_coords(idx, ndim), desc.chunks)]
        if any(o >= s for o, s in zip(origin, shape)):
            data.drop_chunk(entry.file_id, idx)
            continue
        keep = tuple(slice(0, min(c, s - o)) for o, c, s in zip(origin, desc.chunks, shape))
        if all(k.stop == c for k, c in zip(keep, desc.chunks)):
            continue
        chunk = np.empty(desc.chunks, desc.dtype)
        chunk[...] = desc.fill_array()
        raw = data.decode(entry.file_id, idx, rec)
        chunk[keep] = np.frombuffer(raw, desc.dtype).reshape(desc.chunks)[keep]
        data.put_chunk(entry, idx, memoryview(chunk.reshape(-1).view(np.uint8)), gen)
    cart._wrote_data = True
