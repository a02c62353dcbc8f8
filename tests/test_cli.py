"""Tests for the ``cart`` command line (the ``cartridge.cli`` package).

Most tests call ``cli.main([...])`` in-process and read what it printed with
pytest's capture fixtures; a few run ``python -m cartridge.cli`` as a real
subprocess, so the ``__main__`` guard, real pipes for stdin/stdout and the
exit status seen by a shell are covered too.  Results are checked against the
library itself (``cartridge.open(...).read`` / ``info``) or against the host
files that went in, never against the CLI's own output alone.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cartridge
from cartridge import cli
from cartridge.cli import output, streams

PAGE = 4096
LONG_LINE = re.compile(r"^([d-][rwx-]{9}) +(\d+) (\d{4}-\d\d-\d\d \d\d:\d\d) (/.*)$")


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """Run ``cart argv`` in-process; return (exit code, stdout, stderr)."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_process(*argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """Run ``python -m cartridge.cli argv`` as a real process."""
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", "/tmp/numba-cache")
    return subprocess.run([sys.executable, "-m", "cartridge.cli", *argv], input=stdin,
                          capture_output=True, env=env, timeout=120, check=False)


def flip_byte(path: Path, offset: int) -> None:
    """Invert one byte of a file in place."""
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(1)
        f.seek(offset)
        f.write(bytes([old[0] ^ 0xFF]))


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A small committed container with nested files, metadata and an empty dir."""
    path = tmp_path / "sample.cart"
    with cartridge.create(path) as cart:
        cart.write("/docs/readme.txt", b"hello\n", metadata={"lang": "en", "raw": b"\x00\xff"})
        cart.write("/data/2024/a.bin", bytes(range(256)) * 400)
        cart.write("/data/2024/b.bin", b"\x01" * 10)
        cart.mkdir("/empty")
    return path


@pytest.fixture
def host_tree(tmp_path: Path) -> Path:
    """A host directory tree: nested dirs, an empty dir, text and binary files."""
    root = tmp_path / "tree"
    (root / "a" / "b").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "top.txt").write_bytes(b"top\n")
    (root / "a" / "one.bin").write_bytes(os.urandom(70_000))
    (root / "a" / "b" / "two.bin").write_bytes(os.urandom(5))
    (root / "a" / "b" / "zero").write_bytes(b"")
    return root


