"""The ``cart`` command: look inside a container from the shell.

Why a command-line tool at all: a container is one opaque file, and the first
thing anyone does with an opaque file is ask what is in it, copy something in
or out, and ask whether it is healthy.  ``cart`` answers those questions
without a Python prompt — ``ls``, ``info``, ``cat``, ``put``, ``get`` and
``check`` — and ``cart demo`` builds a small container to try them on.

Design rules, and why:

* **Public API only.**  Every subcommand is a few calls on
  :class:`cartridge.Cartridge`; nothing here reaches into the pager or the
  catalog.  If a subcommand needs something the API lacks, the API is what
  should grow, so library users get it too.
* **Streaming.**  File bytes move through ``Cartridge.open_file`` and
  :func:`shutil.copyfileobj` in 1 MiB pieces, so copying a 50 GiB file in or
  out costs 1 MiB of memory, the same as ``cp``.
* **One transaction per command.**  ``put`` opens the container read-write,
  copies everything and commits once; if anything fails half-way the context
  manager rolls the whole copy back, so a failed ``put`` of a directory leaves
  the container exactly as it was.
* **Exit codes are a contract.**  0 means success; 1 means ``check`` found
  damage (including a container too damaged to open); 2 means the command
  could not do what was asked (missing path, locked container, bad usage).
  Expected failures — every :class:`~cartridge.CartridgeError` and every
  :class:`OSError` on a host file — print one ``cart: error: ...`` line on
  stderr, never a traceback; a traceback from ``cart`` is a bug.
* **Progress bars only where a human watches.**  The library reports progress
  through callbacks and never draws; this module draws a tqdm bar on stderr,
  and only when stderr is a terminal and the copy is large enough to be worth
  watching, so pipes and scripts see clean output.

Human output is short and aligned; ``--json`` output is for scripts and keeps
every field (bytes metadata values are hex-encoded, since JSON has no bytes).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import posixpath
import shutil
import stat as stat_mod
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import numpy as np
from tqdm import tqdm
from tqdm.utils import CallbackIOWrapper

import cartridge

from . import cli_mvcc
from .container import ContainerInfo, FileInfo
from .errors import (
    CartridgeError,
    CorruptionError,
    FormatError,
    InvalidPathError,
    IsADirectoryError,
    NotFoundError,
)
from .verify import VerifyReport

__all__ = ["main"]

#: Bytes moved per read/write call when streaming file contents.
PIECE = 1 << 20

#: Copies larger than this get a progress bar (when stderr is a terminal).
PROGRESS_MIN_BYTES = 8 << 20

#: ContainerInfo fields that count bytes, shown humanized by ``cart info``.
_BYTE_FIELDS = frozenset({"size", "page_size", "free"})


# ------------------------------------------------------------------ helpers
def human_size(n: float) -> str:
    """Format a byte count with binary units, e.g. ``1.5 MiB``.

    Parameters
    ----------
    n : float
        Number of bytes.

    Returns
    -------
    str
        ``"512 B"`` below 1 KiB, otherwise one decimal and the largest unit
        that keeps the number at or above 1.
    """
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            break
    return f"{n:.1f} {unit}"


def _info_to_json(info: FileInfo) -> dict[str, Any]:
    """A JSON-ready dict of a :class:`FileInfo` (bytes metadata as hex)."""
    record = dataclasses.asdict(info)
    for key in ("dtype", "shape", "chunks"):  # arrays only: plain entries keep their keys
        del record[key]
    if info.is_array:
        record["dtype"] = str(info.dtype)
        record["shape"] = list(info.shape)
        record["chunks"] = None if info.chunks is None else list(info.chunks)
    record["metadata"] = {
        key: value.hex() if isinstance(value, bytes) else value
        for key, value in info.metadata.items()
    }
    return record


def _long_line(info: FileInfo, size_width: int) -> str:
    """One ``ls -l`` style line: permissions, size, mtime, path."""
    kind_bit = stat_mod.S_IFDIR if info.kind == "dir" else stat_mod.S_IFREG
    mode = stat_mod.filemode(kind_bit | info.mode)
    mtime = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.mtime))
    line = f"{mode} {info.size:>{size_width}} {mtime} {info.path}"
    return f"{line}  {_array_text(info)}" if info.is_array else line


def _array_text(info: FileInfo) -> str:
    """``array float32 (3, 4)`` (``chunks (..)`` added for chunked datasets)."""
    text = f"array {info.dtype} {info.shape}"
    return text if info.chunks is None else f"{text} chunks {info.chunks}"


def _print_long(infos: list[FileInfo]) -> None:
    width = max((len(str(i.size)) for i in infos), default=1)
    for info in infos:
        print(_long_line(info, width))


def _print_fields(fields: dict[str, str], indent: str = "") -> None:
    """Print ``key: value`` lines with the values aligned in one column."""
    width = max(len(key) for key in fields) + 1
    for key, value in fields.items():
        print(f"{indent}{key + ':':<{width}} {value}")


def _container_fields(info: ContainerInfo) -> dict[str, str]:
    """Human-readable values of every :class:`ContainerInfo` field."""
    fields = {}
    for key, value in dataclasses.asdict(info).items():
        if key in _BYTE_FIELDS:
            fields[key] = f"{human_size(value)} ({value} bytes)"
        elif key == "fragmentation":
            fields[key] = f"{value:.1%}"
        else:
            fields[key] = str(value)
    return fields


def _describe_error(exc: BaseException) -> str:
    """The one-line message ``cart`` prints for an expected failure."""
    if isinstance(exc, CartridgeError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


@contextlib.contextmanager
def _progress(total: int, desc: str) -> Iterator[tqdm | None]:
    """A byte-counting tqdm bar on stderr, or None when nobody would see it.

    A bar is drawn only for copies over :data:`PROGRESS_MIN_BYTES` and only
    when stderr is a terminal, so redirected output stays clean.
    """
    if total <= PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    with tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
              file=sys.stderr, leave=False) as bar:
        yield bar


def _copy(src: IO[bytes], dst: IO[bytes], bar: tqdm | None) -> None:
    """Stream ``src`` to ``dst`` in :data:`PIECE` pieces, advancing ``bar``."""
    if bar is not None:
        dst = CallbackIOWrapper(bar.update, dst, "write")
    shutil.copyfileobj(src, dst, PIECE)


def _stdin_size() -> int:
    """Size of stdin when it is a regular file, else 0 (unknown)."""
    try:
        st = os.fstat(sys.stdin.buffer.fileno())
    except (OSError, ValueError, AttributeError):
        return 0
    return st.st_size if stat_mod.S_ISREG(st.st_mode) else 0


def _stdout_bytes() -> IO[bytes]:
    """The binary stream under ``sys.stdout`` (flushed text first)."""
    sys.stdout.flush()
    return sys.stdout.buffer


# -------------------------------------------------------------- subcommands
def cmd_demo(args: argparse.Namespace) -> int:
    """Build ``demo.cart``, then tour ls, stat, commit, reopen, verify, info."""
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, "demo.cart")
    readme = b"Hello from Cartridge: a whole filesystem in one file.\n"
    samples = os.urandom(200_000)
    print(f"Creating {path}")
    with cartridge.create(path, overwrite=True) as cart:
        cart.write("/docs/readme.txt", readme)
        cart.write("/data/2024/a.bin", samples,
                   metadata={"sensor": "north", "rate_hz": 250, "calibrated": True,
                             "key": b"\x01\x02"})
        cart.write("/data/2024/b.bin", bytes(range(256)) * 64)
        cart.append("/logs/events.log", b"boot\n")
        cart.append("/logs/events.log", b"ready\n")
        _demo_array(cart)
        print("\nEverything in it (cart ls -r -l):")
        _print_long([info for _path, info in cart.walk("/")])
        print("\nOne file's details (stat /data/2024/a.bin):")
        info = cart.stat("/data/2024/a.bin")
        _print_fields({
            "kind": info.kind,
            "size": human_size(info.size),
            "mode": stat_mod.filemode(stat_mod.S_IFREG | info.mode),
            "metadata": repr(info.metadata),
        }, indent="  ")
        cart.commit()
        print(f"\nCommitted: generation {cart.generation} is now durable.")
    with cartridge.open(path, "r") as cart:
        survived = (cart.read("/docs/readme.txt") == readme
                    and cart.read("/data/2024/a.bin") == samples)
        print(f"Reopened read-only: {len(cart.list('/', recursive=True))} paths, "
              f"contents {'intact' if survived else 'DIFFERENT'}.")
        report = cart.verify(data=True)
        verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        print(f"verify: {verdict} ({report.pages_checked} pages, "
              f"{human_size(report.data_bytes_checked)} of data checked)")
        print("\nContainer info (cart info):")
        _print_fields(_container_fields(cart.info()), indent="  ")
    print(f"\nTry: cart ls -r -l {path}   or   cart info {path} /arrays/stations")
    return 0 if survived and report.ok else 1


def _demo_array(cart: cartridge.Cartridge) -> None:
    """Store a structured numpy dataset and show that its view is zero-copy."""
    rng = np.random.default_rng(7)
    station = np.dtype([("id", "<u4"), ("name", "S8"),
                        ("pos", [("lat", "<f8"), ("lon", "<f8")]), ("temp", "<f4", (24,))])
    table = np.zeros(10_000, station)
    table["id"] = np.arange(table.size)
    table["name"] = [f"st{i:05d}".encode() for i in range(table.size)]
    table["pos"]["lat"] = rng.uniform(-90, 90, table.size)
    table["pos"]["lon"] = rng.uniform(-180, 180, table.size)
    table["temp"] = rng.normal(12, 8, (table.size, 24))
    cart.write_array("/arrays/stations", table, attrs={"units": {"temp": "degC"}})
    cart.commit()
    view = cart.view("/arrays/stations")
    print(f"\nA structured numpy dataset: {table.size} records of {station.itemsize} bytes "
          f"({human_size(table.nbytes)}) at /arrays/stations")
    print(f"  cart.view() -> {type(view).__name__} shape={view.shape}, writeable="
          f"{view.flags.writeable}, zero-copy (shares memory with the map): "
          f"{np.shares_memory(view, cart.mapping)}")
    print(f"  mean temperature of station 42: {view[42]['temp'].mean():.2f} "
          f"{cart.array('/arrays/stations').attrs['units']['temp']}, "
          f"equal to what was stored: {bool((view == table).all())}")


def cmd_ls(args: argparse.Namespace) -> int:
    """List a directory (or one file) inside the container."""
    with cartridge.open(args.cart, "r", **_secrets(args)) as cart:
        found = cart.list(args.path, recursive=args.recursive)
        if not found and not cart.exists(args.path):
            raise NotFoundError(f"no such file or directory: {args.path}", args.path)
        if args.json:
            print(json.dumps([_info_to_json(cart.stat(p)) for p in found], indent=2))
        elif args.long:
            _print_long([cart.stat(p) for p in found])
        else:
            for p in found:
                print(p)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Print the cheap container summary, or what one path holds (arrays: dtype, shape)."""
    with cartridge.open(args.cart, "r", **_secrets(args)) as cart:
        if args.path is not None:
            return _path_info(cart.stat(args.path), args.json)
        info = cart.info()
        data = _data_summary(cart)
    if args.json:
        print(json.dumps({**dataclasses.asdict(info), **data}, indent=2))
    else:
        fields = _container_fields(info)
        fields["compression"] = str(info.compression or "none") + " (default for new files)"
        fields["cache"] = ", ".join(f"{k} {v}" for k, v in info.cache.items())
        fields["encryption"] = "AES-256-GCM" if info.encrypted else "none"
        for name in ("data_logical", "data_stored"):
            fields[name] = f"{human_size(data[name])} ({data[name]} bytes)"
        fields["ratio"] = f"{data['ratio']:.2f}x"
        fields["codecs"] = ", ".join(f"{k}: {v} files" for k, v in data["codecs"].items()) or "-"
        _print_fields(fields)
    return 0


