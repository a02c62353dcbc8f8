"""Pages, checksums and the commit protocol.

This layer knows what a page is and nothing about files or trees.  It turns a
page number into checked bytes, writes headed pages with their checksums, and
owns the two meta pages, which is where a commit becomes real.

Commit protocol (LMDB's shadow paging, with one refinement):

1. Nothing reachable from the last durable meta page is ever overwritten; a
   transaction writes its new B+tree nodes, free-map segments and data into
   pages that were free in that commit.
2. ``sync()`` makes those pages durable.
3. The meta page for generation ``g+1`` (the *other* slot, ``1 + (g+1) % 2``)
   is written with its checksum, and synced again.

Open reads both meta pages and takes the valid one with the highest
generation; a torn or corrupt meta page fails its checksum and the other one,
one commit older and untouched by the interrupted commit, is used instead.

Refinement, the *single-sync commit*: when a commit wrote only headed pages
(no raw data pages) and at most ``META_SYNC_MAX`` of them, their numbers are
listed in the meta page, which is written before the one and only sync.  Open
accepts such a meta page only if every listed page carries a valid checksum,
its own page number and the meta's generation; if the crash left any of them
unwritten the meta page is rejected as torn and the previous commit is used.
This halves the fsyncs of a small durable commit (a metadata-only update such
as writing a 1 KiB file, which is stored inline) without weakening the rule
that a durable commit never depends on a page that might not be on disk.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .crypto import SCRYPT_LOG2N, SCRYPT_P, SCRYPT_R, Sealer, derive_key, key_check
from .errors import CorruptionError, FormatError, WrongKeyError
from .kernels.checksum import xxh64
from .layout import (
    BODY_END,
    BODY_SIZE,
    CHECKSUM_SEED,
    FILE_HEADER,
    FM_WORDS,
    FORMAT_VERSION,
    HEADER_ENCRYPTED,
    HEADER_FIXED,
    HEADER_SIZE,
    KDF_RAW,
    KDF_SCRYPT,
    KEY_SLOT,
    KEY_SLOT_OFFSETS,
    MAGIC,
    META,
    META_COMMIT_SINGLE_SYNC,
    META_SYNC_MAX,
    NONCE_SIZE,
    PAGE_HEADER_STRUCT,
    PAGE_SIZE,
    PAGE_TYPE_NAMES,
    PT_FREEMAP,
    PT_META,
)
from .mapfile import MappedFile

_SEED = np.uint64(CHECKSUM_SEED)
_GEN_AT = struct.Struct("<Q")
_ZERO_PAGE = bytes(PAGE_SIZE)
_FLAGS_AT = struct.Struct("<H")
#: Data writes at least this long go through pwrite instead of the mapping.
_PWRITE_MIN = 16 * PAGE_SIZE


def checksum(data: np.ndarray) -> int:
    """XXH64 (seed 0) of a uint8 array, computed by the numba kernel."""
    return int(xxh64(data, _SEED))


@dataclass(frozen=True, slots=True)
class FileHeader:
    """The decoded page 0."""

    version: int
    """Format version, :data:`~cartridge.layout.FORMAT_VERSION`."""
    chunk_size: int
    """Bytes per logical data chunk."""
    created_ns: int
    """Creation time of the container."""
    max_size: int
    """Default size cap in bytes; 0 means none."""
    uuid: bytes
    """Random identity of the container."""
    encrypted: bool = False
    """True when pages and chunks are sealed with AES-256-GCM."""
    codec: int = 0
    """Default compression policy for new files (``CODEC_*``/``POLICY_AUTO``)."""
    level: int = 0
    """Its level (0 = the codec's default)."""
    slots: tuple = ()
    """Decoded key slots (dicts), encrypted containers only."""


def _key_slot(password: str | None, key: bytes | None, uuid: bytes, epoch: int) -> tuple[
        np.ndarray, bytes]:
    """A filled KEY_SLOT record and the key it recognises."""
    slot = np.zeros((), KEY_SLOT)
    slot["in_use"] = 1
    slot["epoch"] = epoch
    if password is not None:
        salt = os.urandom(16)
        key = derive_key(password, salt, SCRYPT_LOG2N, SCRYPT_R, SCRYPT_P)
        slot["kdf"] = KDF_SCRYPT
        slot["log2_n"], slot["r"], slot["p"] = SCRYPT_LOG2N, SCRYPT_R, SCRYPT_P
        slot["salt"] = np.frombuffer(salt, np.uint8)
    else:
        slot["kdf"] = KDF_RAW
    slot["key_check"] = np.frombuffer(key_check(uuid, key), np.uint8)
    raw = bytearray(slot.tobytes())
    _GEN_AT.pack_into(raw, 0, checksum(np.frombuffer(bytes(raw[8:]), np.uint8)))
    return np.frombuffer(bytes(raw), KEY_SLOT)[0], key


class Pager:
    """Checked page access over a :class:`MappedFile`."""

    def __init__(self, mf: MappedFile, key: bytes | None = None,
                 password: str | None = None) -> None:
        self.mf = mf
        self.header = self._read_file_header()
        self.rejected_newer: list[str] = []
        #: Whether the last :meth:`commit` got as far as writing its meta page.
        self.meta_written = False
        #: Sealers by key slot, for the slots the caller's key opens.
        self.sealers: dict[int, Sealer] = {}
        #: The key slot new pages are sealed under.
        self.slot = 0
        if self.header.encrypted:
            self.unlock(key, password)
        elif key is not None or password is not None:
            raise FormatError(f"{mf.path!r} is not encrypted; open it without key/password")

    @property
    def encrypted(self) -> bool:
        """True for an encrypted container."""
        return self.header.encrypted

    def unlock(self, key: bytes | None, password: str | None) -> None:
        """Find the key slot(s) ``key``/``password`` opens; WrongKeyError if none."""
        if key is None and password is None:
            raise WrongKeyError(f"{self.mf.path!r} is encrypted: pass key= or password= "
                                "(cart: --password, --key-file or $CARTRIDGE_PASSWORD)")
        self.sealers = {}
        for idx, slot in enumerate(self.header.slots):
            if not slot["in_use"]:
                continue
            if slot["kdf"] == KDF_SCRYPT:
                if password is None:
                    continue
                k = derive_key(password, slot["salt"], slot["log2_n"], slot["r"], slot["p"])
            else:
                if key is None:
                    continue
                k = bytes(key)
            if key_check(self.header.uuid, k) == slot["key_check"]:
                self.sealers[idx] = Sealer(k, self.header.uuid)
        if not self.sealers:
            raise WrongKeyError(f"wrong key or password for {self.mf.path!r}")
        self.slot = max(self.sealers, key=lambda i: self.header.slots[i]["epoch"])

    def write_key_slot(self, index: int, key: bytes | None, password: str | None,
                       epoch: int) -> bytes:
        """Fill key slot ``index`` of page 0 (or clear it when both are None) and sync.

        Touches only that slot's 72 bytes (its own sector, its own checksum).
        Returns the key the slot recognises (b"" when cleared).
        """
        off = KEY_SLOT_OFFSETS[index]
        if key is None and password is None:
            rec, real = np.zeros((), KEY_SLOT), b""
            raw = bytearray(rec.tobytes())
            _GEN_AT.pack_into(raw, 0, checksum(np.frombuffer(bytes(raw[8:]), np.uint8)))
            image = bytes(raw)
        else:
            rec, real = _key_slot(password, key, self.header.uuid, epoch)
            image = rec.tobytes()
        self.mf.buf[off : off + KEY_SLOT.itemsize] = np.frombuffer(image, np.uint8)
        self.mf.sync()
        self.header = self._read_file_header()
        return real

    def sealer(self) -> Sealer | None:
        """The sealer new pages and chunks are written with (None: plain container)."""
        return self.sealers.get(self.slot) if self.header.encrypted else None

    # ------------------------------------------------------------------ create
    @staticmethod
    def format_new(mf: MappedFile, chunk_size: int, max_size: int, codec: int = 0,
                   level: int = 0, key: bytes | None = None,
                   password: str | None = None) -> None:
        """Write an empty container: header, two meta pages, one free-map page.

        Four pages, 16 KiB.  Both meta pages describe the same empty state
        (generations 0 and 1) so either one alone can open the container.
        With ``key``/``password`` the container is encrypted: key slot 0 gets
        the KDF parameters and key check, and every page is sealed.
        """
        if chunk_size % PAGE_SIZE or not PAGE_SIZE <= chunk_size <= 1 << 24:
            raise ValueError(
                f"chunk_size must be a multiple of {PAGE_SIZE} up to 16 MiB, "
                f"got {chunk_size}"
            )
        os.ftruncate(mf.fd, 4 * PAGE_SIZE)
        mf.remap()
        head = np.zeros((), FILE_HEADER)
        head["magic"] = MAGIC
        head["version"] = FORMAT_VERSION
        head["page_size"] = PAGE_SIZE
        head["chunk_size"] = chunk_size
        head["created_ns"] = time.time_ns()
        head["max_size"] = max_size
        uuid = os.urandom(16)
        head["uuid"] = np.frombuffer(uuid, np.uint8)
        head["codec"] = codec
        head["level"] = level
        page0 = np.zeros(PAGE_SIZE, np.uint8)
        sealer = None
        if key is not None or password is not None:
            head["flags"] = HEADER_ENCRYPTED
            slot, real_key = _key_slot(password, key, uuid, 0)
            page0[KEY_SLOT_OFFSETS[0] : KEY_SLOT_OFFSETS[0] + KEY_SLOT.itemsize] = (
                np.frombuffer(slot.tobytes(), np.uint8))
            sealer = Sealer(real_key, uuid)
        page0[: FILE_HEADER.itemsize] = np.frombuffer(head.tobytes(), np.uint8)
        page0[8:16] = np.frombuffer(
            np.uint64(checksum(page0[16:HEADER_FIXED])).tobytes(), np.uint8
        )
        mf.buf[:PAGE_SIZE] = page0
        pager = Pager.__new__(Pager)
        pager.mf = mf
        pager.sealers = {0: sealer} if sealer else {}
        pager.slot = 0
        words = np.zeros(FM_WORDS, np.uint64)
        words[0] = 0b1111  # pages 0-3 used
        pager.write_headed(3, PT_FREEMAP, 1, FM_WORDS, words.view(np.uint8))
        for gen in (0, 1):
            meta = np.zeros((), META)
            meta["total_pages"] = 4
            meta["next_file_id"] = 1
            meta["fm_segments"] = 1
            meta["fm_levels"] = 1
            meta["fm_nptrs"] = 1
            meta["fm_ptrs"][0] = (3, 1)
            meta["committed_ns"] = time.time_ns()
            pager.write_meta(gen, meta)
        mf.sync()

    # ----------------------------------------------------------------- header
    def _read_file_header(self) -> FileHeader:
        mf = self.mf
        if mf.size < 3 * PAGE_SIZE:
            if mf.size >= 8 and bytes(mf.view[:8]) != MAGIC:
                raise FormatError(f"{mf.path!r} is not a Cartridge container")
            raise FormatError(
                f"{mf.path!r} is {mf.size} bytes, too short to be a Cartridge "
                "container (truncated?)"
            )
        raw = np.frombuffer(mf.view[: FILE_HEADER.itemsize], FILE_HEADER)[0]
        if bytes(raw["magic"]) != MAGIC:
            raise FormatError(f"{mf.path!r} is not a Cartridge container")
        stored = int(raw["checksum"])
        if stored != checksum(mf.buf[16:HEADER_FIXED]):
            raise CorruptionError(
                f"{mf.path!r}: the file header (page 0) fails its checksum", page=0
            )
        if int(raw["version"]) != FORMAT_VERSION:
            raise FormatError(
                f"{mf.path!r} has format version {int(raw['version'])}; this "
                f"Cartridge reads version {FORMAT_VERSION}"
            )
        if int(raw["page_size"]) != PAGE_SIZE:
            raise FormatError(f"{mf.path!r} has page size {int(raw['page_size'])}")
        chunk = int(raw["chunk_size"])
        if chunk % PAGE_SIZE or chunk == 0 or chunk > 1 << 24:
            raise FormatError(f"{mf.path!r} has an invalid chunk size {chunk}")
        slots = []
        encrypted = bool(int(raw["flags"]) & HEADER_ENCRYPTED)
        if encrypted:
            for off in KEY_SLOT_OFFSETS:
                rec = np.frombuffer(mf.view[off : off + KEY_SLOT.itemsize], KEY_SLOT)[0]
                ok = int(rec["checksum"]) == checksum(mf.buf[off + 8 : off + KEY_SLOT.itemsize])
                slots.append({
                    "in_use": ok and bool(rec["in_use"]), "kdf": int(rec["kdf"]),
                    "log2_n": int(rec["log2_n"]), "r": int(rec["r"]), "p": int(rec["p"]),
                    "epoch": int(rec["epoch"]), "salt": bytes(rec["salt"]),
                    "key_check": bytes(rec["key_check"])})
        return FileHeader(
            version=int(raw["version"]),
            chunk_size=chunk,
            created_ns=int(raw["created_ns"]),
            max_size=int(raw["max_size"]),
            uuid=bytes(raw["uuid"]),
            encrypted=encrypted,
            codec=int(raw["codec"]),
            level=int(raw["level"]),
            slots=tuple(slots),
        )

    # ------------------------------------------------------------------ pages
    @property
    def npages(self) -> int:
        """Pages currently mapped."""
        return self.mf.size // PAGE_SIZE

    @property
    def image(self) -> np.ndarray:
        """The whole mapped container as a uint8 array (read by numba kernels)."""
        return self.mf.buf

    def _bounds(self, page: int, count: int = 1) -> None:
        if page < 3 or page + count > self.npages:
            raise CorruptionError(
                f"{self.mf.path!r}: reference to pages {page}..{page + count - 1} "
                f"outside the container's {self.npages} pages",
                page=page,
            )

    def read_headed(self, page: int, ptype: int, generation: int | None) -> memoryview:
        """Return the checked bytes of a headed page.

        Verifies the checksum, the self page number, the type and (when given)
        the generation the referring structure expects.
        """
        self._bounds(page)
        off = page * PAGE_SIZE
        problem = self.check_headed(page, ptype, generation)
        if problem:
            raise CorruptionError(f"{self.mf.path!r}: {problem}", page=page)
        if self.header.encrypted:
            return memoryview(self._unseal(self.mf.view[off : off + PAGE_SIZE], page))
        return self.mf.view[off : off + PAGE_SIZE]

    def _unseal(self, image: memoryview | bytes, page: int) -> bytes:
        """Plaintext image of a sealed headed page (checksum already checked).

        The header stays as stored, the body is decrypted and authenticated,
        the trailer reads as zeros.
        """
        tail = bytes(image[8:HEADER_SIZE])
        slot = _FLAGS_AT.unpack_from(tail, 18)[0]
        sealer = self.sealers.get(slot)
        if sealer is None:
            raise WrongKeyError(
                f"{self.mf.path!r}: page {page} is sealed under key slot {slot}, which the "
                "given key does not open")
        body = sealer.open_page(tail, image[HEADER_SIZE:BODY_END],
                                bytes(image[BODY_END : BODY_END + NONCE_SIZE]),
                                bytes(image[BODY_END + NONCE_SIZE : BODY_END + NONCE_SIZE + 16]),
                                page)
        return bytes(image[:HEADER_SIZE]) + body + bytes(PAGE_SIZE - BODY_END)

    def check_headed(self, page: int, ptype: int, generation: int | None) -> str | None:
        """Describe what is wrong with a headed page, or return None if sound."""
        if page < 1 or page >= self.npages:
            return f"page {page} is outside the container"
        off = page * PAGE_SIZE
        stored, page_no, gen, typ, _flags, _count = PAGE_HEADER_STRUCT.unpack_from(
            self.mf.view, off
        )
        name = PAGE_TYPE_NAMES.get(ptype, str(ptype))
        if stored != checksum(self.mf.buf[off + 8 : off + PAGE_SIZE]):
            return f"{name} page {page} fails its checksum"
        if page_no != page:
            return f"page {page} claims to be page {page_no} (misdirected write)"
        if typ != ptype:
            found = PAGE_TYPE_NAMES.get(typ, str(typ))
            return f"page {page} is a {found} page where a {name} page was expected"
        if generation is not None and gen != generation:
            return (
                f"{name} page {page} has generation {gen}, its parent expects "
                f"{generation} (stale or misdirected write)"
            )
        return None

    def read_node_page(self, page: int, generation: int,
                       types: tuple[int, ...]) -> tuple[int, int, bytes]:
        """Checked copy of a headed page whose type is one of ``types``.

        Returns ``(type, count, page bytes)``.  The fast path of
        :meth:`read_headed` for B+tree nodes: one header unpack, one checksum.
        """
        if not 3 <= page < self.mf.size // PAGE_SIZE:
            self._bounds(page)
        off = page * PAGE_SIZE
        stored, page_no, gen, typ, _flags, count = PAGE_HEADER_STRUCT.unpack_from(
            self.mf.view, off)
        if (page_no != page or gen != generation or typ not in types
                or stored != int(xxh64(self.mf.buf[off + 8 : off + PAGE_SIZE], _SEED))):
            problem = self.check_headed(page, typ if typ in types else types[0], generation)
            raise CorruptionError(f"{self.mf.path!r}: {problem}", page=page)
        if self.header.encrypted:
            return typ, count, self._unseal(self.mf.view[off : off + PAGE_SIZE], page)
        return typ, count, bytes(self.mf.view[off : off + PAGE_SIZE])

    def header_of(self, page: int) -> tuple[int, int, int, int, int, int]:
        """Raw header fields of a page: checksum, page_no, generation, type, flags, count."""
        return PAGE_HEADER_STRUCT.unpack_from(self.mf.view, page * PAGE_SIZE)

    def write_headed(
        self, page: int, ptype: int, generation: int, count: int, body: bytes | np.ndarray
    ) -> None:
        """Write a headed page: header, body, zero padding, (seal,) checksum."""
        raw = body.tobytes() if isinstance(body, np.ndarray) else body
        if len(raw) > BODY_SIZE:
            raise ValueError(f"page body of {len(raw)} bytes does not fit")
        if not 1 <= page < self.npages:
            raise ValueError(f"page {page} is outside the mapped container")
        off = page * PAGE_SIZE
        sealer = self.sealers.get(self.slot)
        if sealer is None:
            # Built in place: no committed tree reaches a page being written.
            view = self.mf.view
            end = off + HEADER_SIZE + len(raw)
            view[off + HEADER_SIZE : end] = raw
            view[end : off + PAGE_SIZE] = _ZERO_PAGE[: off + PAGE_SIZE - end]
            PAGE_HEADER_STRUCT.pack_into(view, off, 0, page, generation, ptype, 0, count)
            _GEN_AT.pack_into(view, off,
                              int(xxh64(self.mf.buf[off + 8 : off + PAGE_SIZE], _SEED)))
            return
        image = bytearray(PAGE_SIZE)
        image[HEADER_SIZE : HEADER_SIZE + len(raw)] = raw
        PAGE_HEADER_STRUCT.pack_into(image, 0, 0, page, generation, ptype, self.slot, count)
        ct, nonce, tag = sealer.seal_page(bytes(image[8:HEADER_SIZE]),
                                          bytes(image[HEADER_SIZE:BODY_END]))
        image[HEADER_SIZE:BODY_END] = ct
        image[BODY_END : BODY_END + NONCE_SIZE] = nonce
        image[BODY_END + NONCE_SIZE : BODY_END + NONCE_SIZE + len(tag)] = tag
        _GEN_AT.pack_into(image, 0, int(xxh64(np.frombuffer(image, np.uint8)[8:], _SEED)))
        self.mf.view[off : off + PAGE_SIZE] = image

    def data(self, page: int, npages: int) -> memoryview:
        """Memoryview of a run of data pages (bounds-checked)."""
        self._bounds(page, npages)
        off = page * PAGE_SIZE
        return self.mf.view[off : off + npages * PAGE_SIZE]

    def data_array(self, page: int, nbytes: int) -> np.ndarray:
        """uint8 array view of ``nbytes`` starting at a data page."""
        self._bounds(page, max(1, -(-nbytes // PAGE_SIZE)))
        off = page * PAGE_SIZE
        return self.mf.buf[off : off + nbytes]

    def write_data(self, page: int, data: memoryview | bytes) -> None:
        """Copy raw bytes into data pages starting at ``page``."""
        n = len(data)
        self._bounds(page, max(1, -(-n // PAGE_SIZE)))
        off = page * PAGE_SIZE
        if n >= _PWRITE_MIN:
            # Same page cache as the mapping (coherent on Linux), but no page
            # fault per fresh 4 KiB page: ~3x faster into newly grown space.
            done = 0
            while done < n:
                done += os.pwrite(self.mf.fd, data[done:], off + done)
        else:
            self.mf.view[off : off + n] = data

    # ------------------------------------------------------------------- meta
    def read_meta_slot(self, slot: int) -> tuple[int, np.ndarray | None, str | None]:
        """Decode the meta page in ``slot`` (1 or 2); return (generation, meta, problem).

        Everything is checked and parsed from one private copy of the page: a
        writer may rewrite the slot at any moment, and a generation read
        separately from the contents could label an old meta page with a new
        generation.
        """
        if slot >= self.npages:
            return 0, None, f"meta page {slot} is missing (file too short)"
        raw = np.frombuffer(bytes(self.mf.view[slot * PAGE_SIZE : (slot + 1) * PAGE_SIZE]),
                            np.uint8)
        stored, page_no, gen, typ, _flags, _count = PAGE_HEADER_STRUCT.unpack_from(raw, 0)
        if stored != checksum(raw[8:]):
            return gen, None, f"meta page {slot} fails its checksum"
        if page_no != slot or typ != PT_META:
            return gen, None, f"page {slot} is not a meta page (page {page_no}, type {typ})"
        if 1 + gen % 2 != slot:
            return gen, None, (
                f"meta page {slot} holds generation {gen}, which belongs in the other slot")
        if self.header.encrypted:
            try:
                raw = np.frombuffer(self._unseal(raw.tobytes(), slot), np.uint8)
            except (CorruptionError, WrongKeyError) as exc:
                return gen, None, f"meta page {slot} (generation {gen}): {exc}"
        meta = np.frombuffer(raw[HEADER_SIZE : HEADER_SIZE + META.itemsize].tobytes(), META)[0]
        if int(meta["total_pages"]) * PAGE_SIZE > self.mf.size:
            return gen, None, (
                f"meta page {slot} (generation {gen}) describes "
                f"{int(meta['total_pages'])} pages but the file holds {self.npages} "
                "(truncated file?)"
            )
        if int(meta["commit_flags"]) & META_COMMIT_SINGLE_SYNC:
            for page in meta["sync_pages"][: int(meta["sync_count"])].tolist():
                bad = (
                    self.check_headed(page, self.header_of(page)[3], gen)
                    if 3 <= page < self.npages
                    else f"page {page} is outside the container"
                )
                if bad:
                    return gen, None, (
                        f"meta page {slot} (generation {gen}) is a torn single-sync "
                        f"commit: {bad}"
                    )
            listed = meta["sync_pages"][: int(meta["sync_count"])].tolist()
            if self.sync_digest(listed) != int(meta["sync_digest"]):
                return gen, None, (
                    f"meta page {slot} (generation {gen}) is a torn single-sync commit: "
                    "its pages do not match the digest it recorded"
                )
        return gen, meta, None

    def sync_digest(self, pages: list[int]) -> int:
        """XXH64 of the stored checksums (u64 LE, in order) of ``pages``.

        Stored in a single-sync meta page: a listed page could carry the
        right generation yet hold an image from an abandoned attempt at the
        same generation (a commit that failed and was rolled back), so the
        generation alone does not prove the page is this commit's.
        """
        view = self.mf.view
        stored = b"".join(bytes(view[p * PAGE_SIZE : p * PAGE_SIZE + 8]) for p in pages)
        return checksum(np.frombuffer(stored, np.uint8))

    def newest_generation(self) -> int:
        """Highest generation field of the two meta slots, unchecked.

        A cheap staleness probe for read-only handles: two integer loads.
        """
        view = self.mf.view
        return max(_GEN_AT.unpack_from(view, PAGE_SIZE + 16)[0],
                   _GEN_AT.unpack_from(view, 2 * PAGE_SIZE + 16)[0])

    def load_meta(self) -> tuple[int, np.ndarray]:
        """Pick the valid meta page with the highest generation (see ``_load_meta_once``).

        A read-only handle reads the meta pages while a writer may be
        rewriting them and reusing the pages an old single-sync meta lists,
        so both slots can look invalid for a moment.  That is a race, not
        damage, when the meta generations or the file size moved meanwhile,
        or the mapping is older than the file: the load is then retried on a
        fresh mapping.
        """
        while True:
            probe = (self.newest_generation(), self.mf.file_size())
            try:
                return self._load_meta_once()
            except CorruptionError:
                now = (self.newest_generation(), self.mf.file_size())
                if self.mf.writable or (probe == now and now[1] == self.mf.size):
                    raise
                self.mf.remap()

    def _load_meta_once(self) -> tuple[int, np.ndarray]:
        """Pick the valid meta page with the highest generation.

        Returns ``(generation, meta)``; raises :class:`CorruptionError` when
        neither meta page is valid.  Sets :attr:`rejected_newer` when a newer
        meta page passed its own checksum but was rejected because a page its
        single-sync commit lists is bad: a process kill cannot cause that (the
        listed pages reach the page cache before the meta page is written), so
        it means power loss during that commit or later corruption, and
        ``verify()`` reports it.
        """
        best: tuple[int, np.ndarray] | None = None
        problems = []
        gens: list[int] = []
        rejected = []
        for slot in (1, 2):
            gen, meta, problem = self.read_meta_slot(slot)
            if meta is None:
                problems.append(problem)
                gens.append(gen)
                if "torn single-sync" in problem:
                    rejected.append((gen, problem))
                continue
            if best is None or gen > best[0]:
                best = (gen, meta)
        locked = [gen for gen, problem in zip(gens, problems) if "key slot" in problem]
        if locked and (best is None or max(locked) > best[0]):
            # A newer commit is sealed under a key the caller lacks (a rekey
            # happened): never fall back to an older commit for that reason.
            raise WrongKeyError(f"{self.mf.path!r}: wrong key for the newest commit "
                                f"({'; '.join(problems)})")
        if best is None:
            raise CorruptionError(
                f"{self.mf.path!r}: no valid meta page ({'; '.join(problems)})", page=1
            )
        self.rejected_newer = [
            f"{problem}; the container opened at generation {best[0]}, so commit {gen} "
            "is lost (power loss during that commit, or corruption after it)"
            for gen, problem in rejected
            if gen > best[0]
        ]
        return best

    def write_meta(self, generation: int, meta: np.ndarray) -> None:
        """Write ``meta`` as generation ``generation`` into its slot."""
        slot = 1 + generation % 2
        self.write_headed(slot, PT_META, generation, 0, meta.tobytes())

    def sync(self) -> None:
        """Make all writes durable."""
        self.mf.sync()

    # ------------------------------------------------------------------ commit
    def commit(self, generation: int, fields: dict[str, Any], written: list[int],
               wrote_data: bool) -> np.ndarray:
        """Make commit ``generation`` durable: build its meta record, sync, write it, sync.

        ``fields`` are the meta fields the layers above decided (tree root and
        depth, counts, the free-map state); ``written`` are the headed pages
        this commit wrote and ``wrote_data`` says whether it wrote raw data
        pages.  A commit of at most ``META_SYNC_MAX`` headed pages and no data
        lists them in the meta page and syncs once (see the module essay);
        any other syncs its pages first.  Returns the meta record written.

        :attr:`meta_written` tells a caller whose commit raised whether the
        meta page was already written: from then on the commit may be what
        readers and a reopen see, so it must never be rolled back.
        """
        self.meta_written = False
        meta = np.zeros((), META)
        meta["committed_ns"] = time.time_ns()
        for name, value in fields.items():
            if name in ("fm_ptrs", "pending_inline"):
                meta[name][: value.size] = value
            else:
                meta[name] = value
        if not wrote_data and len(written) <= META_SYNC_MAX:
            meta["commit_flags"] = META_COMMIT_SINGLE_SYNC
            meta["sync_count"] = len(written)
            meta["sync_pages"][: len(written)] = written
            meta["sync_digest"] = self.sync_digest(written)
        else:
            self.sync()
        self.meta_written = True
        self.write_meta(generation, meta)
        self.sync()
        return meta
