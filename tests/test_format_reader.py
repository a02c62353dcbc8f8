"""An independent reader of the ``.cart`` format, written from FORMAT.md alone.

The reader below uses only the document (no code from ``cartridge``); the tests
build containers through the library's public API and check that the reader
sees exactly what the library reports, and that the section 9 invariant holds.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
from dataclasses import dataclass

import lz4.block
import numpy as np
import pytest
import xxhash
import zstandard

import cartridge

PAGE = 4096
SEG_PAGES = 32256
T_META, T_BRANCH, T_LEAF, T_FM, T_FMDIR, T_PENDING = 1, 2, 3, 4, 5, 6
HEADER = struct.Struct("<8sQIIIIqQ16sBb14s")
PAGE_HDR = struct.Struct("<QQQHHI")
META = struct.Struct("<QQIIQQQQqIIIIQIIQ")
ENTRY = struct.Struct("<BBHIQqqQ")
CHUNK = struct.Struct("<QIIIHHQQ")
SNAPSHOT = struct.Struct("<QQIIQqQQQ")  # section 13
META_FIELDS = (
    "root_page root_gen tree_depth commit_flags total_pages next_file_id file_count "
    "dir_count committed_ns fm_segments fm_levels fm_nptrs sync_count pending_page "
    "pending_npages reserved pending_count"
).split()


class FormatViolation(Exception):
    """The file does not follow FORMAT.md."""


def check(cond: object, msg: str) -> None:
    if not cond:
        raise FormatViolation(msg)


def xxh64(data: bytes | memoryview) -> int:
    return xxhash.xxh64_intdigest(data, 0)


@dataclass
class Entry:
    path: str
    kind: int
    flags: int
    mode: int
    size: int
    mtime_ns: int
    ctime_ns: int
    file_id: int
    metadata: dict
    inline: bytes | None
    array: dict | None = None  # decoded array descriptor (section 12)


ATTRS_INDEX = (1 << 64) - 1  # section 12.4


def decode_dtype(b: bytes, pos: int = 0) -> tuple[np.dtype, int]:
    """A dtype record of section 12.2, from ``pos``; returns (dtype, end)."""
    tag = b[pos]
    if tag == 1:
        n = b[pos + 1]
        return np.dtype(b[pos + 2 : pos + 2 + n].decode("ascii")), pos + 2 + n
    if tag == 2:
        nd = b[pos + 1]
        dims = struct.unpack_from(f"<{nd}I", b, pos + 2)
        inner, end = decode_dtype(b, pos + 2 + 4 * nd)
        return np.dtype((inner, dims)), end
    check(tag == 3, f"dtype tag {tag}")
    itemsize, aligned, nfields = struct.unpack_from("<IBH", b, pos + 1)
    pos += 8
    spec: dict = {"names": [], "formats": [], "offsets": [], "titles": [], "itemsize": itemsize}
    for _ in range(nfields):
        (nl,) = struct.unpack_from("<H", b, pos)
        spec["names"].append(b[pos + 2 : pos + 2 + nl].decode("utf-8"))
        pos += 2 + nl
        (tl,) = struct.unpack_from("<H", b, pos)
        title = None if tl == 0xFFFF else b[pos + 2 : pos + 2 + tl].decode("utf-8")
        spec["titles"].append(title)
        pos += 2 + (0 if title is None else tl)
        spec["offsets"].append(struct.unpack_from("<I", b, pos)[0])
        field, pos = decode_dtype(b, pos + 4)
        spec["formats"].append(field)
    if all(t is None for t in spec["titles"]):
        del spec["titles"]
    return np.dtype(spec, align=bool(aligned)), pos


def decode_descriptor(b: bytes) -> dict:
    """The array descriptor of section 12.1."""
    ver, layout, order, flags, ndim = b[0], b[1], b[2], b[3], b[4]
    check(ver == 1 and layout in (0, 1) and ndim <= 32 and flags & ~3 == 0, "descriptor")
    check(b[5:8] == bytes(3) and (layout == 0 or order == 0), "descriptor reserved bytes")
    dlen, flen, alen = struct.unpack_from("<HHI", b, 8)
    pos = 16
    shape = struct.unpack_from(f"<{ndim}Q", b, pos)
    pos += 8 * ndim
    out = {"layout": layout, "order": order, "flags": flags, "ndim": ndim, "shape": shape}
    if layout == 1:
        maxshape = struct.unpack_from(f"<{ndim}Q", b, pos)
        out["maxshape"] = tuple(None if m == (1 << 64) - 1 else m for m in maxshape)
        out["chunks"] = struct.unpack_from(f"<{ndim}Q", b, pos + 8 * ndim)
        pos += 16 * ndim
        check(all(out["chunks"]), "zero chunk length")
    check(pos + dlen + flen + alen == len(b), "descriptor lengths")
    dtype, end = decode_dtype(b, pos)
    check(end == pos + dlen, "dtype record length")
    out["dtype"] = dtype
    check(flen in (0, dtype.itemsize), "fill value length")
    out["fill"] = b[end : end + flen]
    out["attrs"] = b[end + flen :]
    out["nbytes"] = math.prod(shape) * dtype.itemsize
    if layout == 1:
        out["block_nbytes"] = math.prod(out["chunks"]) * dtype.itemsize
    return out


def decode_metadata(b: bytes) -> dict:
    check(len(b) <= 768, "metadata longer than 768 bytes")
    if not b:  # what the library writes for "no metadata" (not stated in section 7)
        return {}
    (count,), pos, out = struct.unpack_from("<H", b, 0), 2, {}
    for _ in range(count):
        klen = b[pos]
        key = b[pos + 1 : pos + 1 + klen].decode("utf-8")
        tag, pos = b[pos + 1 + klen], pos + 2 + klen
        if tag <= 2:
            val = (None, False, True)[tag]
        elif tag in (3, 4):
            (val,), pos = struct.unpack_from("<q" if tag == 3 else "<d", b, pos), pos + 8
        elif tag in (5, 6):
            (n,) = struct.unpack_from("<H", b, pos)
            val, pos = b[pos + 2 : pos + 2 + n], pos + 2 + n
            check(len(val) == n, "truncated metadata item")
            val = val.decode("utf-8") if tag == 5 else bytes(val)
        else:
            raise FormatViolation(f"unknown metadata tag {tag}")
        check(key not in out, f"duplicate metadata key {key!r}")
        out[key] = val
    check(pos == len(b), f"metadata: {len(b) - pos} trailing bytes")
    return out


def check_path(path: str) -> None:
    raw = path.encode("utf-8")
    check(path.startswith("/") and path != "/" and len(raw) <= 1024, f"bad path {path!r}")
    check("\0" not in path, f"NUL in {path!r}")
    for comp in path[1:].split("/"):
        check(comp not in ("", ".", "..") and len(comp.encode()) <= 255, f"bad path {path!r}")


class CartReader:
    def __init__(self, path: str | os.PathLike, slot: int | None = None,
                 snapshot: str | None = None) -> None:
        with open(path, "rb") as f:
            self.buf = f.read()
        self.mv = memoryview(self.buf)
        self.file_pages = len(self.buf) // PAGE
        self._read_header()
        self.metas = {s: self._meta_or_error(s) for s in (1, 2)}
        valid = [m for m in self.metas.values() if isinstance(m, dict)]
        check(valid, f"no valid meta page: {self.metas}")
        if slot is None:
            self.meta = max(valid, key=lambda m: m["generation"])
        else:
            check(isinstance(self.metas[slot], dict), f"meta {slot}: {self.metas[slot]}")
            self.meta = self.metas[slot]
        self.generation = self.meta["generation"]
        self.owners: list[tuple[int, int, str]] = []  # (first page, npages, owner)
        self.nodes_by_depth: dict[int, int] = {}
        self.cells = self._walk(self.meta["root_page"], self.meta["root_gen"], 0, None, None)
        self._decode_cells()
        self.live_owners = list(self.owners)
        if snapshot is not None:  # section 13: read the tree the snapshot record names
            check(snapshot in self.snapshots, f"no snapshot {snapshot!r}")
            page, gen, depth, _r, sgen, _t, files, dirs, nfid = self.snapshots[snapshot]
            self.meta = dict(self.meta, tree_depth=depth, file_count=files, dir_count=dirs,
                             next_file_id=nfid)
            self.generation = sgen
            self.owners = []
            self.cells = self._walk(page, gen, 0, None, None)
            self._decode_cells()

    # -- pages ---------------------------------------------------------------
    def page(self, n: int) -> memoryview:
        check(0 <= n < self.file_pages, f"page {n} beyond end of file")
        return self.mv[n * PAGE : (n + 1) * PAGE]

    def headed(self, n: int, typ: int, generation: int | None = None) -> tuple:
        p = self.page(n)
        cks, page_no, gen, t, flags, count = PAGE_HDR.unpack_from(p, 0)
        check(xxh64(p[8:]) == cks, f"page {n}: checksum mismatch")
        check(page_no == n, f"page {n}: page_no {page_no}")
        check(t == typ, f"page {n}: type {t}, expected {typ}")
        check(flags == 0, f"page {n}: flags {flags}")
        check(not any(p[4064:]), f"page {n}: trailer not zero in a plain container")
        check(generation is None or gen == generation, f"page {n}: gen {gen} != {generation}")
        return p, gen, count

    def _read_header(self) -> None:
        check(len(self.buf) >= PAGE, "file shorter than one page")
        (magic, cks, ver, psize, csize, flags, created, max_size, uuid, codec, level,
         reserved) = HEADER.unpack_from(self.buf, 0)
        check(magic == b"CARTRIDG", "not a container")
        check(xxh64(self.mv[16:512]) == cks, "header checksum mismatch")
        check(ver == 2 and psize == PAGE, f"version {ver} / page size {psize}")
        check(csize % PAGE == 0 and 0 < csize <= 16 << 20, f"chunk_size {csize}")
        check(flags & ~1 == 0, f"header flags {flags}")
        check(not flags & 1, "encrypted container: this reader reads plain containers only")
        check(codec <= 3 and not any(reserved), f"header codec {codec} / reserved bytes")
        check(not any(self.mv[80:PAGE]), "header reserved bytes not zero")
        self.default_codec, self.default_level = codec, level
        self.chunk_size, self.created_ns, self.max_size, self.uuid = csize, created, max_size, uuid

    def _meta_or_error(self, slot: int) -> dict | str:
        try:
            return self._meta(slot)
        except FormatViolation as e:
            return str(e)

    def _meta(self, slot: int) -> dict:
        p, gen, count = self.headed(slot, T_META)
        check(count == 0, f"meta {slot}: count {count}")
        check(1 + gen % 2 == slot, f"meta {slot}: generation {gen} in wrong slot")
        m = dict(zip(META_FIELDS, META.unpack_from(p, 32)), generation=gen, slot=slot)
        check(m["total_pages"] * PAGE <= len(self.buf), f"meta {slot}: total_pages > file")
        refs = np.frombuffer(p, "<u8", 256, 136).reshape(128, 2)
        m["fm_ptrs"] = [tuple(int(x) for x in r) for r in refs[: m["fm_nptrs"]]]
        m["sync_pages"] = [int(x) for x in np.frombuffer(p, "<u8", 189, 2184)[: m["sync_count"]]]
        check(m["fm_nptrs"] <= 128 and m["sync_count"] <= 189, f"meta {slot}: counts")
        check(not any(refs[m["fm_nptrs"] :].ravel()), f"meta {slot}: unused fm_ptrs not zero")
        inline = np.frombuffer(p, "<u8", 44, 3696).reshape(11, 4)
        check(not any(p[4048:4056]), f"meta {slot}: reserved1 not zero")
        m["pending_inline"] = [tuple(int(x) for x in r) for r in inline]
        m["sync_digest"] = int(np.frombuffer(p, "<u8", 1, 4056)[0])
        check(not any(p[4064:]) and m["reserved"] == 0, f"meta {slot}: reserved not zero")
        if m["commit_flags"] & 1:  # rule 4: single-sync commit must be complete
            for sp in m["sync_pages"]:
                check(3 <= sp < len(self.buf) // PAGE, f"meta {slot}: sync page {sp} out of range")
                _, _, sgen, styp, _, _ = PAGE_HDR.unpack_from(self.page(sp), 0)
                check(sgen == gen, f"meta {slot}: sync page {sp} has generation {sgen}")
                self.headed(sp, styp, gen)  # checksum and page_no; no expected type known
            stored = b"".join(bytes(self.page(sp)[:8]) for sp in m["sync_pages"])
            check(xxh64(stored) == m["sync_digest"], f"meta {slot}: sync_digest mismatch")
        return m

    # -- catalog B+tree --------------------------------------------------------
    def _walk(self, pno: int, gen: int, depth: int, lo: bytes | None, hi: bytes | None) -> list:
        if pno == 0:
            check(depth == 0 and self.meta["tree_depth"] == 0, "empty tree with depth > 0")
            return []
        leaf = depth == self.meta["tree_depth"]
        p, _, n = self.headed(pno, T_LEAF if leaf else T_BRANCH, gen)
        self.owners.append((pno, 1, "btree"))
        self.nodes_by_depth[depth] = self.nodes_by_depth.get(depth, 0) + 1
        if leaf:
            off = np.frombuffer(p, "<u2", 2 * n + 1, 32).astype(int)
            check(off[0] == 32 + 2 * (2 * n + 1), f"leaf {pno}: offsets[0] = {off[0]}")
            check((np.diff(off) >= 0).all() and off[-1] <= 4064, f"leaf {pno}: offsets")
            check(not any(p[off[-1] :]), f"leaf {pno}: unused bytes not zero")
            cells = []
            for i in range(n):
                k, v = (
                    bytes(p[off[2 * i] : off[2 * i + 1]]),
                    bytes(p[off[2 * i + 1] : off[2 * i + 2]]),
                )
                check(len(k) + len(v) <= 2000, f"leaf {pno}: cell {i} > 2000 bytes")
                cells.append((k, v))
        else:
            check(n >= 1, f"branch {pno}: no children")
            refs = np.frombuffer(p, "<u8", 2 * n, 32).reshape(n, 2)
            off = np.frombuffer(p, "<u2", n, 32 + 16 * n).astype(int)
            check(off[0] == 32 + 18 * n, f"branch {pno}: offsets[0] = {off[0]}")
            check((np.diff(off) >= 0).all() and off[-1] <= 4064, f"branch {pno}: offsets")
            check(not any(p[off[-1] :]), f"branch {pno}: unused bytes not zero")
            seps = [bytes(p[off[i] : off[i + 1]]) for i in range(n - 1)]
            check(all(a < b for a, b in zip(seps, seps[1:])), f"branch {pno}: separators")
            bounds = [lo, *seps, hi]
            cells = []
            for i in range(n):
                cells += self._walk(int(refs[i, 0]), int(refs[i, 1]), depth + 1, *bounds[i : i + 2])
        keys = [k for k, _ in cells]
        check(all(a < b for a, b in zip(keys, keys[1:])), f"node {pno}: keys not increasing")
        check(not keys or lo is None or keys[0] >= lo, f"node {pno}: key below separator")
        check(not keys or hi is None or keys[-1] < hi, f"node {pno}: key above separator")
        return cells

    def _decode_cells(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.chunks: dict[int, dict[int, tuple]] = {}
        self.snapshots: dict[str, tuple] = {}
        for k, v in self.cells:
            if k[:1] == b"\x10":
                path = k[1:].decode("utf-8")
                check_path(path)
                check(len(v) >= 40, f"{path}: entry shorter than 40 bytes")
                kind, flags, mlen, mode, size, mt, ct, fid = ENTRY.unpack_from(v, 0)
                meta = decode_metadata(v[40 : 40 + mlen])
                inline = None
                array = None
                check(kind in (1, 2) and flags & ~15 == 0, f"{path}: kind {kind} flags {flags}")
                if flags & 2:  # section 12: an array, its descriptor after the metadata
                    check(kind == 1 and not flags & 1 and fid, f"{path}: bad array entry")
                    array = decode_descriptor(bytes(v[40 + mlen :]))
                    check(array["layout"] == 1 or size == array["nbytes"], f"{path}: size")
                    check(0 < fid < self.meta["next_file_id"], f"{path}: file_id")
                elif flags & 1:
                    check(kind == 1 and fid == 0 and size <= 1536, f"{path}: bad inline entry")
                    inline = v[40 + mlen :]
                    check(len(inline) == size, f"{path}: inline {len(inline)} != size {size}")
                else:
                    check(len(v) == 40 + mlen, f"{path}: {len(v) - 40 - mlen} stray value bytes")
                    check((fid != 0) == (kind == 1), f"{path}: kind {kind} with file_id {fid}")
                    check(kind == 1 or size == 0, f"{path}: directory with size {size}")
                    check(kind == 2 or 0 < fid < self.meta["next_file_id"], f"{path}: file_id")
                self.entries[path] = Entry(path, kind, flags, mode, size, mt, ct, fid, meta, inline,
                                           array)
            elif k[:1] == b"\x20":
                check(len(k) == 17 and len(v) == CHUNK.size, f"chunk key/value size {k!r}")
                fid, idx = struct.unpack(">QQ", k[1:])
                self.chunks.setdefault(fid, {})[idx] = CHUNK.unpack(v)
            elif k[:1] == b"\x30":
                check(len(k) > 1 and len(v) == SNAPSHOT.size, f"snapshot key/value size {k!r}")
                rec = SNAPSHOT.unpack(v)
                check(rec[3] == 0 and rec[4] < self.generation, f"snapshot {k!r}: fields")
                self.snapshots[k[1:].decode("utf-8")] = rec
            else:
                raise FormatViolation(f"unknown key space {k[:1]!r}")
        for path in self.entries:
            parent = path.rsplit("/", 1)[0]
            pe = self.entries.get(parent)
            check(parent == "" or (pe is not None and pe.kind == 2), f"{path}: no parent dir")
        files = {e.file_id: e for e in self.entries.values() if e.file_id}
        check(len(files) == sum(bool(e.file_id) for e in self.entries.values()), "shared file_id")
        check(set(self.chunks) <= set(files), "chunk records of no file")
        nfiles = sum(e.kind == 1 for e in self.entries.values())
        check(nfiles == self.meta["file_count"], f"file_count {self.meta['file_count']}/{nfiles}")
        ndirs = len(self.entries) - nfiles
        check(ndirs == self.meta["dir_count"], f"dir_count {self.meta['dir_count']}/{ndirs}")
        for fid, recs in self.chunks.items():
            arr = files[fid].array
            nchunks = math.ceil(files[fid].size / self.chunk_size)
            data_idx = [i for i in recs if i != ATTRS_INDEX]
            if arr is not None and ATTRS_INDEX in recs:
                check(arr["flags"] & 2, f"{files[fid].path}: unused attrs blob")
            if arr is not None and arr["layout"] == 1:
                n, ch = arr["ndim"], arr["chunks"]
                for i in data_idx:  # every block has an element inside the shape
                    coords = [(i >> ((64 // n) * (n - 1 - a))) & ((1 << 64 // n) - 1)
                              for a in range(n)]
                    check(all(g * c < s for g, c, s in zip(coords, ch, arr["shape"])),
                          f"{files[fid].path}: block {coords} outside the shape")
                    check(recs[i][2] == arr["block_nbytes"], f"{files[fid].path}: block size")
            else:
                check(not data_idx or max(data_idx) < nchunks,
                      f"{files[fid].path}: chunk record past end of file")
            raw = not (files[fid].flags >> 2) & 3  # 12.3: no compression policy
            if arr is not None and arr["layout"] == 0 and not arr["flags"] & 1 and data_idx \
                    and raw:
                first = recs[0][0]
                for i in data_idx:  # 12.3: one run of pages
                    check(recs[i][0] == first + i * self.chunk_size // PAGE,
                          f"{files[fid].path}: contiguous array is not one run")
            for idx, (page, npages, length, stored, codec, cflags, cks, gen) in recs.items():
                big_ok = arr is not None and (arr["layout"] == 1 or idx == ATTRS_INDEX)
                check((big_ok or length <= self.chunk_size) and gen <= self.generation,
                      f"chunk {fid}/{idx}")
                check(codec <= 2 and cflags == 0, f"chunk {fid}/{idx}: codec {codec}/{cflags}")
                check(codec != 0 or stored == length, f"chunk {fid}/{idx}: raw stored length")
                if page:
                    check(npages == math.ceil(stored / PAGE), f"chunk {fid}/{idx}: npages")
                    data = self.mv[page * PAGE : page * PAGE + stored]
                    check(len(data) == stored, f"chunk {fid}/{idx}: past end of file")
                    check(xxh64(data) == cks, f"chunk {fid}/{idx}: checksum mismatch")
                    check(len(self.chunk_bytes(recs[idx])) == length, f"chunk {fid}/{idx}")
                    self.owners.append((page, npages, f"data {files[fid].path}#{idx}"))

    def chunk_bytes(self, rec: tuple) -> bytes:
        """Section 8: the logical bytes of a chunk, decoded by its codec."""
        page, _, length, stored, codec, _, _, _ = rec
        data = bytes(self.mv[page * PAGE : page * PAGE + stored])
        if codec == 1:
            return lz4.block.decompress(data, uncompressed_size=length)
        if codec == 2:
            return zstandard.ZstdDecompressor().decompress(data, max_output_size=length)
        return data

    # -- content -------------------------------------------------------------
    def read(self, path: str, offset: int = 0, size: int | None = None) -> bytes:
        e = self.entries[path]
        check(e.kind == 1, f"{path} is a directory")
        end = e.size if size is None else min(e.size, offset + size)
        if e.inline is not None:
            return e.inline[offset:end]
        if e.array is not None and e.array["layout"] == 1:
            return self.read_array(path).tobytes()[offset:end]
        return self._chunk_bytes(e, offset, end)

    def read_array(self, path: str) -> np.ndarray:
        """An ARRAY entry's data as an ndarray (section 12.3)."""
        e = self.entries[path]
        a = e.array
        check(a is not None, f"{path} is not an array")
        dtype, shape = a["dtype"], a["shape"]
        fill = np.frombuffer(a["fill"], dtype, 1)[0] if a["fill"] else np.zeros((), dtype)
        if a["layout"] == 0:
            raw = self._chunk_bytes(e, 0, e.size)
            flat = np.frombuffer(raw, dtype, count=math.prod(shape))
            return flat.reshape(shape, order="F" if a["order"] else "C")
        out = np.empty(shape, dtype)
        out[...] = fill
        n, ch = a["ndim"], a["chunks"]
        bits = 64 // n
        for idx, rec in self.chunks.get(e.file_id, {}).items():
            if idx == ATTRS_INDEX or not rec[0]:
                continue
            coords = [(idx >> (bits * (n - 1 - i))) & ((1 << bits) - 1) for i in range(n)]
            block = np.frombuffer(self.chunk_bytes(rec), dtype)
            block = block.reshape(ch)
            dst = tuple(slice(g * c, min(s, (g + 1) * c)) for g, c, s in zip(coords, ch, shape))
            out[dst] = block[tuple(slice(0, d.stop - d.start) for d in dst)]
        return out

    def attrs(self, path: str) -> dict:
        """An array's attrs (inline, or the attrs blob of section 12.4)."""
        e = self.entries[path]
        if e.array["flags"] & 2:
            return json.loads(self.chunk_bytes(self.chunks[e.file_id][ATTRS_INDEX]))
        return json.loads(e.array["attrs"]) if e.array["attrs"] else {}

    def _chunk_bytes(self, e: Entry, offset: int, end: int) -> bytes:
        out = bytearray(max(0, end - offset))
        cs = self.chunk_size
        for idx, rec in self.chunks.get(e.file_id, {}).items():
            page, length = rec[0], rec[2]
            lo, hi = max(offset, idx * cs), min(end, idx * cs + length)
            if page and lo < hi:  # bytes past `length` (and holes) stay zero
                src = lo - idx * cs
                out[lo - offset : hi - offset] = self.chunk_bytes(rec)[src : src + hi - lo]
        return bytes(out)

    # -- free space (section 9) ------------------------------------------------
    def free_map(self) -> np.ndarray:
        """Return one bool per page of all segments (True = used)."""
        m = self.meta
        nseg = m["fm_segments"]
        check(nseg == max(1, math.ceil(m["total_pages"] / SEG_PAGES)), "fm_segments")
        if m["fm_levels"] == 1:
            check(m["fm_nptrs"] == nseg <= 128, "fm_nptrs != fm_segments")
            seg_refs = m["fm_ptrs"]
        else:
            check(m["fm_levels"] == 2, f"fm_levels {m['fm_levels']}")
            first = m["fm_ptrs"][0][0]
            seg_refs = []
            for i, (dpage, dgen) in enumerate(m["fm_ptrs"]):
                check(dpage == first + i, "free-map directory pages not contiguous")
                p, _, cnt = self.headed(dpage, T_FMDIR, dgen)
                check(cnt <= 252 and not any(p[32 + 16 * cnt :]), f"fm directory {dpage}")
                refs = np.frombuffer(p, "<u8", 2 * cnt, 32).reshape(cnt, 2)
                seg_refs += [(int(a), int(b)) for a, b in refs]
                self.owners.append((dpage, 1, "fm directory"))
            check(len(seg_refs) == nseg, "directory entries != fm_segments")
        bits = []
        for spage, sgen in seg_refs:
            p, _, cnt = self.headed(spage, T_FM, sgen)
            check(cnt == 504, f"fm segment {spage}: count {cnt}")
            bits.append(np.unpackbits(np.frombuffer(p, np.uint8, 4032, 32), bitorder="little"))
            self.owners.append((spage, 1, "fm segment"))
        return np.concatenate(bits).astype(bool)

    def pending(self) -> list[tuple[int, int, int]]:
        m, recs = self.meta, []
        if m["pending_npages"] == 0:  # section 9: kept inline in the meta page
            n = m["pending_count"]
            check(m["pending_page"] == 0 and n <= 11, "inline pending list")
            check(not any(map(any, m["pending_inline"][n:])), "unused pending_inline not zero")
            recs = m["pending_inline"][:n]
            for gen, start, count, birth in recs:
                check(birth < gen <= self.generation and count > 0,
                      f"pending record {gen, start, count, birth}")
                self.owners.append((start, count, f"pending run g{gen}"))
            return recs
        for i in range(m["pending_npages"]):
            pno = m["pending_page"] + i
            p, _, cnt = self.headed(pno, T_PENDING)
            check(cnt <= 126 and not any(p[32 + 32 * cnt :]), f"pending page {pno}")
            arr = np.frombuffer(p, "<u8", 4 * cnt, 32).reshape(cnt, 4)
            recs += [tuple(int(x) for x in r) for r in arr]
            self.owners.append((pno, 1, "pending list"))
        check(len(recs) == m["pending_count"], "pending_count mismatch")
        for gen, start, count, birth in recs:
            check(birth < gen <= self.generation and count > 0,
                  f"pending record {gen, start, count, birth}")
            self.owners.append((start, count, f"pending run g{gen}"))
        return recs

    def check_invariant(self) -> dict:
        """Section 9: every page used by exactly one thing; the bitmap agrees."""
        bitmap, pend = self.free_map(), self.pending()
        total = self.meta["total_pages"]
        owners = [(0, 3, "pages 0-2"), *self.owners]
        delta = np.zeros(total + 1, np.int64)
        for first, n, owner in owners:
            check(first + n <= total, f"{owner}: pages {first}+{n} beyond total_pages")
            delta[first] += 1
            delta[first + n] -= 1
        counts = np.cumsum(delta[:total])
        if (counts > 1).any():
            q = int(np.flatnonzero(counts > 1)[0])
            users = [o for f, n, o in owners if f <= q < f + n]
            raise FormatViolation(f"page {q} used by {users}")
        check(not bitmap[total:].any(), "bits set at or beyond total_pages")
        diff = np.flatnonzero(bitmap[:total] != (counts == 1))
        check(
            diff.size == 0,
            f"bitmap disagrees at pages {diff[:20].tolist()} "
            f"(bit={bitmap[diff[:20]].astype(int).tolist()}, owners={counts[diff[:20]].tolist()})",
        )
        return {"used": int(counts.sum()), "total": total, "pending": pend}