def _path_info(info: FileInfo, as_json: bool) -> int:
    """``cart info CART PATH``: the stat of one path."""
    if as_json:
        print(json.dumps(_info_to_json(info), indent=2))
        return 0
    fields = {"path": info.path, "kind": "array" if info.is_array else info.kind,
              "size": f"{human_size(info.size)} ({info.size} bytes)"}
    if info.is_array:
        fields.update(dtype=str(info.dtype), shape=str(info.shape))
        if info.chunks is not None:
            fields["chunks"] = str(info.chunks)
    fields["mode"] = stat_mod.filemode(stat_mod.S_IFREG | info.mode)
    fields["mtime"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.mtime))
    if info.metadata:
        fields["metadata"] = repr(info.metadata)
    _print_fields(fields)
    return 0


def _data_summary(cart: cartridge.Cartridge) -> dict[str, Any]:
    """Logical and stored bytes of every file, their ratio and the files per codec."""
    logical = stored = 0
    codecs: dict[str, int] = {}
    for path, entry in cart.walk("/"):
        if entry.kind != "file":
            continue
        st = cart.stat(path)
        logical += st.size
        stored += st.stored_size
        name = st.compression or "none"
        codecs[name] = codecs.get(name, 0) + 1
    return {"data_logical": logical, "data_stored": stored,
            "ratio": logical / stored if stored else 1.0, "codecs": codecs}


