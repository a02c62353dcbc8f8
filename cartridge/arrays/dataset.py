"""``Dataset`` and ``Attrs``: the lazy, h5py-style handles on one array.

Why a handle, not an array.  ``cart.array(path)`` returns a small object that
holds the container handle and the path, nothing else that matters: shape,
dtype and attrs are read from the catalog at each access, so the handle
follows ``resize``, ``append`` and attribute changes made through the same
container handle, and every ``__getitem__`` copies only the chunks (or bytes)
its index touches into a new array (``reads.py``).  Indexing semantics come
from numpy itself (``indexing.py``).

Why a read-only handle's ``Dataset`` keeps a view.  A catalog lookup under a
fresh pin at every slice costs far more than indexing an ndarray.  On a
read-only handle a ``Dataset`` therefore keeps a pinned ``view`` of the
generation it last read (or notes that the array has no single extent), and
serves slices from it while no newer commit exists.  The view pins its
generation like any other view (``views.py``), so holding it between calls is
safe; it is replaced at the first read after a newer commit, and dropped in a
forked child, whose reads must pin in the child's own name.

Why a pickled ``Dataset`` is small.  That kept view is a cache over this
process's mapping: pickling it would copy the whole array into every pickle
(dask ships the ``Dataset`` with each task), and an unpickled copy would serve
stale bytes with no pin behind them.  So a ``Dataset`` pickles as what
reopens it, the container handle (which pickles its own constructor arguments
and, for a read transaction or snapshot, what it pins) and the path, and
starts with an empty cache wherever it is unpickled.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arrayformat import ArrayDesc
from ..errors import EncodedDataError, NotContiguousError

if TYPE_CHECKING:
    from ..container import Cartridge

__all__ = ["Attrs", "Dataset"]


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
    """A lazy handle on an array in a container (see :meth:`Cartridge.array`).

    Reads copy only what the index touches; writes copy-on-write only the
    chunks they change.  Shape and dtype are read from the catalog on each
    access, so the handle follows ``resize`` and ``append`` by anyone using
    the same container handle.  Pickles as its container handle and path
    (never cached data), so it can be sent to worker processes.
    """

    def __init__(self, cart: Cartridge, path: str) -> None:
        self._cart = cart
        self.path = path
        # (process id, generation, pinned view or None) of an array on a
        # read-only handle: while no newer commit exists, slices of a
        # contiguous one index the view directly.
        self._pinned: tuple[int, int, np.ndarray | None] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Only what reopens it: the handle pickles its own constructor
        # arguments (and the generation a read transaction pins); the cached
        # view is this process's memory and is rebuilt on the first read.
        return type(self), (self._cart, self.path)

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
        if pinned is not None and pinned[0] != os.getpid():
            pinned = None  # forked: the view and its pin are the parent's
        fresh = False
        if pinned is not None and not isinstance(key, (str, list)):
            with cart._lock:
                fresh = not cart._closed and cart._pager.newest_generation() == pinned[1]
            view = pinned[2]
            if fresh and view is not None:
                out = view[key]
                if isinstance(out, np.ndarray) and np.may_share_memory(out, view):
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
                # the generation view() just pinned
                self._pinned = (os.getpid(), cart._gen, view)
            except (NotContiguousError, EncodedDataError):
                # chunked, compressed or encrypted: read through the catalog
                self._pinned = (os.getpid(), cart._gen, None)

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

