"""Tests for the numba kernels in ``cartridge.kernels``.

Every kernel is checked against its pure-Python ``*_ref`` twin, both compiled
and through ``.py_func`` (the uncompiled body), on seeded-random and
hypothesis-generated inputs.  The XXH64 kernels (and their references) are
additionally checked against the ``xxhash`` package and published test
vectors, and the bitmap references against hand-worked examples, so a bug
shared by a kernel and its reference still fails.
"""

from __future__ import annotations

import mmap

import numba
import numpy as np
import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

import cartridge
from cartridge.kernels import bitmap, checksum
from cartridge.kernels import btree as kbtree
from cartridge.testing import hypothesis_settings

MAX64 = 2**64 - 1
ONES = np.uint64(MAX64)
MODES = ["jit", "py"]
HYP = hypothesis_settings(200)
HYP_SMALL = hypothesis_settings(60)


def call(mode: str, kernel, *args):
    """Run ``kernel`` compiled (``"jit"``) or as plain Python (``"py"``)."""
    if mode == "jit":
        return kernel(*args)
    # Under plain Python the uint64 wrap-around is done by numpy scalars,
    # which may warn about it; the wrapped value is the intended one.
    with np.errstate(over="ignore"):
        return kernel.py_func(*args)


def readonly(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    out.flags.writeable = False
    return out


def oracle(data, seed: int) -> int:
    return xxhash.xxh64_intdigest(bytes(data), seed)


def u8(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8)


SEEDS = [0, 1, 2**31, 2**32 + 7, 2**63 - 1, 2**63, MAX64]


# ==========================================================================
# Kernel style
# ==========================================================================

ALL_KERNELS = [
    checksum.xxh64,
    checksum.page_checksums,
    checksum.chunk_checksums,
    bitmap.set_range,
    bitmap.clear_range,
    bitmap.count_used,
    bitmap.count_free,
    bitmap.find_first_fit,
    bitmap.find_best_fit,
    bitmap.free_run_stats,
    kbtree.lookup,
]


@pytest.mark.parametrize("kernel", ALL_KERNELS, ids=lambda k: k.__name__)
def test_kernel_is_nogil_cached_njit(kernel):
    assert isinstance(kernel, numba.core.registry.CPUDispatcher)
    assert kernel.targetoptions["nopython"] is True
    assert kernel.targetoptions.get("nogil") is True
    assert type(kernel._cache).__name__ != "NullCache"
    assert kernel.__doc__


# ==========================================================================
# XXH64
# ==========================================================================


@pytest.mark.parametrize(
    ("data", "seed", "expected"),
    [
        (b"", 0, 0xEF46DB3751D8E999),
        (b"", 1, 0xD5AFBA1336A3BE4B),
        (b"a", 0, 0xD24EC4F1A98C6E5B),
        (b"abc", 0, 0x44BC2CF5AD770999),
    ],
)
def test_xxh64_published_vectors(data, seed, expected):
    assert oracle(data, seed) == expected
    assert checksum.xxh64_ref(data, seed) == expected
    for mode in MODES:
        assert int(call(mode, checksum.xxh64, u8(data), seed)) == expected


def test_xxh64_all_short_lengths():
    rng = np.random.default_rng(1234)
    buf = rng.integers(0, 256, 200, dtype=np.uint8)
    extra_seeds = [int(s) for s in rng.integers(0, 2**63, 3, dtype=np.int64)]
    for length in range(201):
        data = buf[:length]
        raw = data.tobytes()
        for seed in SEEDS + extra_seeds:
            want = oracle(raw, seed)
            assert int(checksum.xxh64(data, seed)) == want, (length, seed)
            assert checksum.xxh64_ref(raw, seed) == want, (length, seed)
        # The uncompiled kernel is slow; a subset of seeds is enough.
        for seed in (0, MAX64, extra_seeds[0]):
            assert int(call("py", checksum.xxh64, data, seed)) == oracle(raw, seed)


def test_xxh64_random_large_lengths():
    rng = np.random.default_rng(99)
    for _ in range(25):
        length = int(rng.integers(200, 200_000))
        seed = int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2))
        data = rng.integers(0, 256, length, dtype=np.uint8)
        want = oracle(data, seed)
        assert int(checksum.xxh64(data, seed)) == want
        assert checksum.xxh64_ref(data.tobytes(), seed) == want
    data = rng.integers(0, 256, 5003, dtype=np.uint8)
    assert int(call("py", checksum.xxh64, data, 77)) == oracle(data, 77)