def _secrets(args: argparse.Namespace) -> dict[str, Any]:
    """``key=``/``password=`` from ``--key-file``, ``--password`` or $CARTRIDGE_PASSWORD."""
    if getattr(args, "key_file", None):
        with open(args.key_file, "rb") as f:
            raw = f.read().strip()
        try:
            key = bytes.fromhex(raw.decode("ascii")) if len(raw) == 64 else raw
        except (UnicodeDecodeError, ValueError):
            key = raw
        return {"key": key}
    password = getattr(args, "password", None) or os.environ.get("CARTRIDGE_PASSWORD")
    return {"password": password} if password else {}


def _compression(args: argparse.Namespace) -> dict[str, Any]:
    """``compression=``/``level=`` for files ``put`` writes (container default if unset)."""
    out: dict[str, Any] = {}
    if args.compression is not None:
        out["compression"] = None if args.compression == "none" else args.compression
    if args.level is not None:
        out["level"] = args.level
    return out


def _copy_out(cart: cartridge.Cartridge, path: str, dest: str, bar: tqdm | None) -> None:
    """Stream the container file ``path`` to the host file ``dest`` (``-``: stdout)."""
    with cart.open_file(path, "rb") as src:
        if dest == "-":
            out = _stdout_bytes()
            _copy(src, out, None)
            out.flush()
        else:
            with open(dest, "wb") as dst:
                _copy(src, dst, bar)


