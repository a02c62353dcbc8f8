"""The catalog: paths, entries and chunk records on top of the B+tree.

One B+tree holds everything, partitioned by a one-byte key prefix:

* ``0x10 + path``  -> an :data:`~cartridge.layout.ENTRY` record, then the
  encoded user metadata, then (for small files) the file's bytes inline;
* ``0x20 + file id (u64 BE) + chunk index (u64 BE)`` -> a
  :data:`~cartridge.layout.CHUNK` record: where one chunk of a file's bytes
  lives, how long it is and its checksum.

Keeping a file's chunk records under its *file id* rather than its path makes
rename O(1) in the file's size, and keeping them out of the entry keeps
entries small and bounded however large the file.  Byte-ordered paths make a
directory listing a range scan of ``[dir + "/", dir + "0")``; a non-recursive
listing hops over each subdirectory's subtree with one seek.

User metadata is a small ``dict`` of ``str`` keys to ``None``, ``bool``,
``int`` (64-bit), ``float``, ``str`` or ``bytes`` values, encoded in a tiny
tag-length-value format (FORMAT.md) — no pickle, no JSON.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .btree import BTree
from .errors import CorruptionError, InvalidPathError, MetadataError
from .layout import (
    CHUNK_STRUCT,
    ENTRY_STRUCT,
    KEY_CHUNK,
    KEY_PATH,
    KEY_SNAPSHOT,
    MAX_METADATA_BYTES,
    MAX_SNAPSHOT_NAME,
    SNAPSHOT_STRUCT,
)

_CHUNK_KEY = struct.Struct(">QQ")
_SNAP_END = bytes([KEY_SNAPSHOT[0] + 1])

#: page, npages, length, stored, codec, flags, checksum, generation (layout.CHUNK)
ChunkRec = tuple[int, int, int, int, int, int, int, int]


@dataclass(slots=True)
class Entry:
    """A decoded catalog entry (mutable while a write is being prepared)."""

    kind: int
    flags: int
    mode: int
    size: int
    mtime_ns: int
    ctime_ns: int
    file_id: int
    meta: bytes = b""
    inline: bytes = b""

    def encode(self) -> bytes:
        """The value bytes stored in the B+tree."""
        return (
            ENTRY_STRUCT.pack(self.kind, self.flags, len(self.meta), self.mode, self.size,
                              self.mtime_ns, self.ctime_ns, self.file_id)
            + self.meta
            + self.inline
        )

    @classmethod
    def decode(cls, raw: bytes) -> Entry:
        """Parse value bytes; raises :class:`CorruptionError` when malformed."""
        try:
            kind, flags, meta_len, mode, size, mtime, ctime, fid = ENTRY_STRUCT.unpack_from(raw)
        except struct.error:
            raise CorruptionError("catalog entry is truncated") from None
        base = ENTRY_STRUCT.size
        meta = raw[base : base + meta_len]
        inline = raw[base + meta_len :]
        if len(meta) != meta_len:
            raise CorruptionError("catalog entry metadata is truncated")
        return cls(kind, flags, mode, size, mtime, ctime, fid, meta, inline)


# --------------------------------------------------------------- metadata
_T_NONE, _T_FALSE, _T_TRUE, _T_INT, _T_FLOAT, _T_STR, _T_BYTES = range(7)


def encode_metadata(metadata: dict) -> bytes:
    """Encode a user-metadata dict; raises :class:`MetadataError` when impossible."""
    if not isinstance(metadata, dict):
        raise MetadataError(f"metadata must be a dict, got {type(metadata).__name__}")
    out = [struct.pack("<H", len(metadata))]
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise MetadataError(f"metadata keys must be str, got {key!r}")
        k = key.encode("utf-8", "surrogatepass")
        if len(k) > 255:
            raise MetadataError(f"metadata key {key[:40]!r}... is over 255 bytes")
        out.append(struct.pack("<B", len(k)) + k)
        if value is None:
            out.append(bytes([_T_NONE]))
        elif value is True or value is False:
            out.append(bytes([_T_TRUE if value else _T_FALSE]))
        elif isinstance(value, int):
            if not -(1 << 63) <= value < 1 << 63:
                raise MetadataError(f"metadata int {key!r}={value} does not fit in 64 bits")
            out.append(struct.pack("<Bq", _T_INT, value))
        elif isinstance(value, float):
            out.append(struct.pack("<Bd", _T_FLOAT, value))
        elif isinstance(value, (str, bytes)):
            b = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
            tag = _T_STR if isinstance(value, str) else _T_BYTES
            out.append(struct.pack("<BH", tag, len(b)) + b)
        else:
            raise MetadataError(
                f"metadata value {key!r} has type {type(value).__name__}; allowed: "
                "None, bool, int, float, str, bytes"
            )
    raw = b"".join(out)
    if len(raw) > MAX_METADATA_BYTES:
        raise MetadataError(
            f"metadata encodes to {len(raw)} bytes; the limit is {MAX_METADATA_BYTES}"
        )
    return raw


def decode_metadata(raw: bytes) -> dict:
    """Decode :func:`encode_metadata` output."""
    if not raw:
        return {}
    try:
        (count,) = struct.unpack_from("<H", raw)
        pos = 2
        out: dict = {}
        for _ in range(count):
            klen = raw[pos]
            key = raw[pos + 1 : pos + 1 + klen].decode("utf-8", "surrogatepass")
            pos += 1 + klen
            tag = raw[pos]
            pos += 1
            if tag in (_T_NONE, _T_FALSE, _T_TRUE):
                out[key] = (None, False, True)[tag]
            elif tag == _T_INT:
                out[key] = struct.unpack_from("<q", raw, pos)[0]
                pos += 8
            elif tag == _T_FLOAT:
                out[key] = struct.unpack_from("<d", raw, pos)[0]
                pos += 8
            elif tag in (_T_STR, _T_BYTES):
                (n,) = struct.unpack_from("<H", raw, pos)
                b = raw[pos + 2 : pos + 2 + n]
                pos += 2 + n
                out[key] = b.decode("utf-8", "surrogatepass") if tag == _T_STR else bytes(b)
            else:
                raise ValueError(f"unknown tag {tag}")
        return out
    except (IndexError, ValueError, struct.error, UnicodeDecodeError) as exc:
        raise CorruptionError(f"user metadata is malformed: {exc}") from None


# ---------------------------------------------------------------- catalog
@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """A snapshot record as stored in the catalog (FORMAT.md section 13)."""

    root: tuple[int, int] | None
    """(page, generation) of the tree root the snapshot keeps, None for an empty tree."""
    depth: int
    """Depth of that tree."""
    generation: int
    """The commit it pins."""
    created_ns: int
    """When it was taken, nanoseconds since the epoch."""
    file_count: int
    """Files in the snapshot."""
    dir_count: int
    """Directories in the snapshot."""
    next_file_id: int
    """The next file id of that commit (a restore never reuses an id)."""

    @classmethod
    def decode(cls, raw: bytes) -> SnapshotRecord:
        """Parse a stored SNAPSHOT value."""
        page, gen, depth, _r, sgen, created, files, dirs, nfid = SNAPSHOT_STRUCT.unpack(raw)
        return cls((page, gen) if page else None, depth, sgen, created, files, dirs, nfid)

    def encode(self) -> bytes:
        """The stored SNAPSHOT value."""
        page, gen = self.root if self.root is not None else (0, 0)
        return SNAPSHOT_STRUCT.pack(page, gen, self.depth, 0, self.generation, self.created_ns,
                                    self.file_count, self.dir_count, self.next_file_id)


def snapshot_key(name: Any) -> bytes:
    """B+tree key of a snapshot name (validated: 1-255 bytes of UTF-8, no NUL)."""
    if not isinstance(name, str):
        raise TypeError(f"snapshot name must be a str, got {type(name).__name__}")
    raw = name.encode("utf-8")
    if not raw or len(raw) > MAX_SNAPSHOT_NAME or "\0" in name:
        raise InvalidPathError(f"snapshot name must be 1-{MAX_SNAPSHOT_NAME} bytes of UTF-8 "
                               f"without NUL, got {name!r}")
    return KEY_SNAPSHOT + raw


def path_key(path: str) -> bytes:
    """B+tree key of a normalized path."""
    return KEY_PATH + path.encode("utf-8")


def chunk_key(file_id: int, index: int) -> bytes:
    """B+tree key of chunk ``index`` of file ``file_id``."""
    return KEY_CHUNK + _CHUNK_KEY.pack(file_id, index)


class Catalog:
    """Path and chunk operations over one :class:`BTree` version."""

    def __init__(self, tree: BTree) -> None:
        self.tree = tree

    # entries
    def get(self, path: str) -> Entry | None:
        """Entry at ``path`` or None."""
        raw = self.tree.get(path_key(path))
        return None if raw is None else Entry.decode(raw)

    def put(self, path: str, entry: Entry) -> None:
        """Insert or replace the entry at ``path``."""
        self.tree.put(path_key(path), entry.encode())

    def remove(self, path: str) -> None:
        """Delete the entry at ``path``."""
        self.tree.delete(path_key(path))

    def children(self, path: str) -> Iterator[tuple[str, bytes]]:
        """``(path, raw entry)`` of the direct children of directory ``path``, in order."""
        prefix = KEY_PATH + (b"/" if path == "/" else path.encode("utf-8") + b"/")
        end = prefix[:-1] + b"0"
        start = prefix
        while True:
            restart = None
            for key, raw in self.tree.items(start, end):
                rel = key[len(prefix):]
                slash = rel.find(b"/")
                if slash < 0:
                    yield key[1:].decode("utf-8"), raw
                else:
                    restart = prefix + rel[:slash] + b"0"
                    break
            if restart is None:
                return
            start = restart

    def descendants(self, path: str, name_prefix: bytes = b"") -> Iterator[tuple[str, bytes]]:
        """``(path, raw entry)`` under directory ``path`` whose relative path starts with
        ``name_prefix``."""
        prefix = KEY_PATH + (b"/" if path == "/" else path.encode("utf-8") + b"/") + name_prefix
        end = _prefix_end(prefix)
        for key, raw in self.tree.items(prefix, end):
            yield key[1:].decode("utf-8"), raw

    def has_children(self, path: str) -> bool:
        """True when directory ``path`` has at least one child."""
        return next(self.descendants(path), None) is not None

    # chunks
    def chunks(self, file_id: int, lo: int = 0,
               hi: int | None = None) -> Iterator[tuple[int, ChunkRec]]:
        """``(index, record)`` for chunks ``lo <= index < hi`` of a file."""
        start = chunk_key(file_id, lo)
        end = chunk_key(file_id, hi if hi is not None else 0)
        if hi is None:
            end = _prefix_end(end[:9])
        for key, raw in self.tree.items(start, end):
            if len(raw) != CHUNK_STRUCT.size:
                raise CorruptionError(f"chunk record of file {file_id} is malformed")
            yield _CHUNK_KEY.unpack_from(key, 1)[1], CHUNK_STRUCT.unpack(raw)

    def chunk(self, file_id: int, index: int) -> ChunkRec | None:
        """The record of one chunk, or None (a point lookup)."""
        raw = self.tree.get(chunk_key(file_id, index))
        if raw is None:
            return None
        if len(raw) != CHUNK_STRUCT.size:
            raise CorruptionError(f"chunk record of file {file_id} is malformed")
        return CHUNK_STRUCT.unpack(raw)

    def put_chunk(self, file_id: int, index: int, rec: ChunkRec) -> None:
        """Insert or replace a chunk record."""
        self.tree.put(chunk_key(file_id, index), CHUNK_STRUCT.pack(*rec))

    def remove_chunk(self, file_id: int, index: int) -> None:
        """Delete a chunk record."""
        self.tree.delete(chunk_key(file_id, index))

    # snapshots
    def snapshots(self) -> list[tuple[str, SnapshotRecord]]:
        """``(name, record)`` of every snapshot, in name order."""
        return [(k[1:].decode("utf-8"), SnapshotRecord.decode(v))
                for k, v in self.tree.items(KEY_SNAPSHOT, _SNAP_END)]

    def snapshot(self, name: str) -> SnapshotRecord | None:
        """The record of snapshot ``name``, or None."""
        raw = self.tree.get(snapshot_key(name))
        return None if raw is None else SnapshotRecord.decode(raw)

    def put_snapshot(self, name: str, rec: SnapshotRecord) -> None:
        """Insert or replace a snapshot record."""
        self.tree.put(snapshot_key(name), rec.encode())

    def remove_snapshot(self, name: str) -> None:
        """Delete a snapshot record."""
        self.tree.delete(snapshot_key(name))


def _prefix_end(prefix: bytes) -> bytes | None:
    """Smallest key greater than every key starting with ``prefix``."""
    p = bytearray(prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return None
    p[-1] += 1
    return bytes(p)
