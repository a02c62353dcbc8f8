"""Encryption: key derivation, the key check and AES-256-GCM sealing.

An encrypted container seals every headed page body (catalog B+tree nodes,
free-map pages and directories, pending-free lists, the meta pages) and every
data chunk with AES-256-GCM under a fresh random 96-bit nonce.  The associated
data binds each sealed object to where it belongs, so a ciphertext copied,
moved or replayed elsewhere fails authentication:

* a headed page: ``b"P" + uuid + page_no + generation + type + flags + count``
  (bytes 8..31 of its own header, which stay plaintext);
* a chunk: ``b"C" + uuid + file_id + chunk index + generation + logical length
  + codec``.

Keys come from the caller (32 bytes) or from a password through scrypt with a
random salt.  The header stores, per key slot, the KDF parameters and a key
check value ``SHA-256(b"cartridge key check" + uuid + key)``, so a wrong key is
refused at open before anything is decrypted.

The cipher is OpenSSL's AES-GCM through the ``cryptography`` package: one
``AESGCM`` object per key serves every seal, so a 64 KiB chunk costs about
10 µs of fixed overhead (pycryptodome's per-message setup cost ~300 µs,
which made chunked encryption 4x slower than one-piece encryption).

The keys of an open container live in one :class:`KeyRing`: the sealer of
each key slot the caller's key opens and the slot new pages and chunks are
sealed under.  A rekey is a transition of the ring (:meth:`KeyRing.add` the
new key, :meth:`KeyRing.switch` to it, :meth:`KeyRing.drop` the old one),
which the pager drives together with the key slots on page 0, so the keys
in memory and the slots on disk change in one place.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .errors import AuthenticationError, WrongKeyError
from .kernels.checksum import xxh64
from .layout import (
    CHECKSUM_SEED,
    KDF_RAW,
    KDF_SCRYPT,
    KEY_SLOT,
    NONCE_SIZE,
    TAG_SIZE,
    sealed_chunk_flags,
)

#: scrypt cost for new password keys: N = 2**15, r = 8, p = 1 (32 MiB, ~0.1 s).
#: ``CARTRIDGE_SCRYPT_LOG2N`` lowers it for test suites; the value used is
#: stored in the header, so opening always uses the creator's parameters.
SCRYPT_LOG2N = int(os.environ.get("CARTRIDGE_SCRYPT_LOG2N", "15"))
SCRYPT_R = 8
SCRYPT_P = 1

SEAL_OVERHEAD = NONCE_SIZE + TAG_SIZE

_CHUNK_AAD = struct.Struct("<QQQIB")


@functools.lru_cache(maxsize=16)
def derive_key(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    """The 32-byte key scrypt derives from ``password`` and ``salt``.

    Memoized: read transactions, pickled handles and forked children reopen
    the container with the same password, and scrypt is deliberately slow.
    """
    return Scrypt(salt=salt, length=32, n=1 << log2_n, r=r, p=p).derive(password.encode("utf-8"))


def key_check(uuid: bytes, key: bytes) -> bytes:
    """The 32-byte value stored in a key slot to recognise ``key``."""
    return hashlib.sha256(b"cartridge key check" + uuid + key).digest()


def check_key_arg(key: Any, password: Any) -> None:
    """Validate ``key=``/``password=`` before anything touches the disk."""
    if key is not None and password is not None:
        raise ValueError("give key= or password=, not both")
    if key is not None and (not isinstance(key, (bytes, bytearray)) or len(key) != 32):
        raise ValueError("key must be 32 bytes (AES-256)")
    if password is not None and (not isinstance(password, str) or not password):
        raise ValueError("password must be a non-empty str")


def resolve_key_source(key: bytes | None, password: str | None, key_file: Any,
                       password_env: Any) -> tuple[bytes | None, str | None]:
    """The key or password that ``key_file=`` / ``password_env=`` name, or the given ones.

    A key file holds the 32-byte key, raw (exactly 32 bytes, taken as they
    are) or as 64 hex digits (what ``cart --key-file`` reads);
    ``password_env`` names an environment variable that holds the password.
    Handles pickle these *names*, never a key or password, so a worker
    process can reopen an encrypted container.
    """
    given = sum(x is not None for x in (key, password, key_file, password_env))
    if given > 1:
        raise ValueError("give one of key=, password=, key_file= or password_env=")
    if key_file is not None:
        try:
            with open(os.fspath(key_file), "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise WrongKeyError(f"cannot read key file {os.fspath(key_file)!r}: "
                                f"{exc.strerror}") from None
        key = raw if len(raw) == 32 else _hex_key(raw.strip())
    elif password_env is not None:
        if not isinstance(password_env, str) or not password_env:
            raise ValueError(f"password_env must name an environment variable, got "
                             f"{password_env!r}")
        password = os.environ.get(password_env)
        if not password:
            raise WrongKeyError(f"environment variable {password_env} (password_env=) is "
                                "not set: set it to the container's password")
    check_key_arg(key, password)
    return key, password


def _hex_key(text: bytes) -> bytes:
    """A key written as 64 hex digits (what ``cart --key-file`` also accepts)."""
    try:
        return bytes.fromhex(text.decode("ascii")) if len(text) == 64 else text
    except (UnicodeDecodeError, ValueError):
        return text


class Sealer:
    """AES-256-GCM under one key, with the container's uuid in every AAD."""

    def __init__(self, key: bytes, uuid: bytes) -> None:
        self.key = bytes(key)
        self.uuid = uuid
        self._aead = AESGCM(self.key)
        self._page_prefix = b"P" + uuid
        self._chunk_prefix = b"C" + uuid

    def seal_page(self, header_tail: bytes, body: Any) -> tuple[bytes, bytes, bytes]:
        """Encrypt a page body; return ``(ciphertext, nonce, tag)``.

        ``header_tail`` is bytes 8..31 of the page header (page number,
        generation, type, flags, count).
        """
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._aead.encrypt(nonce, body, self._page_prefix + header_tail)
        return sealed[:-TAG_SIZE], nonce, sealed[-TAG_SIZE:]

    def open_page(self, header_tail: bytes, body: Any, nonce: bytes, tag: bytes,
                  page: int) -> bytes:
        """Decrypt and authenticate a page body; AuthenticationError if forged."""
        try:
            return self._aead.decrypt(nonce, bytes(body) + tag, self._page_prefix + header_tail)
        except InvalidTag:
            raise AuthenticationError(
                f"page {page} fails authentication (tampered, moved or replayed)",
                page=page) from None

    def seal_chunk(self, data: Any, file_id: int, index: int, generation: int,
                   length: int, codec: int) -> bytearray:
        """``nonce || ciphertext || tag`` of one chunk's (compressed) bytes."""
        nonce = os.urandom(NONCE_SIZE)
        aad = self._chunk_prefix + _CHUNK_AAD.pack(file_id, index, generation, length, codec)
        out = bytearray(NONCE_SIZE + len(data) + TAG_SIZE)
        out[:NONCE_SIZE] = nonce
        self._aead.encrypt_into(nonce, data, aad, memoryview(out)[NONCE_SIZE:])  # no concat copy
        return out

    def open_chunk(self, stored: Any, file_id: int, index: int, generation: int,
                   length: int, codec: int) -> bytes:
        """Decrypt and authenticate a sealed chunk; AuthenticationError if forged."""
        stored = memoryview(stored)
        if len(stored) < SEAL_OVERHEAD:
            raise AuthenticationError(f"chunk {index} of file id {file_id} is too short "
                                      "to be sealed")
        aad = self._chunk_prefix + _CHUNK_AAD.pack(file_id, index, generation, length, codec)
        try:
            return self._aead.decrypt(bytes(stored[:NONCE_SIZE]), stored[NONCE_SIZE:], aad)
        except InvalidTag:
            raise AuthenticationError(
                f"chunk {index} of file id {file_id} fails authentication (tampered, "
                "swapped or replayed)") from None