@HYP
@given(data=st.binary(max_size=300), seed=st.integers(0, MAX64))
def test_xxh64_hypothesis(data, seed):
    want = oracle(data, seed)
    assert checksum.xxh64_ref(data, seed) == want
    assert int(checksum.xxh64(u8(data), seed)) == want
    assert int(call("py", checksum.xxh64, u8(data), seed)) == want


def test_xxh64_single_bit_flips_change_hash():
    data = np.zeros(100, dtype=np.uint8)
    base = int(checksum.xxh64(data, 0))
    seen = {base}
    for i in range(100):
        flipped = data.copy()
        flipped[i] = 1
        h = int(checksum.xxh64(flipped, 0))
        assert h == oracle(flipped, 0)
        seen.add(h)
    assert len(seen) == 101


def test_xxh64_seed_types():
    data = u8(b"cartridge" * 7)
    # A small Python int first, then one >= 2**63: must not hit numba's
    # "int too big to convert" after an int64 specialisation exists.
    for seed in (0, MAX64, 2**63, np.uint64(MAX64), np.uint64(5), np.int64(5), 5):
        assert int(checksum.xxh64(data, seed)) == oracle(data, int(seed))


@pytest.mark.parametrize("mode", MODES)
def test_xxh64_readonly_and_unaligned(mode, tmp_path):
    rng = np.random.default_rng(7)
    raw = rng.integers(0, 256, 4099, dtype=np.uint8).tobytes()
    # np.frombuffer over bytes is read-only; offsets make it unaligned.
    for off in range(9):
        view = np.frombuffer(raw, dtype=np.uint8)[off:]
        assert not view.flags.writeable
        assert int(call(mode, checksum.xxh64, view, 3)) == oracle(raw[off:], 3)
    ro = readonly(np.frombuffer(raw, dtype=np.uint8))
    assert int(call(mode, checksum.xxh64, ro, MAX64)) == oracle(raw, MAX64)
    # A numpy view on an mmap opened ACCESS_READ.
    path = tmp_path / "blob"
    path.write_bytes(raw)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = np.frombuffer(mm, dtype=np.uint8)
        assert not view.flags.writeable
        assert int(call(mode, checksum.xxh64, view, 42)) == oracle(raw, 42)
        assert int(call(mode, checksum.xxh64, view[5:1029], 0)) == oracle(raw[5:1029], 0)
        del view


def test_checksums_reject_wrong_dtype_and_layout():
    with pytest.raises(TypeError):
        checksum.xxh64(np.zeros(8, dtype=np.int64), 0)
    strided = np.arange(64, dtype=np.uint8)[::2]
    with pytest.raises(TypeError):
        checksum.xxh64(strided, 0)
    with pytest.raises(TypeError):
        checksum.chunk_checksums(strided, 4, 0)
    with pytest.raises(TypeError):
        checksum.page_checksums(np.zeros((4, 8), dtype=np.uint8)[:, ::2], 0, 0)
    # The documented remedy gives the same digest as the bytes.
    fixed = np.ascontiguousarray(strided)
    assert int(checksum.xxh64(fixed, 9)) == oracle(strided.tobytes(), 9)
    # Only the compiled kernel needs contiguity; .py_func accepts any view.
    assert int(call("py", checksum.xxh64, strided, 9)) == oracle(strided.tobytes(), 9)


# ==========================================================================
# page_checksums / chunk_checksums
# ==========================================================================


