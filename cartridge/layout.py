"""Every fixed on-disk structure, defined once as a numpy structured dtype.

FORMAT.md describes these byte by byte; this module is its executable twin.
Readers and writers in the rest of the package use these dtypes (or the
``struct.Struct`` derived from them by :func:`struct_of`, for hot paths where a
numpy call per record would cost more than the work) and never hand-computed
offsets.  All integers are little-endian except B+tree keys, which are compared
as raw bytes and therefore store their integers big-endian.

The container is a sequence of 4096-byte pages:

* page 0: the file header (:data:`FILE_HEADER`), written once at creation;
* pages 1 and 2: the two meta pages (:data:`PAGE_HEADER` + :data:`META`), written
  alternately by commits (generation ``g`` goes to page ``1 + g % 2``);
* every other page is either a *headed* page (B+tree branch or leaf, free-map
  segment, free-map directory, pending-free list), which starts with a
  :data:`PAGE_HEADER` carrying its type, the generation that wrote it, its own
  page number and an XXH64 checksum, or a *data* page holding raw file bytes.
  Data pages carry no header, so that a file's bytes (and later a numpy array)
  can be one contiguous page-aligned run; their type, generation and checksum
  live in the chunk record that points to them.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

PAGE_SIZE = 4096
MAGIC = b"CARTRIDG"
FORMAT_VERSION = 2

#: Default logical chunk of file data: 16 pages.  Each chunk has one record in
#: the B+tree (physical start, page count, length, checksum).
DEFAULT_CHUNK_SIZE = 64 * 1024

#: Seed of every XXH64 checksum in the format.
CHECKSUM_SEED = 0

# Page types (PAGE_HEADER.type).
PT_META = 1
PT_BRANCH = 2
PT_LEAF = 3
PT_FREEMAP = 4
PT_FMDIR = 5
PT_PENDING = 6

PAGE_TYPE_NAMES = {
    PT_META: "meta",
    PT_BRANCH: "branch",
    PT_LEAF: "leaf",
    PT_FREEMAP: "freemap",
    PT_FMDIR: "freemap-directory",
    PT_PENDING: "pending-free",
}

FILE_HEADER = np.dtype(
    [
        ("magic", "S8"),  # b"CARTRIDG"
        ("checksum", "<u8"),  # XXH64 of bytes 16..4095 of page 0
        ("version", "<u4"),  # FORMAT_VERSION
        ("page_size", "<u4"),  # always 4096
        ("chunk_size", "<u4"),  # bytes per logical data chunk, multiple of 4096
        ("flags", "<u4"),  # reserved, 0
        ("created_ns", "<i8"),  # creation time, ns since the epoch
        ("max_size", "<u8"),  # default size cap in bytes, 0 = none
        ("uuid", "u1", (16,)),  # random container identity
        ("codec", "u1"),  # container default compression policy (CODEC_* / POLICY_AUTO)
        ("level", "i1"),  # its level, 0 = the codec's default
        ("reserved", "u1", (14,)),  # 0
    ]
)

#: FILE_HEADER.flags bit 0: every headed page body and every chunk is sealed
#: with AES-256-GCM; two KEY_SLOTs follow the header.
HEADER_ENCRYPTED = 1
#: The header checksum covers bytes 16..HEADER_FIXED of page 0 (the fields, then
#: zeros); the key slots after it carry their own checksums, so ``rekey`` can
#: rewrite one slot without touching the header or the other slot.
HEADER_FIXED = 512
#: Byte offsets of the two key slots in page 0 (separate 512-byte sectors, so a
#: torn rewrite of one by ``rekey`` cannot damage the other).
KEY_SLOT_OFFSETS = (512, 1024)
KDF_RAW = 0  # the caller gave the 32-byte key itself
KDF_SCRYPT = 1  # key = scrypt(password, salt, N=2**log2_n, r, p, 32 bytes)

KEY_SLOT = np.dtype(
    [
        ("checksum", "<u8"),  # XXH64 of bytes 8..KEY_SLOT.itemsize of the slot
        ("in_use", "u1"),  # 1 when the slot holds a key
        ("kdf", "u1"),  # KDF_*
        ("log2_n", "u1"),  # scrypt cost N = 2**log2_n
        ("reserved", "u1"),
        ("r", "<u4"),  # scrypt block size
        ("p", "<u4"),  # scrypt parallelism
        ("epoch", "<u4"),  # which rekey made this slot (0 = create)
        ("salt", "u1", (16,)),  # scrypt salt (random; zero for KDF_RAW)
        ("key_check", "u1", (32,)),  # SHA-256(b"cartridge key check" + uuid + key)
    ]
)

PAGE_HEADER = np.dtype(
    [
        ("checksum", "<u8"),  # XXH64(page[8:4096], seed 0)
        ("page_no", "<u8"),  # this page's own number: catches misdirected writes
        ("generation", "<u8"),  # commit generation that wrote the page
        ("type", "<u2"),  # PT_*
        ("flags", "<u2"),  # reserved, 0
        ("count", "<u4"),  # items in the page (meaning depends on type)
    ]
)
HEADER_SIZE = PAGE_HEADER.itemsize  # 32
#: Every headed page ends with a 32-byte trailer: in encrypted containers the
#: AES-GCM nonce (12 bytes) and tag (16 bytes) of the sealed body, then 4 zero
#: bytes; in plain containers all zero.  Format version 2 reserves it always,
#: so every capacity below is one constant whatever the container.
TRAILER_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
BODY_END = PAGE_SIZE - TRAILER_SIZE  # 4064: bodies span bytes 32..4063
BODY_SIZE = BODY_END - HEADER_SIZE  # 4032

#: A (page, generation) pointer.  The generation lets the reader check that the
#: page it reaches was written by the commit the parent expects (btrfs does the
#: same), and keys the decoded-node cache.
PAGE_REF = np.dtype([("page", "<u8"), ("generation", "<u8")])

#: Free-map pointers kept inline in the meta page; beyond this many free-map
#: segments the meta points at free-map directory pages instead.
META_FM_INLINE = 128
#: Pages listed in a single-sync commit's meta page (see pager.py).
META_SYNC_MAX = 189

META_COMMIT_SINGLE_SYNC = 1

#: Pages freed by commit ``generation`` that may still be reachable from an
#: older commit.  ``birth`` is the generation that wrote them (a lower bound is
#: allowed): the run is reachable from commit ``s`` exactly when
#: ``birth <= s < generation``, so it returns to the bitmap once that commit is
#: durable and no reader pin or snapshot lies in that range.
PENDING_ENTRY = np.dtype([("generation", "<u8"), ("start", "<u8"), ("count", "<u8"),
                          ("birth", "<u8")])
#: Pending-free records kept in the meta page itself when they are this few,
#: so a small commit writes no pending-list page.
META_PENDING_INLINE = 11

META = np.dtype(
    [
        ("root", PAGE_REF),  # catalog B+tree root, page 0 = empty tree
        ("tree_depth", "<u4"),  # levels below the root (0 = root is a leaf)
        ("commit_flags", "<u4"),  # META_COMMIT_*
        ("total_pages", "<u8"),  # logical size of the container in pages
        ("next_file_id", "<u8"),  # next file id to hand out
        ("file_count", "<u8"),
        ("dir_count", "<u8"),
        ("committed_ns", "<i8"),  # wall clock of the commit
        ("fm_segments", "<u4"),  # free-map segments (each covers FM_BITS pages)
        ("fm_levels", "<u4"),  # 1: fm_ptrs are free-map pages; 2: directory pages
        ("fm_nptrs", "<u4"),  # used entries of fm_ptrs
        ("sync_count", "<u4"),  # used entries of sync_pages (single-sync commits)
        ("pending_page", "<u8"),  # first page of the pending-free run, 0 = none
        ("pending_npages", "<u4"),
        ("reserved0", "<u4"),
        ("pending_count", "<u8"),  # PENDING_ENTRY records in that run
        ("fm_ptrs", PAGE_REF, (META_FM_INLINE,)),
        ("sync_pages", "<u8", (META_SYNC_MAX,)),
        ("pending_inline", PENDING_ENTRY, (META_PENDING_INLINE,)),
        ("reserved1", "<u8"),
        ("sync_digest", "<u8"),  # XXH64 of the listed pages' stored checksums
    ]
)
assert HEADER_SIZE + META.itemsize == BODY_END

#: One free-map page: a bitmap of FM_WORDS little-endian uint64 words after the
#: page header; bit ``p & 63`` of word ``p >> 6`` is 1 when page ``p`` is used.
FM_WORDS = BODY_SIZE // 8  # 504
FM_BITS = FM_WORDS * 64  # 32256 pages per segment

#: Free-map directory page: PAGE_REF entries, one per free-map segment.
FMDIR_ENTRIES = BODY_SIZE // PAGE_REF.itemsize  # 252

PENDING_PER_PAGE = BODY_SIZE // PENDING_ENTRY.itemsize  # 168

# ---------------------------------------------------------------------------
# B+tree nodes.  A leaf page holds ``count`` cells after the header:
#   u16 offsets[2*count + 1]   absolute offsets in the page; key i spans
#                              offsets[2i]..offsets[2i+1], value i spans
#                              offsets[2i+1]..offsets[2i+2]
#   key/value bytes, packed in order.
# A branch page holds ``count`` children:
#   PAGE_REF children[count]
#   u16 offsets[count]         separator key i (i = 0..count-2) spans
#                              offsets[i]..offsets[i+1]
#   separator key bytes.
# Child i of a branch holds the keys k with sep[i-1] <= k < sep[i].
# ---------------------------------------------------------------------------

#: Largest key + value a leaf cell may hold, so that any two cells share a page.
MAX_CELL = 2000

# Key-space prefixes of the single catalog B+tree.
KEY_PATH = b"\x10"  # + normalized UTF-8 path  -> ENTRY value
KEY_CHUNK = b"\x20"  # + file id (u64 BE) + chunk index (u64 BE) -> CHUNK value
KEY_SNAPSHOT = b"\x30"  # + snapshot name (UTF-8) -> SNAPSHOT value

MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255
MAX_METADATA_BYTES = 768

# Entry kinds and flags.
KIND_FILE = 1
KIND_DIR = 2
KIND_NAMES = {KIND_FILE: "file", KIND_DIR: "dir"}
ENTRY_INLINE = 1  # the file's bytes follow the metadata inside the value
ENTRY_ARRAY = 2  # a numpy array: the value's tail is its descriptor (arrayformat.py)
#: Bits 2-3 of ENTRY.flags: the file's compression policy for new chunks
#: (CODEC_NONE, CODEC_LZ4, CODEC_ZSTD or POLICY_AUTO).  Readers ignore it: each
#: chunk record names its own codec.
ENTRY_POLICY_SHIFT = 2
ENTRY_POLICY_MASK = 0b1100

ENTRY = np.dtype(
    [
        ("kind", "u1"),  # KIND_*
        ("flags", "u1"),  # ENTRY_*
        ("meta_len", "<u2"),  # bytes of encoded user metadata after this record
        ("mode", "<u4"),  # POSIX permission bits
        ("size", "<u8"),  # logical size in bytes
        ("mtime_ns", "<i8"),  # last modification
        ("ctime_ns", "<i8"),  # creation
        ("file_id", "<u8"),  # owner of the CHUNK records, 0 for dirs and inline files
    ]
)

#: Largest file kept inline in its catalog entry instead of in data pages.
INLINE_MAX = 1536

# Chunk codecs (CHUNK.codec).  POLICY_AUTO is a per-file policy only: lz4,
# kept per chunk when it saves at least AUTO_MIN_SAVING of the chunk.
CODEC_NONE = 0
CODEC_LZ4 = 1
CODEC_ZSTD = 2
POLICY_AUTO = 3
CODEC_NAMES = {CODEC_NONE: None, CODEC_LZ4: "lz4", CODEC_ZSTD: "zstd", POLICY_AUTO: "auto"}
AUTO_MIN_SAVING = 0.10

#: CHUNK.flags bit 0: the stored bytes are nonce || AES-256-GCM ciphertext || tag;
#: bit 1: the key slot (0 or 1) whose key sealed them.
CHUNK_ENCRYPTED = 1

CHUNK = np.dtype(
    [
        ("page", "<u8"),  # first data page, 0 = hole (reads as zeros)
        ("npages", "<u4"),  # contiguous pages holding the chunk = ceil(stored / 4096)
        ("length", "<u4"),  # logical bytes of the chunk; bytes past it (within the file) read 0
        ("stored", "<u4"),  # bytes on disk (after compression and encryption)
        ("codec", "<u2"),  # CODEC_*
        ("flags", "<u2"),  # bit 0 CHUNK_ENCRYPTED, bit 1 the key slot it is sealed under
        ("checksum", "<u8"),  # XXH64 of the `stored` bytes on disk, seed 0
        ("generation", "<u8"),  # commit generation that wrote the chunk
    ]
)


class ChunkRecord(NamedTuple):
    """One decoded :data:`CHUNK` record: where one chunk of a file lives (FORMAT.md section 8).

    The fields are :data:`CHUNK`'s, in its order, so ``CHUNK_STRUCT.pack(*rec)``
    and :meth:`pack` write the same bytes.  A plain tuple, so decoding one costs
    no more than ``struct.unpack``.
    """

    page: int
    """First data page; 0 = a hole (no pages, the chunk reads as zeros)."""
    npages: int
    """Contiguous data pages holding it, ``ceil(stored / 4096)``."""
    length: int
    """Logical bytes of the chunk, at most the container's chunk size."""
    stored: int
    """Bytes on disk from :attr:`page` on (after compression and sealing)."""
    codec: int
    """``CODEC_*`` the stored bytes are compressed with."""
    flags: int
    """Bit 0 :data:`CHUNK_ENCRYPTED`; bit 1 the key slot that sealed it."""
    checksum: int
    """XXH64 (seed 0) of the :attr:`stored` bytes as they are on disk."""
    generation: int
    """Commit generation that wrote the chunk (bound into its seal's AAD)."""

    @property
    def encrypted(self) -> bool:
        """True when the stored bytes are ``nonce || ciphertext || tag``."""
        return bool(self.flags & CHUNK_ENCRYPTED)

    @property
    def key_slot(self) -> int:
        """The key slot whose key sealed the chunk (the flags above bit 0)."""
        return self.flags >> 1

    @property
    def end_page(self) -> int:
        """The page after the chunk's last page."""
        return self.page + self.npages

    def pack(self) -> bytes:
        """The record's bytes as stored in the catalog."""
        return CHUNK_STRUCT.pack(*self)

    @classmethod
    def unpack(cls, raw: bytes | memoryview) -> ChunkRecord:
        """Decode a record's bytes (``struct.error`` when not exactly 40 bytes)."""
        return cls._make(CHUNK_STRUCT.unpack(raw))