# ---------------------------------------------------------------------------
# helpers for the tests
# ---------------------------------------------------------------------------
BIG = 64 << 20  # files larger than this are compared by windows, not whole


def lib_view(cart, times: dict | None = None) -> dict:
    out = {}
    for p in cart.list("/", recursive=True):
        st = cart.stat(p)
        content = cart.read(p) if st.kind == "file" and st.size <= BIG else None
        out[p] = (st.kind, st.size, st.mode, st.metadata, content)
        if times is not None:
            times[p] = (st.mtime, st.ctime)
    return out


def my_view(r: CartReader) -> dict:
    out = {}
    for p, e in r.entries.items():
        content = r.read(p) if e.kind == 1 and e.size <= BIG else None
        out[p] = ("file" if e.kind == 1 else "dir", e.size, e.mode, e.metadata, content)
    return out


def assert_same(mine: dict, theirs: dict) -> None:
    assert sorted(mine) == sorted(theirs)
    for p in mine:
        assert mine[p][:4] == theirs[p][:4], p
        assert mine[p][4] == theirs[p][4], f"content of {p} differs"


def assert_matches_library(path, cart) -> CartReader:
    """The reader's view of ``path`` equals the library's view through ``cart``."""
    r = CartReader(path)
    assert r.generation == cart.generation
    times: dict = {}
    assert_same(my_view(r), lib_view(cart, times))
    for p, e in r.entries.items():
        mtime, ctime = times[p]
        assert abs(mtime - e.mtime_ns / 1e9) < 1e-6 and abs(ctime - e.ctime_ns / 1e9) < 1e-6, p
        if e.kind == 1 and e.size > BIG:  # compare every stored chunk and both ends
            windows = [(0, 1 << 20), (e.size - (1 << 20), 1 << 20)]
            windows += [(i * r.chunk_size, r.chunk_size) for i in r.chunks.get(e.file_id, {})]
            for off, n in windows:
                n = min(n, e.size - off)
                assert r.read(p, off, n) == cart.read(p, off, n), (p, off)
    r.check_invariant()
    return r


