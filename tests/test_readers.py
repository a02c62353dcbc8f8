"""The reader table: pinned generations are never reused under a reader."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import cartridge


def _version(i: int, size: int = 300_000) -> bytes:
    body = hashlib.sha256(str(i).encode()).digest() * (size // 32)
    return hashlib.sha256(body).digest() + body


def _valid(data: bytes) -> bool:
    return hashlib.sha256(data[32:]).digest() == data[:32]


def test_pinned_generation_survives_many_commits(tmp_path):
    path = tmp_path / "t.cart"
    w = cartridge.create(path)
    w.write("/f", _version(0))
    w.commit()
    r = cartridge.open(path, "r")
    r.env.pin(r.generation)  # as if a read call were in progress on generation 2
    entry = r.txn.catalog.get("/f")
    size_before = os.path.getsize(path)
    for i in range(1, 30):
        w.write("/f", _version(i))
        w.commit()
    # The reader's generation is intact: its pages were not reused.
    assert r.txn.read_entry(entry, 0, None) == _version(0)
    assert os.path.getsize(path) > size_before  # the writer grew the file instead
    r.env.unpin()
    for i in range(30, 40):
        w.write("/f", _version(i))
        w.commit()
    grown = os.path.getsize(path)
    for i in range(40, 80):
        w.write("/f", _version(i))
        w.commit()
    assert os.path.getsize(path) == grown  # once unpinned, space is reused
    assert w.verify().ok
    r.close()
    w.close()


READER = textwrap.dedent("""
    import hashlib, sys, cartridge
    path, seconds = sys.argv[1], float(sys.argv[2])
    import time
    r = cartridge.open(path, "r")
    end = time.monotonic() + seconds
    reads = 0
    while time.monotonic() < end:
        data = r.read("/f")
        if hashlib.sha256(data[32:]).digest() != data[:32]:
            print("TORN", reads, flush=True)
            sys.exit(1)
        reads += 1
    print("OK", reads, flush=True)
""")


def test_reader_process_never_sees_torn_data(tmp_path):
    """A reader process reads a file the writer keeps rewriting and committing."""
    path = tmp_path / "t.cart"
    w = cartridge.create(path)
    w.write("/f", _version(0))
    w.commit()
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-c", READER, str(path), "4"],
                            stdout=subprocess.PIPE, text=True, env=env)
    i = 1
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        w.write("/f", _version(i))
        w.commit()
        i += 1
    out, _ = proc.communicate(timeout=60)
    w.close()
    assert proc.returncode == 0, out
    reads = int(out.split()[1])
    assert reads > 0 and i > 10, (reads, i)


HOLDER = textwrap.dedent("""
    import sys, time, cartridge
    r = cartridge.open(sys.argv[1], "r")
    r.env.pin(r.generation)
    print("pinned", r.generation, flush=True)
    time.sleep(600)
""")


def test_killed_reader_slot_is_stale_and_released(tmp_path):
    path = tmp_path / "t.cart"
    w = cartridge.create(path)
    w.write("/f", _version(0))
    w.commit()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline().split()
    assert line[0] == "pinned"
    pinned = int(line[1])
    live = [s for s in w.readers() if s.pid == proc.pid]
    assert live and live[0].alive and live[0].generation == pinned
    for i in range(1, 10):
        w.write("/f", _version(i))
        w.commit()
    assert w.info().pending_pages > 0  # held back by the pin
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    stale = [s for s in w.readers() if s.pid == proc.pid]
    assert stale and not stale[0].alive
    size = os.path.getsize(path)
    for i in range(10, 60):
        w.write("/f", _version(i))
        w.commit()
    assert os.path.getsize(path) == size  # the dead reader holds nothing back
    assert w.info().pending_pages <= 2 * 80
    w.close()


def test_locking_false_needs_no_lock_file(tmp_path):
    path = tmp_path / "t.cart"
    with cartridge.create(path, locking=False) as c:
        c.write("/a", b"x")
    assert not os.path.exists(str(path) + "-lock")
    with cartridge.open(path, "r", locking=False) as r:
        assert r.read("/a") == b"x"
        assert r.readers() == []


def test_unusable_lock_file_names_the_fix(tmp_path):
    path = tmp_path / "t.cart"
    with cartridge.create(path, locking=False) as c:
        c.write("/a", b"x")
    os.mkdir(str(path) + "-lock")  # something that cannot be opened as the table
    with pytest.raises(cartridge.LockedError, match="locking=False"):
        cartridge.open(path, "r")
    with cartridge.open(path, "r", locking=False) as r:
        assert r.read("/a") == b"x"