def sealed_chunk_flags(slot: int) -> int:
    """CHUNK.flags of a chunk sealed under key slot ``slot``."""
    return CHUNK_ENCRYPTED | slot << 1


#: A named snapshot: the catalog tree of one committed generation, kept with
#: every page it reaches until the snapshot is deleted.
SNAPSHOT = np.dtype(
    [
        ("root_page", "<u8"),  # catalog B+tree root of that commit, 0 = empty tree
        ("root_generation", "<u8"),  # the root page's generation
        ("tree_depth", "<u4"),
        ("reserved", "<u4"),
        ("generation", "<u8"),  # the commit the snapshot pins
        ("created_ns", "<i8"),  # when the snapshot was taken
        ("file_count", "<u8"),
        ("dir_count", "<u8"),
        ("next_file_id", "<u8"),
    ]
)
MAX_SNAPSHOT_NAME = 255


def fields_of(dtype: np.dtype) -> Mapping[str, tuple[Any, ...]]:
    """``dtype.fields`` of a structured dtype: ``name -> (field dtype, offset[, title])``."""
    fields = dtype.fields
    if fields is None:
        raise ValueError(f"{dtype} is not a structured dtype")
    return fields


def field_offset(dtype: np.dtype, name: str) -> int:
    """Byte offset of field ``name`` in the structured ``dtype``."""
    return int(fields_of(dtype)[name][1])


