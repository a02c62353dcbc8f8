"""SIGKILL crash test with compression and encryption on (the ageing workload of
test_crash.py on an encrypted container whose files default to zstd).

Scale (``CARTRIDGE_TEST_SCALE``): 20 kills.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import cartridge
from cartridge.testing import scaled
from cartridge.testing.workloads.files import Ageing

pytestmark = pytest.mark.slow

KEY = bytes(range(100, 132))
SEED = 20240611


def test_sigkill_with_compression_and_encryption(tmp_path: Path) -> None:
    path = tmp_path / "sealed.cart"
    cartridge.create(path, key=KEY, compression="zstd").close()
    ageing = Ageing(path, "mixed", SEED, key=KEY, compressible=True)
    ageing.run(scaled(20))
    print(ageing.summary())
    assert ageing.kills and ageing.batches > ageing.kills, ageing.summary()
    with cartridge.open(path, "r+", key=KEY) as cart:
        # Whether the last acknowledged batch left a big file is up to the kill
        # timing; one more (compressible, written after the kills) makes sure
        # the check below always has something to check.
        cart.write("/after-kills.txt", b"sealed and squeezed " * 20_000)
        cart.commit()
        sizes = [(cart.stat(p).size, cart.stat(p).stored_size) for p, i in cart.walk("/")
                 if i.kind == "file" and i.size > 100_000]
        assert cart.info().encrypted and cart.verify().ok
        last = cart.stat("/after-kills.txt")
    assert last.stored_size < 0.05 * last.size, last
    # The workload's files mix compressible runs with overwrites and holes, so
    # only the total is bound to shrink (zstd stores incompressible chunks raw).
    assert sum(stored for _s, stored in sizes) < 0.9 * sum(size for size, _s in sizes), sizes
    raw = path.read_bytes()
    assert not any(b"/d%d/f" % i in raw for i in range(4))  # 5 bytes: no chance hits
    assert b"after-kills" not in raw and b"sealed and squeezed" not in raw
