"""Rekey: re-encrypt an encrypted container under a new key or password.

Crash safety comes from the two key slots of the file header and from
shadow paging.  The new key goes into the unused slot first; every catalog
node, free-map page and chunk is then rewritten under it into free pages,
and one commit switches to them.  A crash before that commit leaves the
container under the old key (the new one is refused); after it, under the
new key.  A last commit re-seals the older meta page too, and only then is
the old slot cleared.
"""

from __future__ import annotations

import struct

from .crypto import check_key_arg
from .errors import FormatError
from .layout import CHUNK_STRUCT, KEY_CHUNK
from .txn import WriteTxn

__all__ = ["rekey"]


def rekey(txn: WriteTxn, new_key: bytes | str | None = None,
          new_password: str | None = None) -> None:
    """Re-encrypt every page and chunk of ``txn``'s container (see the module essay).

    ``new_key`` is the new 32-byte key; a ``str`` there is taken as a new
    password.  Pending changes are committed first.  Other handles must
    reopen with the new key.  Old ciphertext remains in freed pages until
    they are reused.
    """
    pager = txn.env.pager
    if not pager.encrypted:
        raise FormatError(f"{txn.env.path!r} is not encrypted; rekey needs an encrypted "
                          "container")
    if isinstance(new_key, str):
        if new_password is not None:
            raise ValueError("give one new password, not two")
        new_key, new_password = None, new_key
    check_key_arg(new_key, new_password)
    if new_key is None and new_password is None:
        raise ValueError("give new_key= or new_password=")
    txn.commit()
    txn.commit_always()  # both meta pages now sealed under the old slot
    keys = pager.keys
    keys.stage(new_key, new_password)
    try:
        _reseal_everything(txn)
        txn.commit()
    except BaseException:
        keys.abandon()
        raise
    txn.commit_always()  # the older meta page too: nothing left under the old slot
    keys.retire()


def _reseal_everything(txn: WriteTxn) -> None:
    """Dirty every B+tree node, free-map segment and chunk of the transaction."""
    gen = txn.generation + 1
    tree, data = txn.tree, txn.data
    for key, val in list(tree.items()):
        if key[:1] == KEY_CHUNK and len(val) == CHUNK_STRUCT.size:
            rec = CHUNK_STRUCT.unpack(val)
            if rec[0]:
                fid, idx = struct.unpack_from(">QQ", key, 1)
                data.reseal(fid, idx, rec, gen)
                continue
        tree.put(key, val)  # copy-on-write of the whole root-to-leaf path
    txn.allocator.dirty_segs.update(range(len(txn.allocator.fm_ptrs)))
    txn.mark_dirty(wrote_data=True)
