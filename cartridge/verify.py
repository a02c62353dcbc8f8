"""``verify()``: walk every page the last commit can reach and check it.

What is checked, in order:

1. the B+tree: each node's checksum, self page number, type and the
   generation its parent expects; keys strictly ordered and inside the range
   the parent's separators allow; all leaves at one depth;
2. every entry: decodable, known kind, metadata decodable, inline size right,
   parent directory present; counts match the meta page;
3. every chunk record: owned by a live file, inside the file's size, pages in
   bounds, page count matching its stored length, and (``data=True``) its
   XXH64 and, for compressed or encrypted chunks, that it authenticates and
   decodes to its logical length (so ``cart check --data`` finds swapped or
   replayed chunks too);
4. no page used twice (tree nodes, data, free-map and pending pages);
5. the free map: every reachable or pending page is marked used, and every
   page marked used is reachable or pending (otherwise it has leaked);
6. every snapshot: its tree is checked like the live one (without the
   counts), and each page it reaches is either shared with the live tree or
   inside a pending-free run that the snapshot holds, never free and never
   used by anything else.

Problems are collected, not raised, so one report names every damaged page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import paths
from .allocator import Allocator
from .arraydata import array_chunk_problem, array_entry_problem
from .btree import NodeStore
from .catalog import ChunkRecord, Entry, decode_metadata
from .errors import CartridgeError
from .filedata import decode_chunk, plain_chunk
from .layout import (
    CHUNK_STRUCT,
    CODEC_NONE,
    CODEC_ZSTD,
    ENTRY_ARRAY,
    ENTRY_INLINE,
    FM_WORDS,
    KEY_CHUNK,
    KEY_PATH,
    KEY_SNAPSHOT,
    KIND_DIR,
    KIND_FILE,
    MAX_CELL,
    PAGE_SIZE,
    SNAPSHOT_STRUCT,
)
from .pager import Pager, checksum

#: ``claim(first page, count, what)``: mark pages as reached by ``what``;
#: False (with a problem recorded) when they cannot belong to it.
Claim = Callable[[int, int, str], bool]
#: A chunk record found in the tree: (file id, chunk index, record).
ChunkCell = tuple[int, int, ChunkRecord]
#: A snapshot record found in the tree: (name, SNAPSHOT fields).
SnapshotCell = tuple[str, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of :meth:`Cartridge.verify`."""

    ok: bool
    """True when no problem was found."""
    problems: list[str] = field(default_factory=list)
    """One message per problem, naming the page or path."""
    generation: int = 0
    """Generation that was checked."""
    pages_checked: int = 0
    """Headed pages whose checksums were verified."""
    files: int = 0
    """Files found."""
    dirs: int = 0
    """Directories found."""
    data_bytes_checked: int = 0
    """Bytes of file data whose checksums were verified."""


def verify(pager: Pager, store: NodeStore, meta: np.ndarray, generation: int,
           data: bool = True, free_map: bool = True) -> VerifyReport:
    """Check the commit described by ``meta``; see the module docstring.

    ``free_map=False`` checks the tree and data only (a snapshot handle: its
    tree is not the one the free map describes).
    """
    problems: list[str] = list(pager.rejected_newer)
    total = int(meta["total_pages"])
    owner = np.zeros(total, np.uint8)  # 1 = reached once
    owner[:3] = 1
    counters = {"pages": 0, "data": 0}

    def claim(start: int, count: int, what: str) -> bool:
        if start < 3 or start + count > total:
            problems.append(f"{what}: pages {start}..{start + count - 1} out of range")
            return False
        if owner[start : start + count].any():
            problems.append(f"{what}: page(s) {start}..{start + count - 1} already used "
                            "by another structure")
            return False
        owner[start : start + count] = 1
        return True

    entries: dict[str, Entry] = {}
    chunks: list[ChunkCell] = []
    snapshots: list[SnapshotCell] = []
    root_page = int(meta["root"]["page"])
    if root_page:
        _walk_tree(pager, store, (root_page, int(meta["root"]["generation"])), generation,
                   claim, problems, entries, chunks, counters, snapshots)
    problems.extend(_check_entries(entries, chunks, pager, claim, counters, data,
                                   meta, True))
    live = owner.astype(bool)
    pending_mask = None
    if free_map:
        pending_mask = _check_free_map(pager, meta, total, owner, claim, problems, counters)
    for name, rec in snapshots:
        _check_snapshot(name, rec, pager, store, total, live, pending_mask, problems,
                        counters, data)

    files = sum(1 for e in entries.values() if e.kind == KIND_FILE)
    dirs = sum(1 for e in entries.values() if e.kind == KIND_DIR)
    return VerifyReport(
        ok=not problems,
        problems=problems,
        generation=generation,
        pages_checked=counters["pages"],
        files=files,
        dirs=dirs,
        data_bytes_checked=counters["data"],
    )