def cmd_cat(args: argparse.Namespace) -> int:
    """Stream one file's bytes to stdout."""
    with cartridge.open(args.cart, "r", **_secrets(args)) as cart:
        _copy_out(cart, args.path, "-", None)
    return 0


def _host_tree(root: str, dest: str, skip: os.stat_result
               ) -> tuple[list[str], list[tuple[str, str, int]]]:
    """Directories and ``(host, container, size)`` files to put from ``root``.

    Entries come out sorted so a put is deterministic; ``skip`` (the
    container's own file) is left out, since copying a container into itself
    would chase its own growing tail.
    """

    def fail(exc: OSError) -> None:
        raise exc

    dirs, files = [], []
    for here, subdirs, names in os.walk(root, onerror=fail):
        subdirs.sort()
        rel = os.path.relpath(here, root)
        target = dest if rel == "." else posixpath.join(dest, *rel.split(os.sep))
        dirs.append(target)
        for name in sorted(names):
            host = os.path.join(here, name)
            st = os.stat(host)
            if os.path.samestat(st, skip):
                continue
            files.append((host, posixpath.join(target, name), st.st_size))
    return dirs, files


def _open_source(host: str) -> contextlib.AbstractContextManager[IO[bytes]]:
    """Open a host file for reading; ``-`` is stdin (left open afterwards)."""
    return contextlib.nullcontext(sys.stdin.buffer) if host == "-" else open(host, "rb")