def host_files(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` relative to it: file bytes, or None for a directory."""
    out: dict[str, bytes | None] = {}
    for p in root.rglob("*"):
        out[p.relative_to(root).as_posix()] = p.read_bytes() if p.is_file() else None
    return out


# ------------------------------------------------------------------- demo
def test_demo_builds_and_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo.cart").write_bytes(b"an old file that is not a container")
    code, out, err = run(capsys, "demo")
    assert code == 0, err
    assert "intact" in out and "verify: OK" in out and "/data/2024/a.bin" in out
    with cartridge.open(tmp_path / "demo.cart", "r") as cart:
        names = cart.list("/", recursive=True)
        assert {"/docs/readme.txt", "/data/2024/a.bin", "/data/2024/b.bin"} <= set(names)
        assert any(cart.stat(p).metadata for p in names)
        assert cart.verify().ok


def test_demo_dir_option(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _out, _err = run(capsys, "demo", "--dir", str(tmp_path / "sub"))
    assert code == 0
    assert (tmp_path / "sub" / "demo.cart").exists()


# --------------------------------------------------------------------- ls
def test_ls_children_and_recursive(sample: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "ls", str(sample))
    assert code == 0
    assert out.splitlines() == ["/data", "/docs", "/empty"]
    code, out, _ = run(capsys, "ls", str(sample), "/data", "-r")
    assert out.splitlines() == ["/data/2024", "/data/2024/a.bin", "/data/2024/b.bin"]
    code, out, _ = run(capsys, "ls", str(sample), "/docs/readme.txt")
    assert out.splitlines() == ["/docs/readme.txt"]


def test_ls_long(sample: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "ls", "-l", "-r", str(sample))
    assert code == 0
    rows = {}
    for line in out.splitlines():
        m = LONG_LINE.match(line)
        assert m, line
        rows[m[4]] = (m[1], int(m[2]))
    assert rows["/data/2024/a.bin"] == ("-rw-r--r--", 256 * 400)
    assert rows["/data"] == ("drwxr-xr-x", 0)
    assert len(rows) == 7


def test_ls_json(sample: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "ls", str(sample), "-r", "--json")
    assert code == 0
    records = {r["path"]: r for r in json.loads(out)}
    assert set(records) == {"/data", "/data/2024", "/data/2024/a.bin", "/data/2024/b.bin",
                            "/docs", "/docs/readme.txt", "/empty"}
    readme = records["/docs/readme.txt"]
    assert set(readme) == {"path", "kind", "size", "mtime", "ctime", "mode", "metadata",
                           "stored_size", "compression"}
    assert readme["kind"] == "file" and readme["size"] == 6 and readme["mode"] == 0o644
    assert readme["metadata"] == {"lang": "en", "raw": "00ff"}
    assert records["/empty"]["kind"] == "dir"
    with cartridge.open(sample, "r") as cart:
        assert readme["mtime"] == cart.stat("/docs/readme.txt").mtime


def test_ls_missing_path_is_an_error(sample: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "ls", str(sample), "/nope")
    assert code == 2 and out == ""
    assert err.startswith("cart: error:") and "/nope" in err


# ------------------------------------------------------------------- info
def test_info_json_matches_library(sample: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "info", str(sample), "--json")
    assert code == 0
    with cartridge.open(sample, "r") as cart:
        got, want = json.loads(out), dataclasses.asdict(cart.info())
    assert {k: got[k] for k in want if k != "cache"} == {k: v for k, v in want.items()
                                                         if k != "cache"}
    assert got["ratio"] == 1.0 and got["data_logical"] == got["data_stored"] > 0


def test_info_human_is_aligned(sample: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "info", str(sample))
    assert code == 0
    lines = out.splitlines()
    fields = [f.name for f in dataclasses.fields(cartridge.ContainerInfo)]
    assert [line.split(":", 1)[0] for line in lines][: len(fields)] == fields
    value_columns = {len(line) - len(line.split(":", 1)[1].lstrip()) for line in lines}
    assert len(value_columns) == 1
    size = os.path.getsize(sample)
    assert f"({size} bytes)" in out and "KiB" in out
    assert output.human_size(512) == "512 B" and output.human_size(3 << 20) == "3.0 MiB"


# -------------------------------------------------------------------- cat
def test_cat_streams_bytes(sample: Path, capsysbinary: pytest.CaptureFixture) -> None:
    assert cli.main(["cat", str(sample), "/data/2024/a.bin"]) == 0
    out, _ = capsysbinary.readouterr()
    assert out == bytes(range(256)) * 400


def test_cat_directory_is_an_error(sample: Path, capsys: pytest.CaptureFixture) -> None:
    code, _out, err = run(capsys, "cat", str(sample), "/docs")
    assert code == 2 and "is a directory" in err and "Traceback" not in err


# --------------------------------------------------------------- put / get
def test_put_get_large_file_round_trip(tmp_path: Path,
                                       capsysbinary: pytest.CaptureFixture) -> None:
    payload = os.urandom(3_000_000)
    src = tmp_path / "big.bin"
    src.write_bytes(payload)
    cart_path = tmp_path / "new.cart"  # put creates the container
    assert cli.main(["put", str(cart_path), str(src), "/in/big.bin"]) == 0
    with cartridge.open(cart_path, "r") as cart:
        assert cart.read("/in/big.bin") == payload
        assert cart.verify(data=True).ok
    dest = tmp_path / "out.bin"
    assert cli.main(["get", str(cart_path), "/in/big.bin", str(dest)]) == 0
    assert dest.read_bytes() == payload
    outdir = tmp_path / "outdir"
    outdir.mkdir()
    assert cli.main(["get", str(cart_path), "/in/big.bin", str(outdir)]) == 0
    assert (outdir / "big.bin").read_bytes() == payload
    capsysbinary.readouterr()
    assert cli.main(["get", str(cart_path), "/in/big.bin", "-"]) == 0
    assert capsysbinary.readouterr().out == payload


def test_put_into_existing_directory_keeps_the_name(sample: Path, tmp_path: Path) -> None:
    src = tmp_path / "note.txt"
    src.write_bytes(b"note")
    assert cli.main(["put", str(sample), str(src), "/docs"]) == 0
    with cartridge.open(sample, "r") as cart:
        assert cart.read("/docs/note.txt") == b"note"
        assert cart.read("/docs/readme.txt") == b"hello\n"


def test_put_get_directory_tree(tmp_path: Path, host_tree: Path) -> None:
    cart_path = tmp_path / "tree.cart"
    assert cli.main(["put", str(cart_path), str(host_tree), "/t"]) == 0
    with cartridge.open(cart_path, "r") as cart:
        inside = {p[len("/t/"):]: (cart.read(p) if i.kind == "file" else None)
                  for p, i in cart.walk("/t")}
        assert cart.stat("/t").kind == "dir"
    assert inside == host_files(host_tree)
    out = tmp_path / "out"
    assert cli.main(["get", str(cart_path), "/t", str(out)]) == 0
    assert host_files(out) == host_files(host_tree)


def test_put_tree_skips_the_container_itself(tmp_path: Path, host_tree: Path) -> None:
    cart_path = host_tree / "inside.cart"
    assert cli.main(["put", str(cart_path), str(host_tree), "/"]) == 0
    with cartridge.open(cart_path, "r") as cart:
        assert not cart.exists("/inside.cart")
        assert cart.read("/a/b/two.bin") == (host_tree / "a" / "b" / "two.bin").read_bytes()


def test_put_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(100_000)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    cart_path = tmp_path / "s.cart"
    assert cli.main(["put", str(cart_path), "-", "/from/stdin"]) == 0
    with cartridge.open(cart_path, "r") as cart:
        assert cart.read("/from/stdin") == data


def test_put_missing_source_does_not_create_container(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    cart_path = tmp_path / "never.cart"
    code, _out, err = run(capsys, "put", str(cart_path), str(tmp_path / "missing"), "/x")
    assert code == 2 and "No such file" in err and "Traceback" not in err
    assert not cart_path.exists()


def test_failed_tree_put_rolls_back(sample: Path, host_tree: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    # /t/top.txt is a directory in the container, so copying the host file
    # top.txt fails after a/one.bin etc. were already streamed in.
    with cartridge.open(sample) as cart:
        cart.mkdir("/t/top.txt")
    with cartridge.open(sample, "r") as cart:
        before = cart.generation
    code, _out, err = run(capsys, "put", str(sample), str(host_tree), "/t")
    assert code == 2 and "/t/top.txt" in err
    with cartridge.open(sample, "r") as cart:
        assert cart.generation == before
        assert cart.list("/t", recursive=True) == ["/t/top.txt"]
        assert cart.verify().ok


def test_progress_bar_only_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(2 * streams.PIECE))
    monkeypatch.setattr(streams, "PROGRESS_MIN_BYTES", streams.PIECE)
    _code, _out, err = run(capsys, "put", str(tmp_path / "p.cart"), str(src), "/quiet")
    assert err == ""  # captured stderr is not a terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _out, err = run(capsys, "put", str(tmp_path / "p.cart"), str(src), "/loud")
    assert code == 0 and "/loud:" in err and "2.00M" in err
    monkeypatch.setattr(streams, "PROGRESS_MIN_BYTES", 4 * streams.PIECE)
    _code, _out, err = run(capsys, "put", str(tmp_path / "p.cart"), str(src), "/small")
    assert err == ""  # terminal, but too small to be worth a bar


# ------------------------------------------------------------------ check
def test_check_clean(sample: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "check", str(sample))
    assert code == 0 and out.startswith("OK")
    code, out, _ = run(capsys, "check", str(sample), "--data", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["problems"] == []
    assert report["data_bytes_checked"] == 256 * 400  # the one chunked file


@pytest.fixture
def corrupt_tree(tmp_path: Path) -> tuple[Path, int]:
    """A container whose B+tree root page has one flipped byte; (path, page)."""
    path = tmp_path / "bad.cart"
    cart = cartridge.create(path)
    cart.write("/a.txt", b"a")
    cart.commit()
    # The last commit writes chunked data, so it is a full (two-sync) commit
    # and open cannot mistake the damage for a torn single-sync commit.
    cart.write("/big.bin", os.urandom(3 * PAGE))
    cart.commit()
    root = int(cart.txn.meta["root"]["page"])
    cart.close()
    flip_byte(path, root * PAGE + 100)
    return path, root


def test_check_corrupt_tree_page(corrupt_tree: tuple[Path, int],
                                 capsys: pytest.CaptureFixture) -> None:
    path, root = corrupt_tree
    code, out, err = run(capsys, "check", str(path))
    assert code == 1, out + err
    assert out.startswith("FAILED") and f"page {root}" in out
    code, out, _ = run(capsys, "check", str(path), "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    assert any(f"page {root}" in p for p in report["problems"])
    code, out, err = run(capsys, "ls", str(path))
    assert code == 2 and err.startswith("cart: error:") and "Traceback" not in err


@pytest.mark.parametrize("damage", ["header", "both meta pages", "not a container"])
def test_check_unopenable(sample: Path, capsys: pytest.CaptureFixture, damage: str) -> None:
    if damage == "header":
        flip_byte(sample, 100)
    elif damage == "both meta pages":
        flip_byte(sample, PAGE + 100)
        flip_byte(sample, 2 * PAGE + 100)
    else:
        sample.write_bytes(b"plain text\n" * 2000)
    code, out, err = run(capsys, "check", str(sample))
    assert code == 1 and "cannot open the container" in out and "Traceback" not in err
    code, out, _ = run(capsys, "check", str(sample), "--json")
    assert code == 1 and json.loads(out)["ok"] is False


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize("argv", [
    ["ls", "{missing}"],
    ["info", "{missing}"],
    ["cat", "{sample}", "/no/such/file"],
    ["get", "{sample}", "/docs/readme.txt", "{tmp}/no/such/dir/x"],
    ["get", "{sample}", "/docs", "-"],
    ["put", "{sample}", "{sample}", "/self"],
    ["ls", "{sample}", "/bad/../path"],
    ["check", "{missing}"],
])
def test_errors_exit_2_without_traceback(argv: list[str], sample: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    names = {"missing": str(tmp_path / "missing.cart"), "sample": str(sample),
             "tmp": str(tmp_path)}
    code, _out, err = run(capsys, *(a.format(**names) for a in argv))
    assert code == 2
    assert err.startswith("cart: error: ") and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv", [
    ["put", "{sample}", "{sample_dir}", "/x", "--compression", "zstd", "--level", "999"],
    ["put", "{sample}", "{sample_dir}", "/x", "--compression", "lz4", "--level", "-5"],
    ["ls", "{sample}", "--key-file", "{short_key}"],
    ["compact", "{sample}", "--max-pages", "0"],
    ["sql", "{sample}", "/db/none.db", "--readonly", "-c", "select 1"],
])
def test_bad_option_values_exit_2_without_traceback(argv: list[str], sample: Path,
                                                    host_tree: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    """Values the parser accepts but the library refuses (ValueError, apsw's CantOpenError)."""
    short_key = tmp_path / "short.key"
    short_key.write_bytes(b"not 32 bytes")
    names = {"sample": str(sample), "sample_dir": str(host_tree), "short_key": str(short_key)}
    with cartridge.open(sample, "r") as cart:
        before = cart.generation
    code, _out, err = run(capsys, *(a.format(**names) for a in argv))
    assert code == 2
    assert err.startswith("cart: error: ") and len(err.splitlines()) == 1, err
    with cartridge.open(sample, "r") as cart:
        assert cart.generation == before and not cart.exists("/x")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture) -> None:
    code, _out, err = run(capsys)
    assert code == 2 and "usage: cart" in err
    code, _out, err = run(capsys, "ls")
    assert code == 2 and "usage: cart ls" in err
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "check" in out


def test_locked_container_is_an_error(sample: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "x"
    src.write_bytes(b"x")
    with cartridge.open(sample, "r+"):
        code, _out, err = run(capsys, "put", str(sample), str(src), "/x")
    assert code == 2 and "open for writing" in err


# ------------------------------------------------------------ subprocesses
def test_subprocess_stdin_put_and_error(tmp_path: Path) -> None:
    # Two real processes only: each pays for importing numba.
    payload = os.urandom(300_000)
    cart_path = tmp_path / "p.cart"
    put = run_process("put", str(cart_path), "-", "/piped.bin", stdin=payload)
    assert put.returncode == 0, put.stderr
    assert put.stdout == b"" and put.stderr == b""
    with cartridge.open(cart_path, "r") as cart:
        assert cart.read("/piped.bin") == payload
    missing = run_process("cat", str(cart_path), "/missing.bin")
    assert missing.returncode == 2 and missing.stdout == b""
    assert missing.stderr.startswith(b"cart: error: ") and b"Traceback" not in missing.stderr
    assert b"/missing.bin" in missing.stderr


def test_encrypted_compressed_put_info_check(tmp_path: Path, capsys: pytest.CaptureFixture
                                             ) -> None:
    """put --compression zstd into a new password container; info shows codec, ratio,
    encryption; check --data needs the password."""
    src = tmp_path / "text.txt"
    src.write_bytes(b"the same line again\n" * 20000)
    cart = str(tmp_path / "enc.cart")
    assert run(capsys, "put", "--password", "pw", "--compression", "zstd", cart, str(src),
               "/t.txt")[0] == 0
    code, out, _ = run(capsys, "info", "--password", "pw", cart)
    assert code == 0 and "AES-256-GCM" in out and "zstd: 1 files" in out
    ratio = float(out.split("ratio:")[1].split("x")[0])
    assert ratio > 20
    assert run(capsys, "check", "--data", "--password", "pw", cart)[0] == 0
    code, _, err = run(capsys, "check", "--data", cart)
    assert code == 2 and "encrypted" in err
    code, _, err = run(capsys, "ls", "--password", "nope", cart)
    assert code == 2 and "wrong key" in err
    key = tmp_path / "k.hex"
    key.write_text("ab" * 32)
    assert run(capsys, "put", "--key-file", str(key), str(tmp_path / "k.cart"), str(src),
               "/t")[0] == 0
    code, out, _ = run(capsys, "cat", "--key-file", str(key), str(tmp_path / "k.cart"), "/t")
    assert code == 0
