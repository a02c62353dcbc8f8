"""Public methods for compressed and encrypted containers (a Cartridge mixin).

* :meth:`CodecMixin.is_raw` is the single predicate "are this file's bytes
  stored as they are in the mapped file?" (no compression policy, container
  not encrypted).  Zero-copy views are possible only then;
  :meth:`CodecMixin.require_raw` raises :class:`EncodedDataError` otherwise,
  with a message that points to decoding access.
"""

from __future__ import annotations

from typing import Any

from . import paths
from .errors import EncodedDataError
from .layout import ENTRY_INLINE


class CodecMixin:
    """Compression/encryption helpers mixed into :class:`cartridge.Cartridge`."""

    def is_raw(self: Any, path: str) -> bool:
        """True when ``path``'s bytes lie uncompressed and unencrypted in data pages.

        Inline files (small, kept in their catalog entry) are not raw either:
        they have no data pages to map.
        """
        with self._lock:
            self._check_open()
            p = paths.normalize(path)
            entry = self._file_entry(p)
            return not entry.flags & ENTRY_INLINE and self._data.is_raw(entry)

    def require_raw(self: Any, path: str, what: str = "a view") -> None:
        """Raise :class:`EncodedDataError` unless :meth:`is_raw` holds for ``path``."""
        if self.is_raw(path):
            return
        p = paths.normalize(path)
        entry = self._file_entry(p)
        if entry.flags & ENTRY_INLINE:
            why = "it is small enough to be stored inline in the catalog"
        elif self._pager.encrypted:
            why = "the container is encrypted"
        else:
            why = "it is stored compressed"
        raise EncodedDataError(
            f"cannot make {what} of {p}: {why}, so its bytes are not in the mapped file "
            f"as they are; read it decoded with cart.array({p!r})[...] or cart.read({p!r})")