def cmd_put(args: argparse.Namespace) -> int:
    """Copy a host file, stdin or a host directory into the container."""
    # Stat the source first: a missing source must not create the container.
    src_stat = None if args.src == "-" else os.stat(args.src)
    with cartridge.open(args.cart, "a", **_secrets(args)) as cart:
        cart_stat = os.stat(args.cart)
        dirs: list[str] = []
        if src_stat is None:
            files = [("-", args.dest, _stdin_size())]
        elif stat_mod.S_ISDIR(src_stat.st_mode):
            dirs, files = _host_tree(args.src, args.dest, cart_stat)
        elif os.path.samestat(src_stat, cart_stat):
            raise InvalidPathError(f"{args.src} is the container itself; it cannot be put "
                                   "into itself")
        else:
            dest = args.dest
            if dest.endswith("/") or (cart.exists(dest) and cart.stat(dest).kind == "dir"):
                dest = posixpath.join(dest, os.path.basename(args.src))
            files = [(args.src, dest, src_stat.st_size)]
        for d in dirs:
            cart.mkdir(d, parents=True, exist_ok=True)
        with _progress(sum(size for _h, _c, size in files), args.dest) as bar:
            for host, inside, _size in files:
                with _open_source(host) as src, cart.open_file(
                        inside, "wb", **_compression(args)) as dst:
                    _copy(src, dst, bar)
        cart.commit()
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    """Copy a file (to a host path or stdout) or a directory tree out."""
    with cartridge.open(args.cart, "r", **_secrets(args)) as cart:
        info = cart.stat(args.path)
        if info.kind != "dir":
            dest = args.dest
            if dest != "-" and os.path.isdir(dest):
                dest = os.path.join(dest, posixpath.basename(info.path))
            with _progress(info.size, info.path) as bar:
                _copy_out(cart, info.path, dest, bar)
            return 0
        if args.dest == "-":
            raise IsADirectoryError(
                f"{info.path} is a directory; give a host directory to copy it into", info.path)
        tree = list(cart.walk(info.path))
        base = info.path.rstrip("/")
        os.makedirs(args.dest, exist_ok=True)
        with _progress(sum(i.size for _p, i in tree), info.path) as bar:
            for path, entry in tree:
                host = os.path.join(args.dest, *path[len(base) + 1 :].split("/"))
                if entry.kind == "dir":
                    os.makedirs(host, exist_ok=True)
                else:
                    _copy_out(cart, path, host, bar)
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    """SQL on a database inside the container (apsw's shell; see cartridge/sqlite/)."""
    import apsw
    import apsw.shell

    from . import sqlite

    secret = _secrets(args)
    # With secrets, the shell gets its own handle (the path form of connect()
    # opens containers without them); closed after the connection.
    own = cartridge.open(args.cart, "r" if args.readonly else "a", **secret) if secret else None
    try:
        conn = sqlite.connect(own or args.cart, args.db, readonly=args.readonly,
                              create=not args.readonly)
    except BaseException:
        if own is not None:
            own.close()
        raise
    try:
        shell = apsw.shell.Shell(db=conn, stdout=sys.stdout, stderr=sys.stderr)
        if args.command_text is None:
            shell.cmdloop()
            return 0
        for line in args.command_text:
            shell.process_complete_line(line)
        return 0
    except apsw.Error as exc:
        print(f"cart: error: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()
        if own is not None:
            own.close()


def cmd_check(args: argparse.Namespace) -> int:
    """Verify the last commit; exit 1 when anything is damaged."""
    try:
        with cartridge.open(args.cart, "r", **_secrets(args)) as cart:
            report = cart.verify(data=args.data)
    except (CorruptionError, FormatError) as exc:
        report = VerifyReport(ok=False, problems=[f"cannot open the container: {exc}"])
    stale = cli_mvcc.stale_readers(args)
    if args.json:
        print(json.dumps(dict(dataclasses.asdict(report), stale_readers=stale), indent=2))
    elif report.ok:
        checked = f", {human_size(report.data_bytes_checked)} of data" if args.data else ""
        print(f"OK: generation {report.generation}, {report.files} files, {report.dirs} dirs, "
              f"{report.pages_checked} pages checked{checked}")
    else:
        print(f"FAILED: {len(report.problems)} problem(s)")
        for problem in report.problems:
            print(f"  {problem}")
    for line in [] if args.json else stale:
        print(f"warning: {line}")
    return 0 if report.ok else 1


# ------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``cart`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="cart", description="Inspect and copy files in and out of a Cartridge container.")
    parser.add_argument("--version", action="version", version=f"cart {cartridge.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], help_text: str
                ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = command("demo", cmd_demo, "build demo.cart and take a short tour of the API")
    p.add_argument("--dir", default=".", help="where to create demo.cart (default: .)")

    def secrets(p: argparse.ArgumentParser) -> None:
        p.add_argument("--password", help="password of an encrypted container (or set "
                       "$CARTRIDGE_PASSWORD)")
        p.add_argument("--key-file", help="file holding the 32-byte key (raw or 64 hex digits)")

    p = command("ls", cmd_ls, "list files and directories")
    p.add_argument("cart", help="container file")
    secrets(p)
    p.add_argument("path", nargs="?", default="/", help="directory or file (default: /)")
    p.add_argument("-r", "--recursive", action="store_true", help="list everything below")
    p.add_argument("-l", "--long", action="store_true", help="show mode, size and mtime")
    p.add_argument("--json", action="store_true", help="print a JSON list of entries")

    p = command("info", cmd_info, "summarize the container, or describe one path")
    p.add_argument("cart", help="container file")
    p.add_argument("path", nargs="?", help="a file or array inside (arrays: dtype, shape)")
    secrets(p)
    p.add_argument("--json", action="store_true", help="print a JSON object")

    p = command("cat", cmd_cat, "write a file's bytes to stdout")
    p.add_argument("cart", help="container file")
    secrets(p)
    p.add_argument("path", help="file inside the container")

    p = command("put", cmd_put, "copy a host file, directory or stdin in (and commit)")
    p.add_argument("cart", help="container file (created if missing)")
    secrets(p)
    p.add_argument("src", help="host file or directory, or - for stdin")
    p.add_argument("dest", help="target path (the target directory when SRC is a directory)")
    p.add_argument("--compression", choices=["lz4", "zstd", "auto", "none"],
                   help="compress the files written (default: the container's default)")
    p.add_argument("--level", type=int, help="compression level")

    p = command("get", cmd_get, "copy a file or directory out to the host")
    p.add_argument("cart", help="container file")
    secrets(p)
    p.add_argument("path", help="file or directory inside the container")
    p.add_argument("dest", help="host path (a directory for a tree), or - for stdout")

    p = command("sql", cmd_sql, "SQL shell on a SQLite database inside the container")
    p.add_argument("cart", help="container file (created if missing)")
    p.add_argument("db", help="database path inside the container, e.g. /db/app.db")
    secrets(p)
    p.add_argument("-c", dest="command_text", action="append", metavar="SQL",
                   help="run this statement (or .command) and exit; repeatable")
    p.add_argument("--readonly", action="store_true", help="open the database read-only")

    p = command("check", cmd_check, "verify the container; exit 1 when damaged")
    p.add_argument("cart", help="container file")
    secrets(p)
    p.add_argument("--data", action="store_true", help="also verify every data checksum")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    cli_mvcc.add_commands(command, secrets)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``cart`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments without the program name.

    Returns
    -------
    int
        0 on success, 1 when ``check`` finds damage, 2 on errors (including
        usage errors), 130 when interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors, --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    try:
        return args.func(args)
    except BrokenPipeError:
        # The reader went away (``cart cat ... | head``): not an error worth a
        # message; point stdout at /dev/null so the exit-time flush is quiet.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("cart: interrupted", file=sys.stderr)
        return 130
    except (CartridgeError, OSError) as exc:
        print(f"cart: error: {_describe_error(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