def struct_of(dtype: np.dtype) -> struct.Struct:
    """Return a ``struct.Struct`` with exactly the layout of a flat ``dtype``.

    Hot paths (decoding one catalog entry per lookup) use ``struct`` because a
    numpy call per record costs microseconds; deriving the format from the
    dtype keeps the layout defined in one place.
    """
    codes = {
        ("u", 1): "B",
        ("u", 2): "H",
        ("u", 4): "I",
        ("u", 8): "Q",
        ("i", 1): "b",
        ("i", 2): "h",
        ("i", 4): "i",
        ("i", 8): "q",
        ("f", 8): "d",
    }
    fmt = "<"
    offset = 0
    for name in dtype.names or ():
        field, field_offset = fields_of(dtype)[name][:2]
        if field_offset != offset:
            raise ValueError(f"field {name} of {dtype} is not packed")
        if field.subdtype is not None:
            raise ValueError(f"field {name} of {dtype} is not scalar")
        if field.kind == "S":
            fmt += f"{field.itemsize}s"
        else:
            fmt += codes[(field.kind, field.itemsize)]
        offset += field.itemsize
    packed = struct.Struct(fmt)
    assert packed.size == dtype.itemsize
    return packed


PAGE_HEADER_STRUCT = struct_of(PAGE_HEADER)
PAGE_REF_STRUCT = struct_of(PAGE_REF)
ENTRY_STRUCT = struct_of(ENTRY)
CHUNK_STRUCT = struct_of(CHUNK)
assert ChunkRecord._fields == CHUNK.names
SNAPSHOT_STRUCT = struct_of(SNAPSHOT)