def commit_and_check(path, cart, history: dict) -> CartReader:
    """Commit, compare with the library, and check that the previous generation
    (the other meta slot) is still fully intact and equal to what it was."""
    cart.commit()
    r = assert_matches_library(path, cart)
    history[cart.generation] = my_view(r)
    if r.meta["commit_flags"] & 1:  # the meta lists exactly the headed pages it wrote
        headed = [first for first, _, who in r.owners if who in HEADED_OWNERS]
        fresh = {q for q in headed if PAGE_HDR.unpack_from(r.page(q), 0)[2] == r.generation}
        assert sorted(r.meta["sync_pages"]) == sorted(fresh)
        data_gens = [c[4] for recs in r.chunks.values() for c in recs.values()]
        assert r.generation not in data_gens  # a single-sync commit wrote no data pages
    other = 1 if r.meta["slot"] == 2 else 2
    prev = CartReader(path, slot=other)
    assert prev.generation == r.generation - 1
    prev.free_map()  # its free map and pending list are intact too
    prev.pending()
    if prev.generation in history:
        assert_same(my_view(prev), history[prev.generation])
    return r


HEADED_OWNERS = ("btree", "fm segment", "fm directory", "pending list")


def rewrite_page(buf: bytearray, n: int, page: bytes | bytearray) -> None:
    page = bytearray(page)
    struct.pack_into("<Q", page, 0, xxh64(bytes(page[8:])))
    buf[n * PAGE : (n + 1) * PAGE] = page


