"""Public methods for compressed and encrypted containers (a Cartridge mixin).

* :meth:`CodecMixin.is_raw` is the single predicate "are this file's bytes
  stored as they are in the mapped file?" (no compression policy, container
  not encrypted).  Zero-copy views are possible only then;
  :meth:`CodecMixin.require_raw` raises :class:`EncodedDataError` otherwise,
  with a message that points to decoding access.
* :meth:`RekeyMixin.rekey` re-encrypts everything under a new key, crash-safely.
"""

from __future__ import annotations

import builtins
import struct
from typing import Any

from . import paths
from .crypto import check_key_arg
from .errors import EncodedDataError, FormatError
from .layout import CHUNK_STRUCT, ENTRY_INLINE, KEY_CHUNK, ChunkRecord


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


class RekeyMixin:
    """``rekey``: re-encrypt an encrypted container under a new key or password."""

    def rekey(self: Any, new_key: bytes | str | None = None, *,
              new_password: str | None = None) -> None:
        """Re-encrypt every page and chunk under ``new_key`` or ``new_password``.

        ``new_key`` is the new 32-byte key; a ``str`` there is taken as a new
        password (``rekey("s3cret")`` = ``rekey(new_password="s3cret")``).

        Crash-safe: the new key goes into the unused key slot first; every
        catalog node, free-map page and chunk is then rewritten under it into
        free pages, and one commit switches to them.  A crash before that
        commit leaves the container under the old key (the new one is
        refused); after it, under the new key.  Pending changes are committed
        first.  Other handles must reopen with the new key.  Old ciphertext
        remains in freed pages until they are reused.
        """
        with self._lock:
            self._check_writable()
            pager = self._pager
            if not pager.encrypted:
                raise FormatError(f"{self.path!r} is not encrypted; rekey needs an encrypted "
                                  "container")
            if isinstance(new_key, str):
                if new_password is not None:
                    raise ValueError("give one new password, not two")
                new_key, new_password = None, new_key
            check_key_arg(new_key, new_password)
            if new_key is None and new_password is None:
                raise ValueError("give new_key= or new_password=")
            if self._dirty:
                self.commit()
            self._force_commit()  # both meta pages now sealed under the old slot
            pager.begin_rekey(new_key, new_password)
            try:
                self._reseal_everything()
                self.commit()
            except BaseException:
                pager.abort_rekey()
                raise
            self._force_commit()  # the older meta page too: nothing left under the old slot
            pager.finish_rekey()

    def _force_commit(self: Any) -> None:
        """Commit even when nothing changed (writes a new meta page)."""
        self._dirty = True
        self.commit()

    def _reseal_everything(self: Any) -> None:
        """Dirty every B+tree node, free-map segment and chunk of the transaction."""
        gen = self._gen + 1
        tree, data = self._tree, self._data
        for key, val in builtins.list(tree.items()):
            if key[:1] == KEY_CHUNK and len(val) == CHUNK_STRUCT.size:
                rec = ChunkRecord.unpack(val)
                if rec.page:
                    fid, idx = struct.unpack_from(">QQ", key, 1)
                    data.reseal(fid, idx, rec, gen)
                    continue
            tree.put(key, val)  # copy-on-write of the whole root-to-leaf path
        self._alloc.dirty_segs.update(range(len(self._alloc.fm_ptrs)))
        self._wrote_data = True
        self._dirty = True
