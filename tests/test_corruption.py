"""Damaged containers: flipped bytes, truncated files, garbage.

The promise under test: a damaged container either shows a state that was
committed, byte for byte, or says it is damaged with
:class:`cartridge.CorruptionError` / :class:`cartridge.FormatError` naming the
damaged page (raised by ``open``, a read or a listing, or reported by
``verify()``).  Wrong bytes, other exception types, crashes and hangs fail.

The byte-flip sweep (:func:`test_flipped_byte_in_a_structure_page`) runs on two
small containers, three commits old, so both meta pages are valid and freed
pages are pending: one whose last commit was a single-sync commit (metadata
only, see ``pager.py``) and one whose last commit wrote data.  It flips
(xor 0xFF) bytes of the file header, both meta pages, every B+tree page and
every free-map and pending-free page of the last commit, one byte at a time.
Sampling: bytes 0-63 of every page (the headers) and then every
4th byte (divided by ``CARTRIDGE_TEST_SCALE``, with a phase that differs
from page to page so that the pages together cover every residue); scale 4
gives the exhaustive sweep, which takes a few minutes.  Each case writes the
flipped byte into one scratch copy of the container and restores it
afterwards, instead of copying the whole file per case.
"""

from __future__ import annotations

import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

import cartridge
from cartridge import CorruptionError, FormatError, NotFoundError
from cartridge.allocator import Allocator
from cartridge.layout import META_COMMIT_SINGLE_SYNC, PAGE_SIZE
from cartridge.testing import scaled_down
from cartridge.testing.workloads.files import describe_difference, snapshot

STRIDE = scaled_down(4)
HEADER_BYTES = 64

Snapshot = tuple[dict[str, bytes], frozenset[str]]


@dataclass(frozen=True)
class Pristine:
    """An undamaged container and everything the tests expect of it."""

    path: Path
    """The container file (never modified by the tests)."""
    data: bytes
    """Its bytes."""
    states: dict[int, Snapshot]
    """Contents after each of the two commits the meta pages describe."""
    latest: int
    """Generation of the last commit."""
    previous: int
    """Generation of the commit before it (the other meta page)."""
    total_pages: dict[int, int]
    """Logical size in pages of each of those commits."""
    roles: dict[int, str]
    """Page number -> what it holds, for every page the sweep damages."""
    reachable: frozenset[int]
    """Headed pages (besides the meta page) the last commit reaches."""
    fallback: frozenset[int]
    """Pages whose damage makes open fall back to the previous commit: the last
    commit's meta page and, for a single-sync commit, the pages it lists."""
    big_file: str
    """A multi-chunk file of the last commit."""


def _build(path: Path, single_sync_last: bool) -> Pristine:
    """Three commits of nested inline and multi-chunk files, and the facts about them."""
    rng = random.Random(f"corruption-{single_sync_last}")
    cart = cartridge.create(path)
    states: dict[int, Snapshot] = {}
    # Commit 1: inline files filling more than a leaf (so the tree has a
    # branch), multi-chunk files, nesting.
    for i in range(5):
        cart.write(f"/a/inline{i}", rng.randbytes(1000 + i))
    cart.write("/a/b/big1", rng.randbytes(200_000))
    cart.write("/c/big2", rng.randbytes(150_000))
    cart.write("/c/d/e/small", b"0123456789")
    cart.mkdir("/empty")
    cart.commit()
    # Commit 2: replace, delete and add data: freed pages.
    cart.write("/a/b/big1", rng.randbytes(210_000))
    cart.delete("/c/big2")
    cart.write("/c/big3", rng.randbytes(70_000))
    cart.commit()
    states[cart.generation] = snapshot(cart)
    # Commit 3: metadata only (single-sync), or data too.
    cart.write("/a/inline0", rng.randbytes(800))
    cart.delete("/a/inline4")
    if not single_sync_last:
        cart.write_at("/c/big3", 66_000, rng.randbytes(9000))
    cart.commit()
    states[cart.generation] = snapshot(cart)
    latest = cart.generation
    meta = cart.txn.meta
    cart.close()

    with cartridge.open(path, "r") as ro:
        roles = {0: "file header", 1: "meta page 1", 2: "meta page 2"}
        ro.txn.tree.walk(lambda page, gen, node, depth: roles.__setitem__(
            page, f"B+tree {'leaf' if node.leaf else 'branch'} (depth {depth})"))
        alloc = Allocator(ro.env.pager, ro.txn.meta, None)
        for page, _gen in alloc.fm_ptrs:
            roles[page] = "free-map page"
        start, count = alloc.pending_run
        for page in range(start, start + count):
            roles[page] = "pending-free page"
        total_pages = {latest: int(ro.txn.meta["total_pages"])}
        _gen, previous_meta, problem = ro.env.pager.read_meta_slot(1 + (latest - 1) % 2)
        assert problem is None, problem
        total_pages[latest - 1] = int(previous_meta["total_pages"])
    assert "B+tree branch (depth 0)" in roles.values(), "the tree should have two levels"
    assert alloc.pending, "the last commit should have pending frees"
    single = bool(int(meta["commit_flags"]) & META_COMMIT_SINGLE_SYNC)
    assert single == single_sync_last, "the last commit is not of the intended kind"
    fallback = {1 + latest % 2}
    if single:
        fallback |= set(meta["sync_pages"][: int(meta["sync_count"])].tolist())
    return Pristine(
        path=path,
        data=path.read_bytes(),
        states=states,
        latest=latest,
        previous=latest - 1,
        total_pages=total_pages,
        roles=roles,
        reachable=frozenset(p for p in roles if p > 2),
        fallback=frozenset(fallback),
        big_file="/a/b/big1",
    )