def _check_entries(entries: dict[str, Entry], chunks: list[ChunkCell],
                   pager: Pager, claim: Claim, counters: dict[str, int],
                   data: bool, meta: np.ndarray | None, counts: bool) -> list[str]:
    """Steps 2 and 3 of the module docstring for one tree's cells."""
    problems: list[str] = []

    # entries
    files = dirs = 0
    live: dict[int, tuple[str, Entry]] = {}
    for path, entry in entries.items():
        if entry.kind == KIND_DIR:
            dirs += 1
        elif entry.kind == KIND_FILE:
            files += 1
            if entry.flags & ENTRY_INLINE:
                if len(entry.inline) != entry.size:
                    problems.append(f"{path}: inline data is {len(entry.inline)} bytes, "
                                    f"entry says {entry.size}")
            elif entry.file_id:
                live[entry.file_id] = (path, entry)
            if entry.flags & ENTRY_ARRAY:
                problem = array_entry_problem(entry)
                if problem:
                    problems.append(f"{path}: {problem}")
        else:
            problems.append(f"{path}: unknown entry kind {entry.kind}")
        try:
            decode_metadata(entry.meta)
        except CartridgeError as exc:
            problems.append(f"{path}: {exc}")
        parent = paths.parent(path)
        if parent != "/" and (parent not in entries or entries[parent].kind != KIND_DIR):
            problems.append(f"{path}: parent directory {parent} is missing")
    if counts and meta is not None and (files != int(meta["file_count"])
                                        or dirs != int(meta["dir_count"])):
        problems.append(f"meta page counts {int(meta['file_count'])} files and "
                        f"{int(meta['dir_count'])} dirs; the catalog holds {files} and {dirs}")

    # chunks
    chunk_size = pager.header.chunk_size
    for fid, idx, rec in chunks:
        page, npages, length, stored, codec = rec.page, rec.npages, rec.length, rec.stored, \
            rec.codec
        owner_entry = live.get(fid)
        where = f"chunk {idx} of file id {fid}"
        if owner_entry is None:
            problems.append(f"{where}: no file owns it (orphan chunk record)")
            continue
        path, entry = owner_entry
        where = f"{path} chunk {idx}"
        if entry.flags & ENTRY_ARRAY:
            problem = array_chunk_problem(entry, idx, length, chunk_size)
            if problem:
                problems.append(f"{where}: {problem}")
        elif idx * chunk_size >= max(entry.size, 1) or length > chunk_size:
            problems.append(f"{where}: lies outside the file's {entry.size} bytes")
        if page == 0:
            continue
        if npages != -(-stored // PAGE_SIZE):
            problems.append(f"{where}: {npages} pages for {stored} stored bytes")
        if codec > CODEC_ZSTD or (codec == CODEC_NONE and not rec.encrypted
                                  and stored != length):
            problems.append(f"{where}: codec {codec} with {stored} stored bytes for {length}")
        if rec.encrypted != pager.encrypted:
            problems.append(f"{where}: encryption flag does not match the container")
        if not claim(page, npages, where):
            continue
        if data:
            got = checksum(pager.data_array(page, stored))
            counters["data"] += stored
            if got != rec.checksum:
                problems.append(f"{where} (data pages {page}..{page + npages - 1}) fails its "
                                "checksum")
            elif not plain_chunk(rec):
                try:  # authenticate (encrypted) and decode (compressed) it as a read would
                    decode_chunk(pager, fid, idx, rec, pager.data(page, npages)[:stored])
                except CartridgeError as exc:
                    problems.append(f"{where}: {exc}")
    return problems


def _check_free_map(pager: Pager, meta: np.ndarray, total: int, owner: np.ndarray,
                    claim: Claim, problems: list[str], counters: dict[str, int]) -> np.ndarray:
    """Steps 4 and 5: structures of the free map itself, pending runs, leaks.

    Returns the pages inside pending-free runs (what snapshots may hold).
    """
    held = np.zeros(total, bool)
    try:
        alloc = Allocator(pager, meta, None)
    except CartridgeError as exc:
        problems.append(f"free map: {exc}")
        alloc = None
    if alloc is not None:
        for page, _gen in alloc.fm_ptrs:
            claim(page, 1, f"free-map page {page}")
            counters["pages"] += 1
        if int(meta["fm_levels"]) == 2:
            claim(alloc.dir_run[0], alloc.dir_run[1], "free-map directory")
        if alloc.pending_run[1]:
            claim(alloc.pending_run[0], alloc.pending_run[1], "pending-free list")
        for gen, start, count, _birth in alloc.pending:
            if claim(start, count, f"pending free run (generation {gen})"):
                held[start : start + count] = True
        bits = np.unpackbits(alloc.words.view(np.uint8), bitorder="little")[:total]
        reached = owner.astype(bool)
        lost = np.flatnonzero(reached & (bits == 0))
        leaked = np.flatnonzero(~reached & (bits == 1))
        if lost.size:
            problems.append(f"free map marks {lost.size} reachable page(s) free, first "
                            f"{lost[:8].tolist()}")
        if leaked.size:
            problems.append(f"free map marks {leaked.size} unreachable page(s) used "
                            f"(leaked), first {leaked[:8].tolist()}")
        if alloc.words.size != int(meta["fm_segments"]) * FM_WORDS:
            problems.append("free map size does not match the meta page")
    return held


def _check_snapshot(name: str, rec: tuple[int, ...], pager: Pager, store: NodeStore,
                    total: int, live: np.ndarray, pending: np.ndarray | None,
                    problems: list[str], counters: dict[str, int], data: bool) -> None:
    """Step 6: one snapshot's tree, and that its pages are still kept."""
    page, gen, _depth, _r, sgen, _created, _files, _dirs, _nfid = rec
    seen = np.zeros(total, bool)
    mine: list[str] = []

    def claim(start: int, count: int, what: str) -> bool:
        what = f"snapshot {name!r}: {what}"
        if start < 3 or start + count > total:
            mine.append(f"{what}: pages {start}..{start + count - 1} out of range")
            return False
        run = slice(start, start + count)
        if seen[run].any():
            mine.append(f"{what}: page(s) {start}..{start + count - 1} used twice")
            return False
        seen[run] = True
        if pending is not None and not (live[run] | pending[run]).all():
            mine.append(f"{what}: page(s) {start}..{start + count - 1} are neither live nor "
                        "held in the pending-free list (the snapshot lost them)")
            return False
        return True

    entries: dict[str, Entry] = {}
    chunks: list[ChunkCell] = []
    if page:
        _walk_tree(pager, store, (page, gen), sgen, claim, mine, entries, chunks, counters,
                   [])
    mine.extend(_check_entries(entries, chunks, pager, claim, counters, data, None, False))
    problems.extend(m if m.startswith("snapshot") else f"snapshot {name!r}: {m}" for m in mine)


def _walk_tree(pager: Pager, store: NodeStore, root: tuple[int, int], generation: int,
               claim: Claim, problems: list[str], entries: dict[str, Entry],
               chunks: list[ChunkCell], counters: dict[str, int],
               snapshots: list[SnapshotCell]) -> None:
    leaf_depths: set[int] = set()
    todo: list[tuple[tuple[int, int], int, bytes, bytes | None]] = [(root, 0, b"", None)]
    while todo:
        ref, depth, lo, hi = todo.pop()
        page, gen = ref
        if gen > generation:
            problems.append(f"B+tree page {page} claims generation {gen}, newer than the "
                            f"commit ({generation})")
        if not claim(page, 1, f"B+tree page {page}"):
            continue
        try:
            node = store.load(ref)
        except CartridgeError as exc:
            problems.append(str(exc))
            continue
        counters["pages"] += 1
        keys = node.keys
        if any(a >= b for a, b in zip(keys, keys[1:])):
            problems.append(f"B+tree page {page}: keys out of order")
        if keys and (keys[0] < lo or (hi is not None and keys[-1] >= hi)):
            problems.append(f"B+tree page {page}: keys outside the range its parent allows")
        if node.leaf:
            leaf_depths.add(depth)
            for key, val in zip(keys, node.vals):
                _check_cell(page, key, val, problems, entries, chunks, snapshots)
            continue
        if len(node.vals) != len(keys) + 1 or not node.vals:
            problems.append(f"B+tree page {page}: {len(node.vals)} children for "
                            f"{len(keys)} separators")
            continue
        for i, child in enumerate(node.vals):
            clo = keys[i - 1] if i > 0 else lo
            chi = keys[i] if i < len(keys) else hi
            todo.append((child, depth + 1, clo, chi))
    if len(leaf_depths) > 1:
        problems.append(f"B+tree leaves at different depths {sorted(leaf_depths)}")


def _check_cell(page: int, key: bytes, val: bytes, problems: list[str],
                entries: dict[str, Entry], chunks: list[ChunkCell],
                snapshots: list[SnapshotCell]) -> None:
    if len(key) + len(val) > MAX_CELL:
        problems.append(f"B+tree page {page}: cell {key[1:60]!r} is {len(key) + len(val)} "
                        f"bytes, over the {MAX_CELL}-byte limit")
    if key[:1] == KEY_PATH:
        try:
            path = key[1:].decode("utf-8")
            if paths.normalize(path) != path:
                raise ValueError("not normalized")
            entries[path] = Entry.decode(val)
        except (CartridgeError, ValueError) as exc:
            problems.append(f"B+tree page {page}: bad entry {key[1:60]!r}: {exc}")
    elif key[:1] == KEY_CHUNK and len(key) == 17 and len(val) == CHUNK_STRUCT.size:
        fid = int.from_bytes(key[1:9], "big")
        idx = int.from_bytes(key[9:17], "big")
        chunks.append((fid, idx, ChunkRecord.unpack(val)))
    elif key[:1] == KEY_SNAPSHOT and len(val) == SNAPSHOT_STRUCT.size and len(key) > 1:
        snapshots.append((key[1:].decode("utf-8", "replace"), SNAPSHOT_STRUCT.unpack(val)))
    else:
        problems.append(f"B+tree page {page}: unknown key {key[:20]!r}")


__all__ = ["VerifyReport", "verify"]
