"""``Dataset`` and ``Attrs``: the lazy, h5py-style handles on one array.

Why a handle, not an array.  ``cart.array(path)`` returns a small object that
holds the container handle and the path, nothing else that matters: shape,
dtype and attrs are read from the catalog at each access, so the handle
follows ``resize``, ``append`` and attribute changes made through the same
container handle, and every ``__getitem__`` copies only the chunks (or bytes)
its index touches into a new array (``reads.py``).  Indexing semantics come
from numpy itself (``indexing.py``).

Why every access goes through the handle.  Each slice, assignment, resize
and attribute access is one public call of the container handle
(``read_array``, ``update_array``, ``resize_array``, ``array_attrs``, ...),
so it passes the handle's choke point (access control, audit) and runs on
one pinned commit.  A raw contiguous array on a read-only handle is indexed
in place in the map (the service caches the mapped array per generation),
so a slice costs the pin and the copy of what it selects, not a catalog walk.

Why it pickles small.  A ``Dataset`` holds the handle and the path, nothing
else; the handle pickles its constructor arguments and what it pins, so a
pickled ``Dataset`` is a few hundred bytes and reopens lazily in the
receiving process (a dask worker, a process pool).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, Protocol

import numpy as np

from ..arrayformat import ArrayDesc


class ArrayHandle(Protocol):
    """What a ``Dataset`` needs of its container handle (``Cartridge`` has it)."""

    def describe_array(self, path: str) -> ArrayDesc: ...
    def read_array(self, path: str, key: Any = ...) -> Any: ...
    def update_array(self, path: str, key: Any, value: Any) -> None: ...
    def resize_array(self, path: str, shape: Any) -> None: ...
    def append_array(self, path: str, values: Any, axis: int = 0) -> None: ...
    def array_attrs(self, path: str) -> dict[str, Any]: ...
    def set_array_attrs(self, path: str, attrs: dict[str, Any]) -> None: ...

__all__ = ["ArrayHandle", "Attrs", "Dataset"]


class Attrs(MutableMapping[str, Any]):
    """The JSON-able ``attrs`` of an array, read and written through the container.

    Every change is stored at once (in the handle's transaction; ``commit()``
    makes it durable), like h5py's ``AttributeManager``.
    """

    def __init__(self, cart: ArrayHandle, path: str) -> None:
        self._cart = cart
        self._path = path

    def _get(self) -> dict[str, Any]:
        return self._cart.array_attrs(self._path)

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        attrs = self._get()
        attrs[key] = value
        self._cart.set_array_attrs(self._path, attrs)

    def __delitem__(self, key: str) -> None:
        attrs = self._get()
        del attrs[key]
        self._cart.set_array_attrs(self._path, attrs)

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
    the same container handle.
    """

    def __init__(self, cart: ArrayHandle, path: str) -> None:
        self._cart = cart
        self.path = path

    @property
    def _desc(self) -> ArrayDesc:
        return self._cart.describe_array(self.path)

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
        return self._cart.read_array(self.path, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._cart.update_array(self.path, key, value)

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
        self._cart.resize_array(self.path, shape)

    def append(self, values: Any, axis: int = 0) -> None:
        """Grow along ``axis`` by ``values`` (same shape on the other axes).

        ``values`` with one dimension fewer than the dataset is one slice.
        One operation: if writing the values fails, the shape is unchanged.
        """
        self._cart.append_array(self.path, values, axis)

    def __repr__(self) -> str:
        try:
            desc = self._desc
        except Exception:  # noqa: BLE001 - repr must not raise
            return f"<Dataset {self.path!r} (unavailable)>"
        return f"<Dataset {self.path!r} shape={desc.shape} dtype={desc.dtype}>"

