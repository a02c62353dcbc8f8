"""rekey(): everything re-encrypted under the new key, crash-safely.

Scale (``CARTRIDGE_TEST_SCALE``): 8 SIGKILLs during a rekey.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

import cartridge
from cartridge.testing import scaled
from cartridge.testing.crash import KillPoint, Worker, count_calls, worker_argv

A, B = bytes(range(32)), bytes(range(32, 64))
KILLS = scaled(8)


def contents(c: cartridge.Cartridge) -> dict:
    return {p: (c.read(p) if i.kind == "file" else None, i.metadata) for p, i in c.walk("/")}


def build(path: Path) -> dict:
    rng = np.random.default_rng(0)
    with cartridge.create(path, key=A, compression="zstd") as c:
        for i in range(30):
            n = int(rng.integers(0, 400_000))
            c.write(f"/d{i % 4}/f{i}", rng.integers(0, 4, n, dtype=np.uint8).tobytes(),
                    metadata={"i": i})
        c.commit()
        return contents(c)


def test_rekey_key_and_password(tmp_path):
    path = tmp_path / "r.cart"
    want = build(path)
    old_raw = path.read_bytes()
    with cartridge.open(path, key=A) as c:
        c.rekey(B)
        assert contents(c) == want
    with pytest.raises(cartridge.WrongKeyError):
        cartridge.open(path, key=A)
    with cartridge.open(path, key=B) as c:
        assert contents(c) == want and c.verify(data=True).ok
        c.rekey(new_password="s3cret")
    with pytest.raises(cartridge.WrongKeyError):
        cartridge.open(path, key=B)
    with cartridge.open(path, password="s3cret") as c:
        assert contents(c) == want and c.verify(data=True).ok
        c.rekey("positional")  # a str is a password
        c.rekey(new_password="s3cret")
    # every reachable page was rewritten: none of the reachable ciphertext is old
    new_raw = path.read_bytes()
    with cartridge.open(path, "r", password="s3cret") as c:
        pages = [int(c.txn.meta["root"]["page"])]
        pages += [rec[0] for e in ("/d0/f0", "/d1/f1") if not c.txn.entry(e).flags & 1
                  for _i, rec in c.txn.catalog.chunks(c.txn.entry(e).file_id)]
    for p in pages:
        assert new_raw[p * 4096 : p * 4096 + 4096] != old_raw[p * 4096 : p * 4096 + 4096]


def test_rekey_refusals(tmp_path):
    with cartridge.create(tmp_path / "p.cart") as c, pytest.raises(cartridge.FormatError):
        c.rekey(B)
    with cartridge.create(tmp_path / "e.cart", key=A) as c:
        with pytest.raises(ValueError):
            c.rekey()
        with pytest.raises(ValueError):
            c.rekey(b"short")
    with cartridge.open(tmp_path / "e.cart", "r", key=A) as c, pytest.raises(
            cartridge.ReadOnlyError):
        c.rekey(B)


@pytest.mark.slow
def test_sigkill_during_rekey(tmp_path):
    """Kill rekeys at seeded depths: the container opens with exactly one of the two
    keys and holds the same contents."""
    path = tmp_path / "k.cart"
    want = build(path)
    probe = tmp_path / "probe.cart"
    probe.write_bytes(path.read_bytes())
    with cartridge.open(probe, key=A) as c:  # how many Python calls one rekey makes here
        span = count_calls(lambda: c.rekey(B))
    current, other = A, B
    rng = random.Random(7)
    finished = killed = 0
    for _ in range(KILLS):
        # Depths up to 1.2 spans: most kills land inside the rekey, a few after it.
        point = KillPoint("rekey", calls=rng.randint(1, int(1.2 * span)))
        last = Worker(worker_argv("cartridge.testing.workloads.rekey", str(path),
                                  current.hex(), other.hex())).start().run_to(point).last
        finished += last.name == "done"
        killed += last.name == "rekey"
        opened = []
        for key in (current, other):
            try:
                with cartridge.open(path, "r", key=key) as c:
                    assert c.verify(data=True).ok
                    assert contents(c) == want
                    opened.append(key)
            except cartridge.WrongKeyError:
                pass
        assert len(opened) == 1, f"{len(opened)} keys open the container"
        if other in opened:
            current, other = other, current
    print(f"{killed} rekeys killed, {finished} finished")
    assert killed > 0