# ------------------------------------------------------------------ key slots
def _slot_checksum(image: bytes) -> int:
    """XXH64 (seed 0) of bytes 8.. of a KEY_SLOT image."""
    return int(xxh64(np.frombuffer(image[8:], np.uint8), np.uint64(CHECKSUM_SEED)))


@dataclass(frozen=True, slots=True)
class KeySlot:
    """One key slot of the file header, decoded (:data:`~cartridge.layout.KEY_SLOT`)."""

    in_use: bool
    """True when the slot holds a key and its checksum holds."""
    kdf: int
    """``KDF_RAW`` (the caller's 32-byte key) or ``KDF_SCRYPT`` (a password)."""
    log2_n: int
    """scrypt cost: N = 2**log2_n."""
    r: int
    """scrypt block size."""
    p: int
    """scrypt parallelism."""
    epoch: int
    """Which rekey wrote the slot (0 = create); the highest usable one seals new pages."""
    salt: bytes
    """scrypt salt (zero for ``KDF_RAW``)."""
    key_check: bytes
    """``SHA-256(b"cartridge key check" + uuid + key)``: recognises the key."""

    @classmethod
    def decode(cls, image: bytes) -> KeySlot:
        """Parse a slot's bytes; a slot failing its checksum reads as not in use."""
        rec = np.frombuffer(image, KEY_SLOT, count=1)[0]
        ok = int(rec["checksum"]) == _slot_checksum(image)
        return cls(in_use=ok and bool(rec["in_use"]), kdf=int(rec["kdf"]),
                   log2_n=int(rec["log2_n"]), r=int(rec["r"]), p=int(rec["p"]),
                   epoch=int(rec["epoch"]), salt=bytes(rec["salt"]),
                   key_check=bytes(rec["key_check"]))

    @staticmethod
    def encode(uuid: bytes, key: bytes | None, password: str | None,
               epoch: int) -> tuple[bytes, bytes]:
        """``(slot bytes, key)`` of a new slot for ``key`` or ``password``.

        A password gets a fresh salt and this build's scrypt cost, which the
        slot records.  With neither, the slot is cleared (all zero but its
        checksum) and the key returned is ``b""``.
        """
        rec = np.zeros((), KEY_SLOT)
        real = b""
        if key is not None or password is not None:
            rec["in_use"] = 1
            rec["epoch"] = epoch
            if password is not None:
                salt = os.urandom(16)
                real = derive_key(password, salt, SCRYPT_LOG2N, SCRYPT_R, SCRYPT_P)
                rec["kdf"] = KDF_SCRYPT
                rec["log2_n"], rec["r"], rec["p"] = SCRYPT_LOG2N, SCRYPT_R, SCRYPT_P
                rec["salt"] = np.frombuffer(salt, np.uint8)
            else:
                assert key is not None
                real = bytes(key)
                rec["kdf"] = KDF_RAW
            rec["key_check"] = np.frombuffer(key_check(uuid, real), np.uint8)
        image = bytearray(rec.tobytes())
        struct.pack_into("<Q", image, 0, _slot_checksum(bytes(image)))
        return bytes(image), real

    def opens(self, uuid: bytes, key: bytes | None, password: str | None) -> bytes | None:
        """The key this slot recognises from the caller's key or password, or None."""
        if not self.in_use:
            return None
        if self.kdf == KDF_SCRYPT:
            if password is None:
                return None
            k = derive_key(password, self.salt, self.log2_n, self.r, self.p)
        else:
            if key is None:
                return None
            k = bytes(key)
        return k if key_check(uuid, k) == self.key_check else None


