"""FileData's one chunk write path (put_chunk, put_chunks, put_run, move_chunk), on the
storage layer alone: a mapped file, a pager, a catalog and an allocator, no facade."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cartridge.allocator import Allocator
from cartridge.btree import BTree, NodeStore
from cartridge.catalog import Catalog, ChunkRecord, Entry
from cartridge.crypto import KeyRing
from cartridge.filedata import ChunkWrite, FileData, decode_chunk
from cartridge.layout import CHUNK, CODEC_NONE, KIND_FILE, PAGE_SIZE
from cartridge.mapfile import MappedFile
from cartridge.pager import Pager, checksum

CHUNK_SIZE = 4 * PAGE_SIZE
KEY = bytes(range(32))


@pytest.fixture(params=["plain", "encrypted"])
def stack(tmp_path, request):
    path = os.fspath(tmp_path / "s.cart")
    key = KEY if request.param == "encrypted" else None
    mf = MappedFile(path, writable=True, create=True)
    Pager.format_new(mf, CHUNK_SIZE, 0, key=key)
    pager = Pager(mf, key)
    _gen, meta = pager.load_meta()
    alloc = Allocator(pager, meta, None)
    cat = Catalog(BTree(NodeStore(pager), None, alloc.free))
    yield FileData(pager, cat, alloc, CHUNK_SIZE), alloc
    mf.close()


def used(alloc: Allocator) -> int:
    return int(sum(bin(int(w)).count("1") for w in alloc.words))


def test_chunk_record_is_format_md_chunk():
    assert ChunkRecord._fields == CHUNK.names
    rec = ChunkRecord(7, 2, 5000, 5028, 1, 3, 99, 4)
    assert ChunkRecord.unpack(rec.pack()) == rec
    assert rec.encrypted and rec.key_slot == 1 and rec.end_page == 9


def test_put_chunk_replaces_and_frees(stack):
    data, alloc = stack
    before = used(alloc)
    first = data.put_chunk(1, 0, b"a" * 5000, 5, replaces=None)
    assert first == ChunkRecord(first.page, 2, 5000, 5000, CODEC_NONE, 0,
                                checksum(np.frombuffer(b"a" * 5000, np.uint8)), 5)
    assert used(alloc) == before + 2
    second = data.put_chunk(1, 0, b"b" * 100, 5, replaces=first)
    assert data.cat.chunk(1, 0) == second and second.npages == 1
    assert used(alloc) == before + 1  # the first chunk's pages were freed
    assert bytes(data.chunk_bytes(1, 0, second)) == b"b" * 100
    hole = data.put_chunk(1, 0, b"", 5, replaces=second)
    assert hole.page == 0 and used(alloc) == before


def test_encoded_chunks_and_move(stack):
    data, alloc = stack
    entry = Entry(KIND_FILE, 0, 0o644, 0, 0, 0, 3)
    plain = os.urandom(3000)
    pieces = [ChunkWrite(i, len(plain), *data.encode(entry, i, plain, 6, 0)) for i in range(3)]
    data.put_chunks(3, pieces, 6)
    recs = dict(data.cat.chunks(3))
    assert sorted(recs) == [0, 1, 2]
    sealed = data.pager.keyring is not None
    assert all(r.encrypted == sealed and r.length == 3000 for r in recs.values())
    rec = recs[1]
    target = alloc.alloc(rec.npages)
    moved = data.move_chunk(3, 1, rec, target)
    assert moved == rec._replace(page=target)  # checksum and generation kept
    stored = data.pager.data(moved.page, moved.npages)[: moved.stored]
    assert decode_chunk(data.pager, 3, 1, moved, stored) == plain


def test_put_run_checksums_every_chunk(stack):
    data, _alloc = stack
    payload = os.urandom(3 * CHUNK_SIZE + 1000)
    start = data.put_run(9, payload, 2)
    recs = dict(data.cat.chunks(9))
    assert [r.page for r in recs.values()] == [start + i * 4 for i in range(4)]
    for i, rec in recs.items():
        piece = payload[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE]
        assert rec.length == len(piece)
        assert rec.checksum == checksum(np.frombuffer(piece, np.uint8))


def test_keyring_seals_new_chunks_under_its_current_slot(stack):
    data, _alloc = stack
    keyring = data.pager.keyring
    if keyring is None:
        pytest.skip("plain container")
    assert isinstance(keyring, KeyRing) and keyring.current == 0
    entry = Entry(KIND_FILE, 0, 0o644, 0, 0, 0, 4)
    _codec, flags, _stored = data.encode(entry, 0, b"x" * 100, 1, 0)
    assert flags == keyring.chunk_flags