ALL_TYPES = {
    "none": None,
    "false": False,
    "true": True,
    "int": -(2**63),
    "intmax": 2**63 - 1,
    "zero": 0,
    "float": -1.25e-300,
    "inf": float("inf"),
    "str": "héllo wörld ☃",
    "empty_str": "",
    "bytes": bytes(range(256)),
    "empty_bytes": b"",
    "ключ": 7,
}


def pattern(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------
def test_xxh64_vectors():
    assert xxh64(b"") == 0xEF46DB3751D8E999
    assert xxh64(b"abc") == 0x44BC2CF5AD770999


def test_fresh_container(tmp_path):
    path = tmp_path / "a.cart"
    cart = cartridge.create(path, max_size=123 << 20)
    r = assert_matches_library(path, cart)
    assert r.chunk_size == 65536 and r.max_size == 123 << 20
    assert r.entries == {} and r.meta["root_page"] == 0 and r.meta["tree_depth"] == 0
    assert r.meta["fm_levels"] == 1 and r.meta["fm_segments"] == 1
    cart.close()
    assert CartReader(path).generation == r.generation


def test_mixed_history(tmp_path):
    path = tmp_path / "mixed.cart"
    cart = cartridge.create(path)
    hist: dict = {}
    header = CartReader(path).buf[:PAGE]
    commit_and_check(path, cart, hist)
    big = pattern(5 * 65536 + 1234, 1)
    cart.write("/empty", b"")
    cart.write("/small.txt", b"hello", metadata=ALL_TYPES)
    cart.write("/inline_max", pattern(1536, 2), mode=0o600)
    cart.write("/just_chunked", pattern(1537, 3))
    cart.write("/a/b/c/big.bin", big, metadata={"kind": "big"})
    cart.write("/zeros", bytes(3 * 65536))
    cart.mkdir("/x/y/z")
    cart.write("/ünïcødé/☃.txt", b"snow")
    commit_and_check(path, cart, hist)

    r = CartReader(path)
    assert r.entries["/inline_max"].inline is not None and r.entries["/empty"].inline == b""
    assert r.entries["/just_chunked"].inline is None and r.entries["/just_chunked"].file_id
    assert r.entries["/inline_max"].mode == 0o600

    cart.append("/small.txt", b" world")
    cart.append("/just_chunked", pattern(70000, 4))
    cart.truncate("/empty", 200000)  # extend: a hole
    cart.write("/sparse", b"head")
    cart.write_at("/sparse", 30 * 65536 + 77, b"far away")  # far past the end
    cart.write_at("/a/b/c/big.bin", 65536 - 3, b"ACROSS")  # straddles chunks 0 and 1
    commit_and_check(path, cart, hist)

    cart.truncate("/a/b/c/big.bin", 2 * 65536 + 10)  # shrink into chunk 2
    cart.truncate("/a/b/c/big.bin", 4 * 65536)  # then extend again: zero tail
    cart.truncate("/just_chunked", 100)  # a small file that stays chunked
    cart.rename("/a/b", "/moved")
    cart.delete("/zeros")
    r = commit_and_check(path, cart, hist)
    # section 7 reads as if small files were always inline, but a truncated one stays chunked
    assert r.entries["/just_chunked"].size == 100 and r.entries["/just_chunked"].inline is None

    cart.set_metadata("/small.txt", {"only": 1})  # headed pages only: single-sync
    r = commit_and_check(path, cart, hist)
    assert r.meta["commit_flags"] & 1, "expected a single-sync commit"
    cart.rename("/small.txt", "/x/y/z/small.txt")
    cart.delete("/ünïcødé/☃.txt")
    cart.write("/x/new", pattern(200000, 5), metadata={"v": 2.5})
    commit_and_check(path, cart, hist)
    cart.close()

    cart = cartridge.open(path, "r")
    r = assert_matches_library(path, cart)
    assert r.buf[:PAGE] == header  # the header is written once
    assert r.entries["/x/y/z/small.txt"].metadata == {"only": 1}
    assert r.read("/empty") == bytes(200000)
    cart.close()


def test_metadata_every_type(tmp_path):
    path = tmp_path / "meta.cart"
    cart = cartridge.create(path)
    cart.write("/f", b"x", metadata=ALL_TYPES)
    cart.mkdir("/d")
    cart.set_metadata("/d", {"dir": True, "n": 3})
    cart.write("/g", pattern(100000, 9), metadata={"k" * 255: "v" * 400})
    cart.commit()
    r = assert_matches_library(path, cart)
    assert r.entries["/f"].metadata == ALL_TYPES
    assert list(r.entries["/f"].metadata) == list(ALL_TYPES)  # order preserved
    assert r.entries["/d"].metadata == {"dir": True, "n": 3}
    cart.close()


def test_long_keys_and_cell_limits(tmp_path):
    path = tmp_path / "long.cart"
    cart = cartridge.create(path)
    comp = "c" * 250
    for i in range(60):
        p = f"/{comp}/{comp}/{comp}/{i:03d}" + "é" * 40
        meta = {"m": "x" * 700} if i % 2 else None
        cart.write(p, pattern(1536 if i % 3 else 10, i), metadata=meta)
    cart.commit()
    r = assert_matches_library(path, cart)
    assert max(len(e.path.encode()) for e in r.entries.values()) > 800
    assert r.meta["tree_depth"] >= 1
    inline = {p for p, e in r.entries.items() if e.inline is not None}
    assert inline and inline != {p for p, e in r.entries.items() if e.kind == 1}
    cart.close()


def test_deep_btree(tmp_path):
    path = tmp_path / "many.cart"
    cart = cartridge.create(path)
    hist: dict = {}
    n = 20000
    for i in range(n):
        cart.write(f"/d{i % 7}/file-{i:06d}", b"v%d" % i if i % 50 else pattern(70000, i))
    r = commit_and_check(path, cart, hist)
    assert r.meta["tree_depth"] >= 2, r.nodes_by_depth
    assert r.meta["file_count"] == n
    order = np.random.default_rng(0).permutation(n)
    for i in order[: n * 2 // 3]:
        cart.delete(f"/d{i % 7}/file-{i:06d}")
    commit_and_check(path, cart, hist)
    for i in order[n * 2 // 3 : n * 2 // 3 + 500]:
        cart.rename(f"/d{i % 7}/file-{i:06d}", f"/renamed/{i}")
    for i in order[: n // 3]:
        cart.write(f"/again/{i}", b"%d" % i)
    commit_and_check(path, cart, hist)
    cart.close()


def test_huge_sparse_file(tmp_path):
    path = tmp_path / "sparse.cart"
    cart = cartridge.create(path)
    cart.write("/s", b"start")
    cart.write_at("/s", 10**12, b"end")  # ~1 TB logical, a few pages on disk
    cart.write("/t", b"")
    cart.truncate("/t", 5 * 10**11)
    cart.commit()
    r = assert_matches_library(path, cart)
    assert r.entries["/s"].size == 10**12 + 3
    assert r.read("/s", 10**12 - 2, 5) == b"\0\0end"
    assert r.meta["total_pages"] < 64 and r.meta["fm_levels"] == 1
    cart.close()


def test_several_free_map_segments(tmp_path):
    path = tmp_path / "segs.cart"
    cart = cartridge.create(path)
    hist: dict = {}
    blob = bytes(range(256)) * (1 << 13)  # 2 MiB
    for i in range(70):  # 140 MiB: more than 32256 pages
        cart.write(f"/b{i}", blob)
    r = commit_and_check(path, cart, hist)
    assert r.meta["fm_segments"] == 2 and r.meta["fm_levels"] == 1
    for i in range(0, 70, 3):
        cart.delete(f"/b{i}")
    cart.write("/after", pattern(300000, 1))
    commit_and_check(path, cart, hist)
    cart.close()


def test_multi_page_pending_list(tmp_path):
    path = tmp_path / "pend.cart"
    cart = cartridge.create(path)
    hist: dict = {}
    for i in range(800):
        cart.write(f"/f{i:04d}", pattern(2000, i))  # one data page each
    commit_and_check(path, cart, hist)
    for i in range(0, 800, 2):
        cart.delete(f"/f{i:04d}")
    r = commit_and_check(path, cart, hist)
    assert r.meta["pending_count"] > 126 and r.meta["pending_npages"] >= 2
    cart.write("/new", pattern(100000, 1))
    commit_and_check(path, cart, hist)
    cart.close()


@pytest.mark.parametrize("chunk_size", [4096, 16384, 16 << 20])
def test_other_chunk_size(tmp_path, chunk_size):
    path = tmp_path / "cs.cart"
    cart = cartridge.create(path, chunk_size=chunk_size)
    cart.write("/f", pattern(100000, 1))
    cart.write_at("/f", 20_000_000, b"zz")
    cart.commit()
    r = assert_matches_library(path, cart)
    assert r.chunk_size == chunk_size
    expected = set(range(math.ceil(100000 / chunk_size))) | {20_000_000 // chunk_size}
    assert set(r.chunks[r.entries["/f"].file_id]) == expected
    cart.close()


def test_inline_boundary(tmp_path):
    """Inline when size <= 1536 and key + value <= 2000 bytes (section 7)."""
    path = tmp_path / "inl.cart"
    cart = cartridge.create(path)
    for n in (399, 400, 401):  # cell = 1 + 16 + 40 + (7 + n) + 1536 bytes
        cart.write(f"/{n:015d}", b"a" * 1536, metadata={"k": "x" * n})
    cart.commit()
    r = assert_matches_library(path, cart)
    inline = {p: e.inline is not None for p, e in r.entries.items()}
    assert list(inline.values()) == [True, True, False]
    cart.close()


@pytest.mark.parametrize("damage", ["sync_page", "meta_checksum"])
def test_torn_commit_falls_back(tmp_path, damage):
    path, before = tmp_path / "t.cart", tmp_path / "before.cart"
    cart = cartridge.create(path)
    cart.write("/f", pattern(100000, 1), metadata={"v": 1})
    cart.write("/g", b"small")
    cart.commit()
    old_gen, old_view = cart.generation, lib_view(cart)
    shutil.copy(path, before)
    cart.set_metadata("/f", {"v": 2})
    cart.commit()
    cart.close()
    r = CartReader(path)
    assert r.generation == old_gen + 1 and r.meta["commit_flags"] & 1
    assert r.meta["sync_count"] >= 1
    buf, old = bytearray(r.buf), before.read_bytes()
    if damage == "sync_page":  # power loss: one of the listed pages never reached the disk
        p = r.meta["sync_pages"][-1]
        buf[p * PAGE : (p + 1) * PAGE] = old[p * PAGE : (p + 1) * PAGE].ljust(PAGE, b"\0")
    else:  # the new meta page itself is torn
        buf[r.meta["slot"] * PAGE + 100] ^= 0x40
    path.write_bytes(bytes(buf))
    r2 = assert_fell_back(path, old_gen, old_view)
    assert isinstance(r2.metas[r.meta["slot"]], str)  # rule 4 (or 1) rejects the torn meta


def test_file_shorter_than_total_pages_falls_back(tmp_path):
    """Section 5 rule 3: a meta page whose total_pages exceeds the file is invalid."""
    path = tmp_path / "short.cart"
    cart = cartridge.create(path)
    cart.write("/a", pattern(5000, 1))
    cart.commit()
    old_gen, old_view = cart.generation, lib_view(cart)
    cart.write("/b", pattern(3 << 20, 2))
    cart.commit()
    cart.close()
    old_total = CartReader(path, slot=1 + old_gen % 2).meta["total_pages"]
    os.truncate(path, old_total * PAGE)
    assert_fell_back(path, old_gen, old_view)


def assert_fell_back(path, old_gen: int, old_view: dict) -> CartReader:
    """Both this reader and the library open ``path`` at ``old_gen`` with ``old_view``."""
    r = CartReader(path)
    assert r.generation == old_gen
    r.check_invariant()
    assert_same(my_view(r), old_view)
    cart = cartridge.open(path, "r")
    assert cart.generation == old_gen
    assert_same(lib_view(cart), old_view)
    cart.close()
    return r


def test_reader_rejects_bad_files(tmp_path):
    path = tmp_path / "bad.cart"
    cart = cartridge.create(path)
    cart.write("/f", pattern(100000, 1))
    cart.commit()
    cart.close()
    good = path.read_bytes()
    r = CartReader(path)
    for off, msg in [(0, "not a container"), (16, "checksum"), (20, "checksum")]:
        bad = bytearray(good)
        bad[off] ^= 1
        path.write_bytes(bytes(bad))
        with pytest.raises(FormatViolation, match=msg):
            CartReader(path)
    bad = bytearray(good)  # version 3 with a correct header checksum
    struct.pack_into("<I", bad, 16, 3)
    struct.pack_into("<Q", bad, 8, xxh64(bytes(bad[16:512])))
    path.write_bytes(bytes(bad))
    with pytest.raises(FormatViolation, match="version"):
        CartReader(path)
    bad = bytearray(good)  # flip a byte of file data: the chunk checksum catches it
    page = r.chunks[r.entries["/f"].file_id][1][0]
    bad[page * PAGE + 5] ^= 0xFF
    path.write_bytes(bytes(bad))
    with pytest.raises(FormatViolation, match="checksum mismatch"):
        CartReader(path)
    bad = bytearray(good)  # a used page marked free (checksum fixed): section 9 catches it
    seg_page = r.meta["fm_ptrs"][0][0]
    seg = bytearray(r.page(seg_page))
    seg[32 + page // 8] &= ~(1 << (page % 8)) & 0xFF
    rewrite_page(bad, seg_page, seg)
    path.write_bytes(bytes(bad))
    with pytest.raises(FormatViolation, match="bitmap disagrees"):
        CartReader(path).check_invariant()


def test_two_level_free_map_synthetic(tmp_path):
    """Re-encode a library container's free map with fm_levels = 2 (one directory
    page) by hand, per section 9; the reader and the library must both accept it."""
    path = tmp_path / "fm2.cart"
    cart = cartridge.create(path)
    cart.write("/f", pattern(300000, 1), metadata={"a": 1})
    cart.mkdir("/d")
    cart.commit()
    view = lib_view(cart)
    cart.close()
    r = CartReader(path)
    m, buf = r.meta, bytearray(r.buf)
    gen, n = m["generation"], m["total_pages"]
    buf += bytes(max(0, (n + 1) * PAGE - len(buf)))
    ((seg_page, seg_gen),) = m["fm_ptrs"]
    seg = bytearray(r.page(seg_page))
    seg[32 + n // 8] |= 1 << (n % 8)  # mark the new directory page used
    rewrite_page(buf, seg_page, seg)
    dpage = bytearray(PAGE)
    PAGE_HDR.pack_into(dpage, 0, 0, n, gen, T_FMDIR, 0, 1)
    struct.pack_into("<QQ", dpage, 32, seg_page, seg_gen)
    rewrite_page(buf, n, dpage)
    meta = bytearray(r.page(m["slot"]))
    struct.pack_into("<Q", meta, 56, n + 1)
    struct.pack_into("<II", meta, 100, 2, 1)
    struct.pack_into("<QQ", meta, 136, n, gen)
    rewrite_page(buf, m["slot"], meta)
    path.write_bytes(bytes(buf))
    r2 = CartReader(path)
    assert r2.meta["fm_levels"] == 2 and r2.generation == gen
    r2.check_invariant()
    assert_same(my_view(r2), view)
    cart = cartridge.open(path, "r+")
    assert_same(lib_view(cart), view)
    cart.write("/g", pattern(200000, 2))
    cart.commit()
    assert_matches_library(path, cart)
    cart.close()


def test_arrays(tmp_path):
    """Section 12: every layout, dtype encoding, fill values and both attrs homes."""
    path = tmp_path / "arrays.cart"
    cart = cartridge.create(path)
    nested = np.dtype([("id", ">u4"), (("the position", "pos"), [("x", "<f8"), ("y", "<f4")]),
                       ("tags", "S3", (2, 2)), ("when", "<M8[ms]")])
    arrays = {
        "/c": np.arange(60, dtype="<i4").reshape(3, 4, 5),
        "/f": np.asfortranarray(np.arange(12, dtype=">f8").reshape(3, 4)),
        "/nested": np.zeros(7, nested),
        "/aligned": np.ones(5, np.dtype([("a", "u1"), ("b", "<i8")], align=True)),
        "/scalar": np.array("héllo", "<U7"),
        "/empty": np.zeros((0, 4), "c16"),
        "/big": np.arange(300_000, dtype="<u2"),
    }
    arrays["/nested"]["tags"] = b"ab"
    for p, a in arrays.items():
        cart.write_array(p, a, attrs={"name": p})
    cart.array("/big")[100_000] = 7  # moves one chunk: FRAGMENTED
    cart.write_array("/ext", np.arange(3), attrs={"blob": "z" * 5000})
    ds = cart.create_dataset("/ds", (0, 5), "<f4", maxshape=(None, 5), chunks=(4, 3),
                             fill_value=-1.5)
    ds.append(np.arange(35, dtype="f4").reshape(7, 5))
    ds.resize((6, 5))
    ds[0, 4] = 9
    cart.create_dataset("/sparse", (10, 10, 10), "<i2", chunks=(3, 3, 3), fill_value=4)[
        9, 9, 9] = 1
    history: dict = {}
    r = commit_and_check(path, cart, history)
    for p in list(arrays) + ["/ext", "/ds", "/sparse"]:
        mine = r.read_array(p)
        theirs = cart.array(p)[...]
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape, p
        if p == "/aligned":  # numpy's copies leave padding bytes undefined: use the view
            theirs = cart.view(p)
        assert mine.tobytes() == np.asarray(theirs).tobytes(), p
        assert r.entries[p].array["dtype"] == cart.stat(p).dtype
        assert r.attrs(p) == dict(cart.array(p).attrs), p
    assert r.entries["/big"].array["flags"] & 1 and not r.entries["/c"].array["flags"] & 1
    assert r.entries["/ext"].array["flags"] & 2
    assert r.entries["/f"].array["order"] == 1
    assert r.entries["/ds"].array["maxshape"] == (None, 5)
    assert len(r.chunks[r.entries["/sparse"].file_id]) == 1


def test_compressed_arrays(tmp_path):
    """Sections 12 and 8: arrays with a compression policy (entry flags bits 2-3)
    keep the same chunk records, each chunk compressed on its own."""
    path = tmp_path / "carrays.cart"
    cart = cartridge.create(path, chunk_size=16384)
    cart.write_array("/lz4", np.repeat(np.arange(40_000, dtype="<i8"), 2), compression="lz4",
                     attrs={"blob": "b" * 5000})
    cart.write_array("/zstd", np.zeros((300, 70), ">f4"), compression="zstd")
    ds = cart.create_dataset("/ds", (0, 6), "<u2", maxshape=(None, 6), chunks=(50, 4),
                             fill_value=3, compression="auto")
    ds.append(np.arange(600, dtype="<u2").reshape(100, 6) % 5)
    cart.create_dataset("/filled", (20_000,), "<i4", fill_value=-2, compression="zstd")
    r = commit_and_check(path, cart, {})
    for p, policy in (("/lz4", 1), ("/zstd", 2), ("/ds", 3), ("/filled", 2)):
        e = r.entries[p]
        assert (e.flags >> 2) & 3 == policy, p
        assert r.read_array(p).tobytes() == cart.array(p)[...].tobytes(), p
        codecs = {rec[4] for rec in r.chunks[e.file_id].values()}
        assert codecs - {0}, f"{p}: no chunk is compressed"
    assert r.attrs("/lz4") == dict(cart.array("/lz4").attrs)
    cart.close()


def test_snapshots(tmp_path):
    """Section 13: snapshot records, their trees, and the pages they keep."""
    path = tmp_path / "snap.cart"
    cart = cartridge.create(path)
    hist: dict = {}
    for i in range(40):
        cart.write(f"/d/f{i}", pattern(3000 + 7000 * i, i))
    commit_and_check(path, cart, hist)
    cart.snapshot("one")
    views = {"one": lib_view(cart)}
    for i in range(0, 40, 2):
        cart.delete(f"/d/f{i}")
    cart.write("/new", pattern(200000, 3))
    commit_and_check(path, cart, hist)
    cart.snapshot("two")
    views["two"] = lib_view(cart)
    cart.write_at("/new", 5000, b"changed")
    r = commit_and_check(path, cart, hist)
    assert sorted(r.snapshots) == ["one", "two"]
    pending = [(start, count) for _g, start, count, _b in r.pending()]
    for name, view in views.items():
        sr = CartReader(path, snapshot=name)
        assert_same(my_view(sr), view)
        with cartridge.open(path, "r", snapshot=name) as snap:
            assert_same(my_view(sr), lib_view(snap))
        kept = np.zeros(r.meta["total_pages"], bool)
        for first, n, _o in r.live_owners:
            kept[first : first + n] = True
        for first, n in pending:
            kept[first : first + n] = True
        for first, n, owner in sr.owners:
            assert kept[first : first + n].all(), (name, owner)
    cart.delete_snapshot("one")
    r = commit_and_check(path, cart, hist)
    assert sorted(r.snapshots) == ["two"]


def test_compressed_files(tmp_path):
    """Section 8: lz4 blocks and zstd frames decoded by the independent reader, across
    partial rewrites, appends, truncation and the container default (section 2)."""
    path = tmp_path / "z.cart"
    text = b"".join(b"line %d of a compressible text\n" % i for i in range(20000))
    noise = pattern(300_000, 9)
    cart = cartridge.create(path, compression="zstd", level=5)
    history: dict = {}
    cart.write("/default", text)
    cart.write("/lz4", text, compression="lz4")
    cart.write("/lz4hc", text, compression="lz4", level=9)
    cart.write("/auto", text[:200_000] + noise, compression="auto")
    cart.write("/none", noise, compression=None)
    r = commit_and_check(path, cart, history)
    assert (r.default_codec, r.default_level) == (2, 5)
    codecs = {p: {rec[4] for rec in r.chunks[r.entries[p].file_id].values()}
              for p in ("/default", "/lz4", "/lz4hc", "/auto", "/none")}
    assert codecs == {"/default": {2}, "/lz4": {1}, "/lz4hc": {1}, "/auto": {0, 1},
                      "/none": {0}}
    assert r.entries["/lz4"].flags == 1 << 2 and r.entries["/default"].flags == 2 << 2
    cart.write_at("/lz4", 70_000, b"PATCH" * 1000)
    cart.append("/default", noise)
    cart.truncate("/auto", 123_457)
    commit_and_check(path, cart, history)
    cart.close()