class KeyRing:
    """The keys of one open encrypted container.

    Holds a :class:`Sealer` for each key slot the caller's key opens and the
    slot new pages and chunks are sealed under (:attr:`current`).  Pages and
    chunks name the slot that sealed them, so during a rekey both keys are
    held: old objects open under the old slot while new ones are sealed
    under the new.

    Parameters
    ----------
    uuid:
        The container's identity, bound into every seal.
    keys:
        The key of each usable slot.
    current:
        The slot new pages and chunks are sealed under (one of ``keys``).
    """

    def __init__(self, uuid: bytes, keys: dict[int, bytes], current: int) -> None:
        if current not in keys:
            raise ValueError(f"key slot {current} has no key")
        self.uuid = uuid
        self._sealers = {slot: Sealer(k, uuid) for slot, k in keys.items()}
        self._current = current

    @classmethod
    def unlock(cls, uuid: bytes, slots: Sequence[KeySlot], key: bytes | None,
               password: str | None) -> KeyRing | None:
        """The ring of every slot ``key``/``password`` opens, sealing under the
        newest (highest epoch) of them; None when it opens none."""
        keys = {}
        for idx, slot in enumerate(slots):
            k = slot.opens(uuid, key, password)
            if k is not None:
                keys[idx] = k
        if not keys:
            return None
        return cls(uuid, keys, max(keys, key=lambda i: slots[i].epoch))

    @property
    def current(self) -> int:
        """The key slot new pages and chunks are sealed under."""
        return self._current

    @property
    def sealer(self) -> Sealer:
        """The sealer of :attr:`current`."""
        return self._sealers[self._current]

    @property
    def chunk_flags(self) -> int:
        """CHUNK.flags of a chunk sealed now (encrypted, under :attr:`current`)."""
        return sealed_chunk_flags(self._current)

    def sealer_for(self, slot: int) -> Sealer | None:
        """The sealer of key slot ``slot``, or None when this ring cannot open it."""
        return self._sealers.get(slot)

    # rekey: add the new key, switch to it, drop the old one
    def add(self, slot: int, key: bytes) -> None:
        """Hold ``key`` for key slot ``slot`` (replacing what the ring held for it)."""
        if slot == self._current:
            raise ValueError(f"key slot {slot} is the one in use")
        self._sealers[slot] = Sealer(key, self.uuid)

    def switch(self, slot: int) -> None:
        """Seal new pages and chunks under ``slot`` (a slot the ring holds)."""
        if slot not in self._sealers:
            raise ValueError(f"key slot {slot} has no key")
        self._current = slot

    def drop(self, slot: int) -> None:
        """Forget the key of ``slot`` (never the current one)."""
        if slot == self._current:
            raise ValueError(f"key slot {slot} is the one in use")
        self._sealers.pop(slot, None)
