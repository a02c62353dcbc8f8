"""Attacks on encrypted containers: every tampering is refused, never read as data.

An attacker with write access to the file (but not the key) flips bytes,
recomputes the non-cryptographic XXH64 checksums, moves, swaps and replays
sealed pages and chunks, and truncates the file.  Each must end in
``AuthenticationError``/``CorruptionError`` (or, for a damaged meta page, a
clean fallback to the previous commit), never in wrong bytes.  A raw scan of
the file must find no path name, content, size or metadata.

Scale (``CARTRIDGE_TEST_SCALE``): 300 random byte flips.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import xxhash

import cartridge
from cartridge.layout import DEFAULT_CHUNK_SIZE as CH
from cartridge.layout import PAGE_SIZE as PAGE
from cartridge.testing import scaled

KEY = bytes(range(1, 33))
FLIPS = scaled(300)


def rand(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def snapshot(c: cartridge.Cartridge) -> dict:
    return {p: (c.read(p) if info.kind == "file" else None, info.metadata)
            for p, info in c.walk("/")}


def headed_pages(buf: bytes) -> list[int]:
    """Pages whose header is self-consistent (checksum and page number)."""
    out = []
    for p in range(1, len(buf) // PAGE):
        page = buf[p * PAGE : (p + 1) * PAGE]
        cks, page_no = struct.unpack_from("<QQ", page)
        if page_no == p and xxhash.xxh64_intdigest(page[8:], 0) == cks:
            out.append(p)
    return out


def fix_checksum(buf: bytearray, p: int) -> None:
    """What any attacker can do: XXH64 is not a MAC."""
    body = bytes(buf[p * PAGE + 8 : (p + 1) * PAGE])
    struct.pack_into("<Q", buf, p * PAGE, xxhash.xxh64_intdigest(body, 0))


@pytest.fixture
def sealed(tmp_path: Path) -> tuple[Path, list[dict], dict]:
    """An encrypted container with two commits; returns (path, states, chunk records)."""
    path = tmp_path / "s.cart"
    states = []
    with cartridge.create(path, key=KEY) as c:
        c.write("/projects/alpha/notes.txt", b"confidential plan " * 5000, compression="zstd",
                metadata={"owner": "mallory-target", "n": 1234567})
        c.write("/projects/alpha/raw.bin", rand(3 * CH, 1), compression=None)
        c.write("/projects/beta/raw.bin", rand(3 * CH, 2), compression=None)
        c.write("/small-secret.txt", b"inline-secret-text")
        c.commit()
        states.append(snapshot(c))
        c.write_at("/projects/alpha/raw.bin", CH + 5, rand(100, 3))
        c.commit()
        states.append(snapshot(c))
        recs = {p: dict(c.txn.catalog.chunks(c.txn.entry(p).file_id))
                for p in ("/projects/alpha/raw.bin", "/projects/beta/raw.bin",
                          "/projects/alpha/notes.txt")}
    return path, states, recs


def outcome(path: Path, states: list[dict]) -> str:
    """Open and read everything: "same", "fallback" or "error"; fail on wrong data."""
    try:
        with cartridge.open(path, "r", key=KEY) as c:
            got = snapshot(c)
    except cartridge.CorruptionError:
        return "error"
    except cartridge.FormatError:
        return "error"
    if got == states[-1]:
        return "same"
    assert got in states[:-1] or got == {}, "tampering produced data no commit ever held"
    return "fallback"


def test_wrong_key_and_password(tmp_path):
    path = tmp_path / "p.cart"
    with cartridge.create(path, password="correct horse") as c:
        c.write("/f", b"x" * 5000)
    with pytest.raises(cartridge.WrongKeyError):
        cartridge.open(path, password="battery staple")
    with pytest.raises(PermissionError):
        cartridge.open(path, "r")
    with pytest.raises(cartridge.WrongKeyError):
        cartridge.open(path, key=KEY)
    with cartridge.open(path, "r", password="correct horse") as c:
        assert c.read("/f") == b"x" * 5000 and c.info().encrypted
    with cartridge.create(tmp_path / "k.cart", key=KEY) as c:
        c.write("/f", b"y")
    with pytest.raises(cartridge.WrongKeyError):
        cartridge.open(tmp_path / "k.cart", key=bytes(32))
    with cartridge.create(tmp_path / "plain.cart"):
        pass
    with pytest.raises(cartridge.FormatError, match="not encrypted"):
        cartridge.open(tmp_path / "plain.cart", key=KEY)


def test_raw_scan_finds_no_plaintext(sealed):
    path, states, _ = sealed
    raw = path.read_bytes()
    for needle in [b"projects", b"alpha", b"notes.txt", b"small-secret", b"inline-secret-text",
                   b"confidential", b"mallory-target", b"owner",
                   struct.pack("<q", 1234567), struct.pack("<Q", len(b"confidential plan " * 5000)),
                   rand(3 * CH, 2)[:64], rand(3 * CH, 1)[2 * CH : 2 * CH + 64]]:
        assert needle not in raw, needle


def test_flip_any_byte(sealed, tmp_path):
    """Random byte flips anywhere in the file: an error or a fallback, never wrong data."""
    path, states, _ = sealed
    good = path.read_bytes()
    rng = np.random.default_rng(11)
    seen = {"same": 0, "fallback": 0, "error": 0}
    target = tmp_path / "flip.cart"
    for _ in range(FLIPS):
        bad = bytearray(good)
        pos = int(rng.integers(0, len(bad)))
        bad[pos] ^= int(rng.integers(1, 256))
        target.write_bytes(bad)
        seen[outcome(target, states)] += 1
    assert seen["error"] > 0, seen


@pytest.mark.parametrize("region", ["body", "trailer", "header"])
def test_forged_metadata_page_with_fixed_checksum(sealed, tmp_path, region):
    """Alter every sealed headed page (and fix its XXH64): authentication refuses it."""
    path, states, _ = sealed
    good = path.read_bytes()
    target = tmp_path / "forge.cart"
    pages = headed_pages(good)
    assert len(pages) >= 4
    offset = {"body": 100, "trailer": 4070, "header": 28}[region]  # header: the count field
    for p in pages:
        bad = bytearray(good)
        bad[p * PAGE + offset] ^= 0x01
        fix_checksum(bad, p)
        target.write_bytes(bad)
        result = outcome(target, states)
        assert result in ("error", "fallback", "same")


def test_forged_leaf_raises_authentication_error(sealed, tmp_path):
    path, states, _ = sealed
    good = path.read_bytes()
    with cartridge.open(path, "r", key=KEY) as c:
        root = int(c.txn.meta["root"]["page"])
    bad = bytearray(good)
    bad[root * PAGE + 200] ^= 0x80
    fix_checksum(bad, root)
    target = tmp_path / "leaf.cart"
    target.write_bytes(bad)
    with cartridge.open(target, "r", key=KEY) as c, pytest.raises(cartridge.AuthenticationError):
        c.read("/small-secret.txt")


def test_moved_page_is_detected(sealed, tmp_path):
    """A sealed page copied to another page number (header and checksum patched) fails."""
    path, states, _ = sealed
    good = path.read_bytes()
    with cartridge.open(path, "r", key=KEY) as c:
        root = int(c.txn.meta["root"]["page"])
        gen = int(c.txn.meta["root"]["generation"])
    others = [p for p in headed_pages(good) if p > 2 and p != root]
    bad = bytearray(good)
    src = others[0]
    img = bytearray(good[src * PAGE : (src + 1) * PAGE])
    struct.pack_into("<QQ", img, 8, root, gen)  # claim to be the root, right generation
    img[24:26] = good[root * PAGE + 24 : root * PAGE + 26]  # and the right type
    struct.pack_into("<I", img, 28, struct.unpack_from("<I", good, root * PAGE + 28)[0])
    bad[root * PAGE : (root + 1) * PAGE] = img
    fix_checksum(bad, root)
    target = tmp_path / "moved.cart"
    target.write_bytes(bad)
    with cartridge.open(target, "r", key=KEY) as c, pytest.raises(cartridge.CorruptionError):
        snapshot(c)


def _swap(buf: bytearray, a: tuple, b: tuple) -> None:
    n = a[3]
    assert b[3] == n
    sa, sb = a[0] * PAGE, b[0] * PAGE
    buf[sa : sa + n], buf[sb : sb + n] = bytes(buf[sb : sb + n]), bytes(buf[sa : sa + n])


def test_swap_two_chunks_of_one_file(sealed, tmp_path):
    path, _, recs = sealed
    bad = bytearray(path.read_bytes())
    r = recs["/projects/beta/raw.bin"]
    _swap(bad, r[0], r[2])
    target = tmp_path / "swap1.cart"
    target.write_bytes(bad)
    with cartridge.open(target, "r", key=KEY) as c:
        assert c.read("/projects/beta/raw.bin", CH, CH) == rand(3 * CH, 2)[CH : 2 * CH]
        for off in (0, 2 * CH):
            with pytest.raises(cartridge.AuthenticationError):
                c.read("/projects/beta/raw.bin", off, 10)


def test_swap_chunks_between_files(sealed, tmp_path):
    path, _, recs = sealed
    bad = bytearray(path.read_bytes())
    _swap(bad, recs["/projects/alpha/raw.bin"][2], recs["/projects/beta/raw.bin"][2])
    target = tmp_path / "swap2.cart"
    target.write_bytes(bad)
    with cartridge.open(target, "r", key=KEY) as c:
        for p in ("/projects/alpha/raw.bin", "/projects/beta/raw.bin"):
            with pytest.raises(cartridge.AuthenticationError):
                c.read(p, 2 * CH, 10)


def test_replay_chunk_from_an_earlier_generation(tmp_path):
    path = tmp_path / "r.cart"
    with cartridge.create(path, key=KEY) as c:
        c.write("/f", rand(3 * CH, 5), compression=None)
        c.commit()
        old = dict(c.txn.catalog.chunks(c.txn.entry("/f").file_id))[1]
        old_bytes = path.read_bytes()[old[0] * PAGE : old[0] * PAGE + old[3]]
        c.write_at("/f", CH, rand(CH, 6))
        c.commit()
        new = dict(c.txn.catalog.chunks(c.txn.entry("/f").file_id))[1]
    assert new[0] != old[0] and new[3] == old[3] and new[7] > old[7]
    bad = bytearray(path.read_bytes())
    bad[new[0] * PAGE : new[0] * PAGE + new[3]] = old_bytes
    path.write_bytes(bad)
    with cartridge.open(path, "r", key=KEY) as c:
        with pytest.raises(cartridge.AuthenticationError, match="chunk 1"):
            c.read("/f", CH, 10)
        assert c.read("/f", 0, 10) == rand(3 * CH, 5)[:10]


@pytest.mark.parametrize("enc", [True, False])
def test_truncated_file(sealed, tmp_path, enc):
    path, states, _ = sealed
    if not enc:
        path = tmp_path / "plain.cart"
        with cartridge.create(path, compression="zstd") as c:
            c.write("/f", rand(5 * CH, 7))
        states = [{"/f": (rand(5 * CH, 7), {})}]
    good = path.read_bytes()
    target = tmp_path / "t.cart"
    for cut in sorted({0, 100, PAGE, 3 * PAGE, len(good) // 2, len(good) - PAGE, len(good) - 1}):
        target.write_bytes(good[:cut])
        try:
            with cartridge.open(target, "r", key=KEY if enc else None) as c:
                got = snapshot(c)
        except (cartridge.CorruptionError, cartridge.FormatError):
            continue
        assert got in states or got == {}


def test_check_data_finds_swapped_chunks(sealed, tmp_path):
    """verify(data=True) checks every chunk (checksum, then authentication): a swap is reported."""
    path, _, recs = sealed
    with cartridge.open(path, "r", key=KEY) as c:
        assert c.verify(data=True).ok
    bad = bytearray(path.read_bytes())
    _swap(bad, recs["/projects/alpha/raw.bin"][0], recs["/projects/beta/raw.bin"][0])
    target = tmp_path / "swapv.cart"
    target.write_bytes(bad)
    with cartridge.open(target, "r", key=KEY) as c:
        report = c.verify(data=True)
        assert not report.ok and sum("chunk 0" in p for p in report.problems) == 2
        assert c.verify(data=False).ok