@pytest.fixture(scope="module", params=["single-sync", "two-sync"])
def pristine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Pristine:
    """A small aged container; see :func:`_build`."""
    path = tmp_path_factory.mktemp("pristine") / "pristine.cart"
    return _build(path, request.param == "single-sync")


# ------------------------------------------------------------------ judging
def _names_page(message: str, page: int) -> bool:
    """True when ``message`` names ``page`` ("page 7", "pages 7..9", "data pages 3..7")."""
    if re.search(rf"\bpages? {page}\b", message):
        return True
    return any(lo <= page <= hi for lo, hi in
               ((int(a), int(b)) for a, b in re.findall(r"\bpages (\d+)\.\.(\d+)", message)))


def _open_and_read(path: Path) -> tuple[int, Snapshot, cartridge.VerifyReport] | Exception:
    """Open read-only, read every file, list every directory, verify.

    Returns ``(generation, contents, report)``, or the CorruptionError or
    FormatError raised on the way; any other exception propagates.
    """
    try:
        cart = cartridge.open(path, "r")
    except (CorruptionError, FormatError) as exc:
        return exc
    try:
        got = snapshot(cart)
        for d in ["/", *got[1]]:
            cart.list(d)
        return cart.generation, got, cart.verify()
    except (CorruptionError, FormatError) as exc:
        return exc
    finally:
        cart.close()


def _judge_flip(p: Pristine, page: int, outcome) -> str | None:
    """Why ``outcome`` of damaging ``page`` is unacceptable, or None if it is fine."""
    if isinstance(outcome, FormatError):
        return None if page == 0 else f"FormatError for damage outside the header: {outcome}"
    if isinstance(outcome, CorruptionError):
        if outcome.page == page or _names_page(str(outcome), page):
            return None
        return f"CorruptionError naming page {outcome.page}, not {page}: {outcome}"
    gen, got, report = outcome
    allowed = {p.latest} | ({p.previous} if page in p.fallback else set())
    if gen not in allowed:
        return f"opened generation {gen}, allowed {sorted(allowed)}"
    if got != p.states[gen]:
        return f"wrong contents at generation {gen}: {describe_difference(got, p.states[gen])}"
    named = any(_names_page(m, page) for m in report.problems)
    if report.problems and not named:
        return f"verify() reports problems that do not name page {page}: {report.problems}"
    if not named and page in p.reachable:
        # Every byte of a headed page is checksummed, so damage to one the
        # opened commit reaches (or, after a fallback, that a single-sync
        # commit listed) cannot go unnoticed.
        return f"verify() missed damage to {p.roles[page]} {page} at generation {gen}"
    return None


def _flip_offsets(page: int) -> list[int]:
    """Byte offsets of ``page`` the sweep damages (see the module docstring)."""
    return sorted(set(range(HEADER_BYTES)) | set(range(HEADER_BYTES + page % STRIDE,
                                                       PAGE_SIZE, STRIDE)))


# -------------------------------------------------------------------- tests
def test_flipped_byte_in_a_structure_page(pristine: Pristine, tmp_path: Path) -> None:
    """Flip every (sampled) byte of every structure page; see the module docstring."""
    gen, got, report = _open_and_read(pristine.path)
    assert (gen, got, report.ok) == (pristine.latest, pristine.states[gen], True)
    scratch = tmp_path / "damaged.cart"
    shutil.copyfile(pristine.path, scratch)
    failures: list[str] = []
    cases = 0
    outcomes: dict[str, int] = {}
    with open(scratch, "r+b", buffering=0) as f:
        for page in sorted(pristine.roles):
            for offset in _flip_offsets(page):
                pos = page * PAGE_SIZE + offset
                original = pristine.data[pos]
                f.seek(pos)
                f.write(bytes([original ^ 0xFF]))
                try:
                    outcome = _open_and_read(scratch)
                except Exception as exc:  # any other exception is a failure
                    outcome = None
                    problem = f"unexpected {type(exc).__name__}: {exc}"
                else:
                    problem = _judge_flip(pristine, page, outcome)
                finally:
                    f.seek(pos)
                    f.write(bytes([original]))
                cases += 1
                kind = (type(outcome).__name__ if isinstance(outcome, Exception)
                        else "other" if outcome is None else f"generation {outcome[0]}")
                outcomes[kind] = outcomes.get(kind, 0) + 1
                if problem:
                    failures.append(f"{pristine.roles[page]} {page}, byte {offset}: {problem}")
    assert scratch.read_bytes() == pristine.data, "the scratch copy was not restored"
    print(f"{cases} cases: {outcomes}")
    assert not failures, (f"{len(failures)} of {cases} flipped bytes mishandled; first ones:\n"
                          + "\n".join(failures[:25]))


