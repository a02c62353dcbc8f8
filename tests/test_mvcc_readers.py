"""Reader processes check commit invariants while a writer commits as fast as it can.

Each commit rewrites a random subset of files (each carries its commit number
and a SHA-256 of itself), sometimes deletes or adds some, and rewrites
``/manifest`` listing every file with the commit that wrote it.  Reader
processes (``mvcc_reader_worker.py``) must never see a torn file or a file
set that disagrees with the manifest of the same transaction.  Scale
(``CARTRIDGE_TEST_SCALE``): 6 seconds of reading by 2 readers.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cartridge
from cartridge.testing import scale

pytestmark = pytest.mark.slow

SECONDS = 6 * scale()
READERS = 2
WORKER = Path(__file__).with_name("mvcc_reader_worker.py")


def _file(commit: int, size: int) -> bytes:
    body = b"%016d" % commit + random.Random(commit * 7919 + size).randbytes(size)
    return hashlib.sha256(body).digest() + body


def test_readers_never_see_torn_or_mixed_commits(tmp_path):
    path = tmp_path / "r.cart"
    rng = random.Random(7)
    w = cartridge.create(path)
    files = {f"/data/f{i}": 0 for i in range(12)}
    for name in files:
        w.write(name, _file(0, 20_000))
    w.write("/manifest", json.dumps({"files": files}).encode())
    w.commit()
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(path), str(SECONDS)],
                              stdout=subprocess.PIPE, text=True) for _ in range(READERS)]
    commit = 0
    deadline = time.monotonic() + SECONDS + 60
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        commit += 1
        for name in rng.sample(sorted(files), 3):
            if name != "/data/f0" and rng.random() < 0.2:
                w.delete(name)
                del files[name]
            else:
                w.write(name, _file(commit, rng.choice([100, 3000, 20_000, 150_000])))
                files[name] = commit
        if len(files) < 12:
            name = f"/data/n{commit}"
            w.write(name, _file(commit, 5000))
            files[name] = commit
        w.write("/manifest", json.dumps({"files": files}).encode())
        w.commit()
        if commit % 200 == 0:
            w.compact(max_pages=64)  # compaction interleaved with live readers
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    txns = [int(o.split()[1]) for o in outs]
    assert min(txns) > 0 and commit > 20, (txns, commit)
    assert w.verify().ok
    w.close()
