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
"""

from __future__ import annotations

import hashlib
import os
import struct
from typing import Any

from Crypto.Cipher import AES
from Crypto.Protocol.KDF import scrypt

from .errors import AuthenticationError
from .layout import NONCE_SIZE, TAG_SIZE

#: scrypt cost for new password keys: N = 2**15, r = 8, p = 1 (32 MiB, ~0.1 s).
#: ``CARTRIDGE_SCRYPT_LOG2N`` lowers it for test suites; the value used is
#: stored in the header, so opening always uses the creator's parameters.
SCRYPT_LOG2N = int(os.environ.get("CARTRIDGE_SCRYPT_LOG2N", "15"))
SCRYPT_R = 8
SCRYPT_P = 1

SEAL_OVERHEAD = NONCE_SIZE + TAG_SIZE

_CHUNK_AAD = struct.Struct("<QQQIB")


def derive_key(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    """The 32-byte key scrypt derives from ``password`` and ``salt``."""
    return scrypt(password.encode("utf-8"), salt, 32, N=1 << log2_n, r=r, p=p)


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


class Sealer:
    """AES-256-GCM under one key, with the container's uuid in every AAD."""

    def __init__(self, key: bytes, uuid: bytes) -> None:
        self.key = bytes(key)
        self.uuid = uuid
        self._page_prefix = b"P" + uuid
        self._chunk_prefix = b"C" + uuid

    def seal_page(self, header_tail: bytes, body: Any) -> tuple[bytes, bytes, bytes]:
        """Encrypt a page body; return ``(ciphertext, nonce, tag)``.

        ``header_tail`` is bytes 8..31 of the page header (page number,
        generation, type, flags, count).
        """
        nonce = os.urandom(NONCE_SIZE)
        c = AES.new(self.key, AES.MODE_GCM, nonce=nonce)
        c.update(self._page_prefix + header_tail)
        ct, tag = c.encrypt_and_digest(body)
        return ct, nonce, tag

    def open_page(self, header_tail: bytes, body: Any, nonce: bytes, tag: bytes,
                  page: int) -> bytes:
        """Decrypt and authenticate a page body; AuthenticationError if forged."""
        c = AES.new(self.key, AES.MODE_GCM, nonce=nonce)
        c.update(self._page_prefix + header_tail)
        try:
            return c.decrypt_and_verify(body, tag)
        except ValueError:
            raise AuthenticationError(
                f"page {page} fails authentication (tampered, moved or replayed)",
                page=page) from None

    def seal_chunk(self, data: Any, file_id: int, index: int, generation: int,
                   length: int, codec: int) -> bytes:
        """``nonce || ciphertext || tag`` of one chunk's (compressed) bytes."""
        nonce = os.urandom(NONCE_SIZE)
        c = AES.new(self.key, AES.MODE_GCM, nonce=nonce)
        c.update(self._chunk_prefix + _CHUNK_AAD.pack(file_id, index, generation, length, codec))
        ct, tag = c.encrypt_and_digest(data)
        return nonce + ct + tag

    def open_chunk(self, stored: Any, file_id: int, index: int, generation: int,
                   length: int, codec: int) -> bytes:
        """Decrypt and authenticate a sealed chunk; AuthenticationError if forged."""
        stored = memoryview(stored)
        if len(stored) < SEAL_OVERHEAD:
            raise AuthenticationError(f"chunk {index} of file id {file_id} is too short "
                                      "to be sealed")
        c = AES.new(self.key, AES.MODE_GCM, nonce=bytes(stored[:NONCE_SIZE]))
        c.update(self._chunk_prefix + _CHUNK_AAD.pack(file_id, index, generation, length, codec))
        try:
            return c.decrypt_and_verify(stored[NONCE_SIZE:-TAG_SIZE], stored[-TAG_SIZE:])
        except ValueError:
            raise AuthenticationError(
                f"chunk {index} of file id {file_id} fails authentication (tampered, "
                "swapped or replayed)") from None
