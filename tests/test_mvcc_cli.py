"""``cart snapshot``, ``cart compact``, ``cart readers`` and stale readers in ``cart check``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import cartridge
from cartridge.cli import main


def _make(path) -> None:
    with cartridge.create(path) as c:
        for i in range(40):
            c.write(f"/f{i}", bytes([i]) * 50_000)
        c.commit()
        c.snapshot("base")
        for i in range(0, 40, 2):
            c.delete(f"/f{i}")
        c.write("/f1", b"changed")
        c.write("/new", b"n")


def test_snapshot_commands(tmp_path, capsys):
    path = str(tmp_path / "c.cart")
    _make(path)
    assert main(["snapshot", "create", path, "two"]) == 0
    capsys.readouterr()
    assert main(["snapshot", "list", path, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in listed] == ["base", "two"]
    assert main(["snapshot", "diff", path, "base", "two"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "+ /new" in out and "- /f0" in out and "M /f1" in out
    assert main(["snapshot", "restore", path, "base"]) == 0
    assert main(["snapshot", "delete", path, "two"]) == 0
    capsys.readouterr()
    assert main(["snapshot", "delete", path, "two"]) == 2
    assert "no snapshot named 'two'" in capsys.readouterr().err
    assert main(["snapshot", "create", path]) == 2
    with cartridge.open(path, "r") as r:
        assert r.exists("/f0") and not r.exists("/new")
        assert [s.name for s in r.snapshots()] == ["base"]


def test_compact_command(tmp_path, capsys):
    path = str(tmp_path / "c.cart")
    _make(path)
    with cartridge.open(path) as c:
        c.delete_snapshot("base")
    before = os.path.getsize(path)
    assert main(["compact", path, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["size_after"] == os.path.getsize(path) < before
    assert main(["check", path]) == 0


HOLDER = textwrap.dedent("""
    import sys, time, cartridge
    r = cartridge.open(sys.argv[1], "r")
    t = r.reader()
    print("pinned", flush=True)
    time.sleep(600)
""")


def test_readers_and_check_report_stale_slots(tmp_path, capsys):
    path = str(tmp_path / "c.cart")
    _make(path)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, path], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "pinned"
    assert main(["readers", path]) == 0
    out = capsys.readouterr().out
    assert f"pid {proc.pid}" in out and "alive" in out
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert main(["check", path]) == 0
    assert "stale reader slot" in capsys.readouterr().out
    assert main(["readers", path, "--clear-stale", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {s["pid"] for s in report["cleared"]} == {proc.pid} and report["readers"] == []
    assert main(["check", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stale_readers"] == []