def _pages_expected(pages: np.ndarray, skip: int, seed: int) -> list[int]:
    return [oracle(row[skip:], seed) for row in pages]


@pytest.mark.parametrize("mode", MODES)
def test_page_checksums_random(mode):
    rng = np.random.default_rng(2024)
    shapes = [(0, 64), (1, 0), (3, 1), (5, 31), (4, 32), (7, 100), (3, 4096)]
    for n_pages, page_size in shapes:
        pages = rng.integers(0, 256, (n_pages, page_size), dtype=np.uint8)
        skips = sorted({0, page_size // 2, page_size, min(16, page_size)})
        for skip in skips:
            for seed in (0, MAX64, 12345):
                want = _pages_expected(pages, skip, seed)
                got = call(mode, checksum.page_checksums, pages, skip, seed)
                assert got.dtype == np.uint64
                assert got.shape == (n_pages,)
                assert [int(x) for x in got] == want
                assert checksum.page_checksums_ref(pages, skip, seed) == want


@HYP_SMALL
@given(
    n_pages=st.integers(0, 6),
    page_size=st.integers(0, 80),
    skip_frac=st.floats(0, 1),
    seed=st.integers(0, MAX64),
    fill=st.integers(0, 2**32 - 1),
)
def test_page_checksums_hypothesis(n_pages, page_size, skip_frac, seed, fill):
    rng = np.random.default_rng(fill)
    pages = rng.integers(0, 256, (n_pages, page_size), dtype=np.uint8)
    skip = int(skip_frac * page_size)
    ref = checksum.page_checksums_ref(pages, skip, seed)
    assert ref == _pages_expected(pages, skip, seed)
    for mode in MODES:
        got = call(mode, checksum.page_checksums, pages, skip, seed)
        assert [int(x) for x in got] == ref


@pytest.mark.parametrize("mode", MODES)
def test_page_checksums_readonly_mmap(mode, tmp_path):
    rng = np.random.default_rng(5)
    pages = rng.integers(0, 256, (8, 512), dtype=np.uint8)
    path = tmp_path / "pages"
    path.write_bytes(pages.tobytes())
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = np.frombuffer(mm, dtype=np.uint8).reshape(8, 512)
        assert not view.flags.writeable
        got = call(mode, checksum.page_checksums, view, 24, 9)
        assert [int(x) for x in got] == _pages_expected(pages, 24, 9)
        del view
    got = call(mode, checksum.page_checksums, readonly(pages), 0, 0)
    assert [int(x) for x in got] == _pages_expected(pages, 0, 0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("skip", [-1, 17])
def test_page_checksums_bad_skip(mode, skip):
    pages = np.zeros((2, 16), dtype=np.uint8)
    with pytest.raises(ValueError, match="skip"):
        call(mode, checksum.page_checksums, pages, skip, 0)
    with pytest.raises(ValueError, match="skip"):
        checksum.page_checksums_ref(pages, skip, 0)


def _chunks_expected(data: bytes, chunk_size: int, seed: int) -> list[int]:
    return [oracle(data[i : i + chunk_size], seed) for i in range(0, len(data), chunk_size)]


@pytest.mark.parametrize("mode", MODES)
def test_chunk_checksums_random(mode):
    rng = np.random.default_rng(31337)
    for length in (0, 1, 31, 32, 33, 100, 1000, 4096, 10_001):
        data = rng.integers(0, 256, length, dtype=np.uint8)
        raw = data.tobytes()
        for chunk_size in (1, 7, 32, 64, 1000, 4096, 100_000):
            if mode == "py" and length // chunk_size > 200:
                continue  # keep the uncompiled path quick
            seed = int(rng.integers(0, 2**63)) * 2 + 1
            want = _chunks_expected(raw, chunk_size, seed)
            got = call(mode, checksum.chunk_checksums, data, chunk_size, seed)
            assert got.dtype == np.uint64
            assert [int(x) for x in got] == want
            assert checksum.chunk_checksums_ref(raw, chunk_size, seed) == want
    assert call(mode, checksum.chunk_checksums, np.zeros(0, np.uint8), 8, 0).shape == (0,)


@HYP
@given(data=st.binary(max_size=400), chunk_size=st.integers(1, 130), seed=st.integers(0, MAX64))
def test_chunk_checksums_hypothesis(data, chunk_size, seed):
    want = _chunks_expected(data, chunk_size, seed)
    assert checksum.chunk_checksums_ref(data, chunk_size, seed) == want
    assert [int(x) for x in checksum.chunk_checksums(u8(data), chunk_size, seed)] == want
    got = call("py", checksum.chunk_checksums, u8(data), chunk_size, seed)
    assert [int(x) for x in got] == want


@pytest.mark.parametrize("mode", MODES)
def test_chunk_checksums_readonly_and_bad_size(mode, tmp_path):
    raw = bytes(range(256)) * 9
    got = call(mode, checksum.chunk_checksums, u8(raw), 100, 1)
    assert [int(x) for x in got] == _chunks_expected(raw, 100, 1)
    path = tmp_path / "stream"
    path.write_bytes(raw)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = np.frombuffer(mm, dtype=np.uint8)
        got = call(mode, checksum.chunk_checksums, view, 64, MAX64)
        assert [int(x) for x in got] == _chunks_expected(raw, 64, MAX64)
        del view
    for bad in (0, -3):
        with pytest.raises(ValueError, match="chunk_size"):
            call(mode, checksum.chunk_checksums, u8(raw), bad, 0)
        with pytest.raises(ValueError, match="chunk_size"):
            checksum.chunk_checksums_ref(raw, bad, 0)


# ==========================================================================
# Bitmap helpers
# ==========================================================================


def words_from_bits(bits: list[int], nwords: int) -> np.ndarray:
    """Pack 0/1 page flags (LSB-first) into ``nwords`` uint64 words."""
    value = 0
    for p, b in enumerate(bits):
        value |= b << p
    return np.array([(value >> (64 * i)) & MAX64 for i in range(nwords)], dtype=np.uint64)


def bits_from_words(words: np.ndarray) -> list[int]:
    return [(int(w) >> i) & 1 for w in words for i in range(64)]


def runs_bitmap(rng: np.random.Generator, nwords: int, max_run: int = 150) -> np.ndarray:
    """Random bitmap built from alternating used/free runs of random length."""
    bits: list[int] = []
    state = int(rng.integers(0, 2))
    while len(bits) < nwords * 64:
        bits += [state] * int(rng.integers(1, max_run + 1))
        state ^= 1
    return words_from_bits(bits[: nwords * 64], nwords)


@st.composite
def bitmaps(draw, max_words: int = 6):
    """(words, nbits): run-structured, word-structured or noisy bitmaps."""
    nwords = draw(st.integers(0, max_words))
    kind = draw(st.sampled_from(["runs", "words", "noise"]))
    if kind == "runs":
        bits: list[int] = []
        state = draw(st.integers(0, 1))
        while len(bits) < nwords * 64:
            bits += [state] * draw(st.integers(1, 140))
            state ^= 1
        words = words_from_bits(bits[: nwords * 64], nwords)
    elif kind == "words":
        special = st.sampled_from([0, MAX64, 1, 1 << 63, 0xFFFF0000FFFF0000, 0x00FF])
        vals = draw(
            st.lists(st.one_of(special, st.integers(0, MAX64)), min_size=nwords, max_size=nwords)
        )
        words = np.array(vals, dtype=np.uint64)
    else:
        words = np.array(
            draw(st.lists(st.integers(0, MAX64), min_size=nwords, max_size=nwords)),
            dtype=np.uint64,
        )
    nbits = draw(st.integers(0, nwords * 64))
    return words, nbits


# ==========================================================================
# Bitmap: hand-worked examples (check the references too)
# ==========================================================================


def _example() -> tuple[np.ndarray, int]:
    """150 pages; free runs [3,8) len 5, [60,70) len 10 (crosses a word),
    [100,103) len 3, [120,123) len 3, [140,150) len 10 (ends at nbits).
    Padding bits 150..191 are free and must be ignored."""
    bits = [1] * 192
    for lo, hi in [(3, 8), (60, 70), (100, 103), (120, 123), (140, 150)]:
        for p in range(lo, hi):
            bits[p] = 0
    for p in range(150, 192):
        bits[p] = 0
    return words_from_bits(bits, 3), 150


FIRST_FIT_CASES = [
    # (n, hint, expected)
    (1, 0, 3),
    (5, 0, 3),
    (6, 0, 60),
    (3, 4, 4),  # start inside a free run at the hint
    (5, 4, 60),
    (10, 61, 140),
    (11, 0, -1),  # larger than any run (padding does not count)
    (10, 141, 60),  # wrapped; [141,151) would cross nbits
    (3, 148, 3),  # wrapped
    (5, 1000, 3),  # hint past nbits behaves like 0
    (2, 122, 140),
    (2, 121, 121),
]


@pytest.mark.parametrize("mode", MODES)
def test_bitmap_hand_worked_example(mode):
    words, nbits = _example()
    for n, hint, expected in FIRST_FIT_CASES:
        assert bitmap.find_first_fit_ref(words, nbits, n, hint) == expected, (n, hint)
        assert call(mode, bitmap.find_first_fit, words, nbits, n, hint) == expected, (n, hint)
    for n, expected in [(1, 100), (3, 100), (4, 3), (5, 3), (6, 60), (10, 60), (11, -1)]:
        assert bitmap.find_best_fit_ref(words, nbits, n) == expected, n
        assert call(mode, bitmap.find_best_fit, words, nbits, n) == expected, n
    stats = (5, 10, 31)
    assert bitmap.free_run_stats_ref(words, nbits) == stats
    assert tuple(call(mode, bitmap.free_run_stats, words, nbits)) == stats
    assert bitmap.count_free_ref(words, nbits) == 31
    assert call(mode, bitmap.count_free, words, nbits) == 31
    assert call(mode, bitmap.count_free, words, 192) == 31 + 42
    assert bitmap.count_used_ref(words, 50, 30) == 20
    assert call(mode, bitmap.count_used, words, 50, 30) == 20
    # With the padding counted as real pages the last run grows to 52.
    assert tuple(call(mode, bitmap.free_run_stats, words, 192)) == (5, 52, 73)
    assert call(mode, bitmap.find_first_fit, words, 192, 11, 0) == 140


@pytest.mark.parametrize("mode", MODES)
def test_bitmap_empty_and_trivial(mode):
    empty = np.zeros(0, dtype=np.uint64)
    assert call(mode, bitmap.count_free, empty, 0) == 0
    assert call(mode, bitmap.count_used, empty, 0, 0) == 0
    assert tuple(call(mode, bitmap.free_run_stats, empty, 0)) == (0, 0, 0)
    assert call(mode, bitmap.find_first_fit, empty, 0, 1, 0) == -1
    assert call(mode, bitmap.find_best_fit, empty, 0, 1) == -1
    call(mode, bitmap.set_range, empty, 0, 0)
    call(mode, bitmap.clear_range, empty, 0, 0)
    full = np.full(4, ONES)
    assert call(mode, bitmap.find_first_fit, full, 256, 1, 17) == -1
    assert call(mode, bitmap.find_best_fit, full, 256, 1) == -1
    assert tuple(call(mode, bitmap.free_run_stats, full, 256)) == (0, 0, 0)
    free = np.zeros(4, dtype=np.uint64)
    assert call(mode, bitmap.find_first_fit, free, 200, 200, 5) == 0
    assert call(mode, bitmap.find_first_fit, free, 200, 201, 0) == -1
    assert call(mode, bitmap.find_first_fit, free, 200, 150, 60) == 0
    assert call(mode, bitmap.find_first_fit, free, 200, 140, 60) == 60
    assert call(mode, bitmap.find_best_fit, free, 200, 7) == 0
    assert tuple(call(mode, bitmap.free_run_stats, free, 200)) == (1, 200, 200)
    assert tuple(call(mode, bitmap.free_run_stats, free, 0)) == (0, 0, 0)


@pytest.mark.parametrize("mode", MODES)
def test_set_clear_range_word_boundaries(mode):
    for start, count in [
        (0, 64),
        (63, 2),
        (1, 62),
        (64, 64),
        (5, 250),
        (0, 256),
        (255, 1),
        (70, 0),
    ]:
        words = np.zeros(4, dtype=np.uint64)
        call(mode, bitmap.set_range, words, start, count)
        want = [1 if start <= p < start + count else 0 for p in range(256)]
        assert bits_from_words(words) == want, (start, count)
        words = np.full(4, ONES)
        call(mode, bitmap.clear_range, words, start, count)
        assert bits_from_words(words) == [1 - b for b in want], (start, count)


# ==========================================================================
# Bitmap: kernel == reference on random inputs
# ==========================================================================


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("kernel", "ref"),
    [
        (bitmap.set_range, bitmap.set_range_ref),
        (bitmap.clear_range, bitmap.clear_range_ref),
    ],
    ids=["set", "clear"],
)
def test_set_clear_range_seeded(mode, kernel, ref):
    rng = np.random.default_rng(11)
    for _ in range(150):
        nwords = int(rng.integers(1, 9))
        words = rng.integers(0, MAX64, nwords, dtype=np.uint64, endpoint=True)
        start = int(rng.integers(0, nwords * 64 + 1))
        count = int(rng.integers(0, nwords * 64 - start + 1))
        got, want = words.copy(), words.copy()
        call(mode, kernel, got, start, count)
        ref(want, start, count)
        np.testing.assert_array_equal(got, want)


@HYP
@given(
    bm=bitmaps(), a=st.integers(0, 400), b=st.integers(0, 400), op=st.sampled_from(["set", "clear"])
)
def test_set_clear_range_hypothesis(bm, a, b, op):
    words, _ = bm
    size = words.size * 64
    start = min(a, size)
    count = min(b, size - start)
    kernel = bitmap.set_range if op == "set" else bitmap.clear_range
    ref = bitmap.set_range_ref if op == "set" else bitmap.clear_range_ref
    want = words.copy()
    ref(want, start, count)
    for mode in MODES:
        got = words.copy()
        call(mode, kernel, got, start, count)
        np.testing.assert_array_equal(got, want)


@HYP
@given(bm=bitmaps(), a=st.integers(0, 400), b=st.integers(0, 400))
def test_counts_hypothesis(bm, a, b):
    words, nbits = bm
    size = words.size * 64
    start = min(a, size)
    count = min(b, size - start)
    used = bitmap.count_used_ref(words, start, count)
    free = bitmap.count_free_ref(words, nbits)
    for mode in MODES:
        assert call(mode, bitmap.count_used, words, start, count) == used
        assert call(mode, bitmap.count_free, words, nbits) == free


@HYP
@given(bm=bitmaps(), n=st.integers(1, 200), hint=st.integers(0, 420))
def test_find_first_fit_hypothesis(bm, n, hint):
    words, nbits = bm
    want = bitmap.find_first_fit_ref(words, nbits, n, hint)
    for mode in MODES:
        assert call(mode, bitmap.find_first_fit, words, nbits, n, hint) == want


@HYP
@given(bm=bitmaps(), n=st.integers(1, 200))
def test_find_best_fit_hypothesis(bm, n):
    words, nbits = bm
    want = bitmap.find_best_fit_ref(words, nbits, n)
    for mode in MODES:
        assert call(mode, bitmap.find_best_fit, words, nbits, n) == want


@HYP
@given(bm=bitmaps())
def test_free_run_stats_hypothesis(bm):
    words, nbits = bm
    want = bitmap.free_run_stats_ref(words, nbits)
    for mode in MODES:
        assert tuple(call(mode, bitmap.free_run_stats, words, nbits)) == want


def test_bitmap_queries_seeded_larger():
    rng = np.random.default_rng(77)
    for trial in range(6):
        nwords = int(rng.integers(20, 60))
        words = runs_bitmap(rng, nwords, max_run=[8, 70, 300][trial % 3])
        nbits = nwords * 64 - int(rng.integers(0, 64))
        stats = bitmap.free_run_stats_ref(words, nbits)
        assert tuple(bitmap.free_run_stats(words, nbits)) == stats
        assert bitmap.count_free(words, nbits) == bitmap.count_free_ref(words, nbits) == stats[2]
        for n in sorted({1, 2, 5, 33, 64, 65, stats[1], stats[1] + 1}):
            if n < 1:
                continue
            assert bitmap.find_best_fit(words, nbits, n) == bitmap.find_best_fit_ref(
                words, nbits, n
            )
            for hint in (0, int(rng.integers(0, nbits)), nbits - 1, nbits):
                assert bitmap.find_first_fit(words, nbits, n, hint) == bitmap.find_first_fit_ref(
                    words, nbits, n, hint
                )
        start = int(rng.integers(0, nbits))
        count = int(rng.integers(0, nbits - start))
        assert bitmap.count_used(words, start, count) == bitmap.count_used_ref(words, start, count)


# ==========================================================================
# Bitmap: read-only inputs and argument checking
# ==========================================================================


@pytest.mark.parametrize("mode", MODES)
def test_bitmap_readonly_inputs(mode, tmp_path):
    rng = np.random.default_rng(3)
    words = runs_bitmap(rng, 12, max_run=40)
    nbits = 12 * 64 - 13
    path = tmp_path / "bitmap"
    path.write_bytes(words.tobytes())
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        mapped = np.frombuffer(mm, dtype=np.uint64)
        for view in (mapped, readonly(words)):
            assert not view.flags.writeable
            assert call(mode, bitmap.count_used, view, 5, 600) == bitmap.count_used_ref(
                words, 5, 600
            )
            assert call(mode, bitmap.count_free, view, nbits) == bitmap.count_free_ref(words, nbits)
            assert tuple(
                call(mode, bitmap.free_run_stats, view, nbits)
            ) == bitmap.free_run_stats_ref(words, nbits)
            for n in (1, 3, 17, 41):
                assert call(mode, bitmap.find_best_fit, view, nbits, n) == bitmap.find_best_fit_ref(
                    words, nbits, n
                )
                assert call(mode, bitmap.find_first_fit, view, nbits, n, 300) == (
                    bitmap.find_first_fit_ref(words, nbits, n, 300)
                )
        del mapped, view


@pytest.mark.parametrize("mode", MODES)
def test_mutators_refuse_readonly(mode):
    words = readonly(np.zeros(2, dtype=np.uint64))
    for kernel in (bitmap.set_range, bitmap.clear_range):
        with pytest.raises((numba.core.errors.TypingError, ValueError)):
            call(mode, kernel, words, 3, 70)
    assert not words.any()


BAD_ARGS = [
    ("set_range", (-1, 2)),
    ("set_range", (0, 129)),
    ("set_range", (100, 29)),
    ("set_range", (5, -1)),
    ("clear_range", (-1, 2)),
    ("clear_range", (128, 1)),
    ("count_used", (0, 129)),
    ("count_used", (-2, 1)),
    ("count_free", (129,)),
    ("count_free", (-1,)),
    ("find_first_fit", (129, 1, 0)),
    ("find_first_fit", (100, 0, 0)),
    ("find_first_fit", (100, 1, -1)),
    ("find_best_fit", (129, 1)),
    ("find_best_fit", (100, 0)),
    ("free_run_stats", (-1,)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "args"), BAD_ARGS)
def test_bitmap_bad_arguments(mode, name, args):
    words = np.zeros(2, dtype=np.uint64)
    with pytest.raises(ValueError):
        call(mode, getattr(bitmap, name), words, *args)
    with pytest.raises(ValueError):
        getattr(bitmap, name + "_ref")(words.copy(), *args)
    assert not words.any()


# ==========================================================================
# B+tree lookup
# ==========================================================================


def _tree_image(tmp_path, names: list[str]) -> tuple[bytes, tuple[int, int]]:
    """Build a container holding ``names``; return its bytes and root ref."""
    path = tmp_path / "tree.cart"
    with cartridge.create(path) as cart:
        for i, name in enumerate(names):
            cart.write(name, f"value {i}".encode() * (i % 7))
    with cartridge.open(path, "r") as cart:
        root = cart.txn.tree.root
    return path.read_bytes(), root


@pytest.mark.parametrize("mode", MODES)
def test_btree_lookup_matches_reference(mode, tmp_path):
    rng = np.random.default_rng(5)
    names = sorted({f"/d{rng.integers(40)}/f{rng.integers(10**6)}" for _ in range(3000)})
    image, (root_page, root_gen) = _tree_image(tmp_path, names)
    buf = readonly(np.frombuffer(image, np.uint8).copy())
    verified = np.zeros(len(image) // 4096, np.uint64)
    probes = [b"\x10" + n.encode() for n in names[::7]]
    probes += [b"\x10/d1/missing", b"\x10", b"\xff" * 30, b"", b"\x10/d3"]
    for key in probes:
        got = call(mode, kbtree.lookup, buf, np.uint64(root_page), np.uint64(root_gen),
                   np.frombuffer(key, np.uint8), verified, 48)
        want = kbtree.lookup_ref(image, root_page, root_gen, key, 48)
        assert tuple(map(int, got)) == want
        if want[0] == kbtree.FOUND:
            assert image[want[1] : want[1] + want[2]][:1] in (b"\x01", b"\x02")  # an entry
    assert (verified != 0).any()


@pytest.mark.parametrize("mode", MODES)
def test_btree_lookup_falls_back_on_damage(mode, tmp_path):
    names = [f"/f{i:05d}" for i in range(2000)]
    image, (root_page, root_gen) = _tree_image(tmp_path, names)
    key = np.frombuffer(b"\x10/f01234", np.uint8)
    for damage in ("checksum", "generation", "offsets", "range"):
        buf = bytearray(image)
        if damage == "checksum":
            buf[root_page * 4096 + 200] ^= 0xFF
        elif damage == "offsets":
            # A branch offset table running backwards (checksum fixed up).
            off = root_page * 4096
            count = int.from_bytes(buf[off + 28 : off + 32], "little")
            table = off + 32 + 16 * count
            buf[table : table + 2] = (5000).to_bytes(2, "little")
            digest = checksum.xxh64(np.frombuffer(bytes(buf[off + 8 : off + 4096]), np.uint8), 0)
            buf[off : off + 8] = int(digest).to_bytes(8, "little")
        arr = readonly(np.frombuffer(bytes(buf), np.uint8).copy())
        verified = np.zeros(len(buf) // 4096, np.uint64)
        page = root_page if damage != "range" else len(buf) // 4096 + 10
        gen = root_gen + 1 if damage == "generation" else root_gen
        got = call(mode, kbtree.lookup, arr, np.uint64(page), np.uint64(gen), key, verified, 48)
        assert int(got[0]) == kbtree.FALLBACK
        assert kbtree.lookup_ref(bytes(buf), page, gen, bytes(key), 48)[0] == kbtree.FALLBACK
    # Depth exhausted: a tree deeper than max_depth is not followed.
    arr = readonly(np.frombuffer(image, np.uint8).copy())
    verified = np.zeros(len(image) // 4096, np.uint64)
    got = call(mode, kbtree.lookup, arr, np.uint64(root_page), np.uint64(root_gen), key,
               verified, 1)
    assert int(got[0]) == kbtree.FALLBACK