def test_truncated_file(pristine: Pristine, tmp_path: Path) -> None:
    """Truncate at 50 lengths: an error, or a committed state that verifies."""
    size = len(pristine.data)
    lengths = {0, 1, 4095, 4096, 8192, 12288, size - 1}
    for pages in pristine.total_pages.values():
        lengths |= {pages * PAGE_SIZE - 1, pages * PAGE_SIZE}
    rng = random.Random(50)
    while len(lengths) < 50:
        lengths.add(rng.randrange(size))
    scratch = tmp_path / "truncated.cart"
    failures = []
    for length in sorted(lengths):
        scratch.write_bytes(pristine.data[:length])
        outcome = _open_and_read(scratch)
        if isinstance(outcome, Exception):
            if length >= pristine.total_pages[pristine.latest] * PAGE_SIZE:
                failures.append(f"{length}: {outcome!r} although every page of the last "
                                "commit is still there")
            continue
        gen, got, report = outcome
        if gen not in pristine.states or got != pristine.states[gen]:
            want = pristine.states.get(gen, pristine.states[pristine.latest])
            failures.append(f"{length}: generation {gen}: {describe_difference(got, want)}")
        elif not report.ok:
            failures.append(f"{length}: generation {gen} opened but verify() fails: "
                            f"{report.problems}")
        elif gen != pristine.latest and length >= pristine.total_pages[pristine.latest] * PAGE_SIZE:
            failures.append(f"{length}: fell back to generation {gen} although every page of "
                            "the last commit is still there")
    assert not failures, "\n".join(failures)


def test_damaged_data_page_is_found_by_verify(pristine: Pristine, tmp_path: Path) -> None:
    """verify(data=True) names the file and pages of a damaged chunk; data=False skips data."""
    with cartridge.open(pristine.path, "r") as cart:
        clean = cart.verify(data=True)
        entry = cart.txn.catalog.get(pristine.big_file)
        chunks = dict(cart.txn.catalog.chunks(entry.file_id))
        stored = sum(len(b) for p, b in pristine.states[pristine.latest][0].items()
                     if len(b) > 1536)
    assert clean.ok, clean.problems
    assert clean.data_bytes_checked == stored
    assert len(chunks) >= 3
    first, npages, length, *_rest = chunks[1]
    assert npages >= 2 and length > PAGE_SIZE + 17
    damaged_page = first + 1
    data = bytearray(pristine.data)
    data[damaged_page * PAGE_SIZE + 17] ^= 0xFF
    scratch = tmp_path / "data-damage.cart"
    scratch.write_bytes(bytes(data))
    with cartridge.open(scratch, "r") as cart:
        quick = cart.verify(data=False)
        full = cart.verify(data=True)
    assert quick.ok, quick.problems
    assert quick.data_bytes_checked == 0
    assert not full.ok
    assert full.data_bytes_checked == stored
    assert len(full.problems) == 1, full.problems
    message = full.problems[0]
    assert pristine.big_file in message, message
    assert f"pages {first}..{first + npages - 1}" in message, message
    assert _names_page(message, damaged_page)


@pytest.mark.parametrize("mode", ["r", "r+", "a"])
def test_not_a_container(tmp_path: Path, mode: str) -> None:
    """Garbage and empty files: FormatError, file untouched; a missing file: NotFoundError."""
    rng = random.Random(7)
    for name, content in [("empty", b""), ("short", rng.randbytes(100)),
                          ("garbage", rng.randbytes(5 * PAGE_SIZE)),
                          ("zeros", bytes(3 * PAGE_SIZE))]:
        path = tmp_path / f"{name}.cart"
        path.write_bytes(content)
        with pytest.raises(FormatError):
            cartridge.open(path, mode)
        assert path.read_bytes() == content, f"opening {name} with {mode!r} changed it"
    if mode != "a":  # "a" creates a missing container
        missing = tmp_path / "missing.cart"
        with pytest.raises(NotFoundError) as info:
            cartridge.open(missing, mode)
        assert isinstance(info.value, FileNotFoundError)
        assert not missing.exists()
