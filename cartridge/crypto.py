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
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .errors import AuthenticationError, WrongKeyError
from .layout import NONCE_SIZE, TAG_SIZE

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

    A key file holds the 32-byte key, raw or as 64 hex digits (what ``cart
    --key-file`` reads); ``password_env`` names an environment variable that
    holds the password.  Handles pickle these *names*, never a key or
    password, so a worker process can reopen an encrypted container.
    """
    given = sum(x is not None for x in (key, password, key_file, password_env))
    if given > 1:
        raise ValueError("give one of key=, password=, key_file= or password_env=")
    if key_file is not None:
        try:
            with open(os.fspath(key_file), "rb") as fh:
                raw = fh.read().strip()
        except OSError as exc:
            raise WrongKeyError(f"cannot read key file {os.fspath(key_file)!r}: "
                                f"{exc.strerror}") from None
        try:
            key = bytes.fromhex(raw.decode("ascii")) if len(raw) == 64 else raw
        except (UnicodeDecodeError, ValueError):
            key = raw
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
