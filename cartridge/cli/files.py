"""``cart ls``, ``info``, ``cat``, ``put`` and ``get``: looking at files and copying them.

A container is one opaque file, and the first thing anyone does with an
opaque file is ask what is in it and copy something in or out.  These five
commands answer that without a Python prompt, each a few calls on the public
:class:`cartridge.Cartridge` API.

Why one transaction per command: ``put`` opens the container read-write,
copies everything and commits once; when anything fails half-way the context
manager rolls the whole copy back, so a failed ``put`` of a directory leaves
the container exactly as it was.  Why ``put`` stats its source before opening
the container: a typo in the source path must not create an empty container.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import posixpath
import stat as stat_mod
from typing import Any

from tqdm import tqdm

import cartridge
from cartridge.errors import InvalidPathError, IsADirectoryError, NotFoundError

from . import credentials, streams
from .output import (
    container_fields,
    file_json,
    human_size,
    print_fields,
    print_long,
    timestamp,
)
from .registry import Command

__all__ = ["add_commands"]


def cmd_ls(args: argparse.Namespace) -> int:
    """List a directory (or one file) inside the container."""
    with credentials.open_container(args, "r") as cart:
        found = cart.list(args.path, recursive=args.recursive)
        if not found and not cart.exists(args.path):
            raise NotFoundError(f"no such file or directory: {args.path}", args.path)
        if args.json:
            print(json.dumps([file_json(cart.stat(p)) for p in found], indent=2))
        elif args.long:
            print_long([cart.stat(p) for p in found])
        else:
            for p in found:
                print(p)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Print the cheap container summary, or what one path holds (arrays: dtype, shape)."""
    with credentials.open_container(args, "r") as cart:
        if args.path is not None:
            return _path_info(cart.stat(args.path), args.json)
        info = cart.info()
        data = _data_summary(cart)
    if args.json:
        print(json.dumps({**dataclasses.asdict(info), **data}, indent=2))
    else:
        fields = container_fields(info)
        fields["compression"] = str(info.compression or "none") + " (default for new files)"
        fields["cache"] = ", ".join(f"{k} {v}" for k, v in info.cache.items())
        fields["encryption"] = "AES-256-GCM" if info.encrypted else "none"
        for name in ("data_logical", "data_stored"):
            fields[name] = f"{human_size(data[name])} ({data[name]} bytes)"
        fields["ratio"] = f"{data['ratio']:.2f}x"
        fields["codecs"] = ", ".join(f"{k}: {v} files" for k, v in data["codecs"].items()) or "-"
        print_fields(fields)
    return 0


def _path_info(info: cartridge.FileInfo, as_json: bool) -> int:
    """``cart info CART PATH``: the stat of one path."""
    if as_json:
        print(json.dumps(file_json(info), indent=2))
        return 0
    fields = {"path": info.path, "kind": "array" if info.is_array else info.kind,
              "size": f"{human_size(info.size)} ({info.size} bytes)"}
    if info.is_array:
        fields.update(dtype=str(info.dtype), shape=str(info.shape))
        if info.chunks is not None:
            fields["chunks"] = str(info.chunks)
    fields["mode"] = stat_mod.filemode(stat_mod.S_IFREG | info.mode)
    fields["mtime"] = timestamp(info.mtime)
    if info.metadata:
        fields["metadata"] = repr(info.metadata)
    print_fields(fields)
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
        stored += st.size if st.stored_size is None else st.stored_size
        name = st.compression or "none"
        codecs[name] = codecs.get(name, 0) + 1
    return {"data_logical": logical, "data_stored": stored,
            "ratio": logical / stored if stored else 1.0, "codecs": codecs}


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
            out = streams.stdout_bytes()
            streams.copy(src, out, None)
            out.flush()
        else:
            with open(dest, "wb") as dst:
                streams.copy(src, dst, bar)


def cmd_cat(args: argparse.Namespace) -> int:
    """Stream one file's bytes to stdout."""
    with credentials.open_container(args, "r") as cart:
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


def cmd_put(args: argparse.Namespace) -> int:
    """Copy a host file, stdin or a host directory into the container."""
    # Stat the source first: a missing source must not create the container.
    src_stat = None if args.src == "-" else os.stat(args.src)
    with credentials.open_container(args, "a") as cart:
        cart_stat = os.stat(args.cart)
        dirs: list[str] = []
        if src_stat is None:
            files = [("-", args.dest, streams.stdin_size())]
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
        with streams.progress(sum(size for _h, _c, size in files), args.dest) as bar:
            for host, inside, _size in files:
                with streams.open_source(host) as src, cart.open_file(
                        inside, "wb", **_compression(args)) as dst:
                    streams.copy(src, dst, bar)
        cart.commit()
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    """Copy a file (to a host path or stdout) or a directory tree out."""
    with credentials.open_container(args, "r") as cart:
        info = cart.stat(args.path)
        if info.kind != "dir":
            dest = args.dest
            if dest != "-" and os.path.isdir(dest):
                dest = os.path.join(dest, posixpath.basename(info.path))
            with streams.progress(info.size, info.path) as bar:
                _copy_out(cart, info.path, dest, bar)
            return 0
        if args.dest == "-":
            raise IsADirectoryError(
                f"{info.path} is a directory; give a host directory to copy it into", info.path)
        tree = list(cart.walk(info.path))
        base = info.path.rstrip("/")
        os.makedirs(args.dest, exist_ok=True)
        with streams.progress(sum(i.size for _p, i in tree), info.path) as bar:
            for path, entry in tree:
                host = os.path.join(args.dest, *path[len(base) + 1 :].split("/"))
                if entry.kind == "dir":
                    os.makedirs(host, exist_ok=True)
                else:
                    _copy_out(cart, path, host, bar)
    return 0


def add_commands(command: Command) -> None:
    """Register ``ls``, ``info``, ``cat``, ``put`` and ``get``."""
    p = command("ls", cmd_ls, "list files and directories")
    p.add_argument("cart", help="container file")
    credentials.add_options(p)
    p.add_argument("path", nargs="?", default="/", help="directory or file (default: /)")
    p.add_argument("-r", "--recursive", action="store_true", help="list everything below")
    p.add_argument("-l", "--long", action="store_true", help="show mode, size and mtime")
    p.add_argument("--json", action="store_true", help="print a JSON list of entries")

    p = command("info", cmd_info, "summarize the container, or describe one path")
    p.add_argument("cart", help="container file")
    p.add_argument("path", nargs="?", help="a file or array inside (arrays: dtype, shape)")
    credentials.add_options(p)
    p.add_argument("--json", action="store_true", help="print a JSON object")

    p = command("cat", cmd_cat, "write a file's bytes to stdout")
    p.add_argument("cart", help="container file")
    credentials.add_options(p)
    p.add_argument("path", help="file inside the container")

    p = command("put", cmd_put, "copy a host file, directory or stdin in (and commit)")
    p.add_argument("cart", help="container file (created if missing)")
    credentials.add_options(p)
    p.add_argument("src", help="host file or directory, or - for stdin")
    p.add_argument("dest", help="target path (the target directory when SRC is a directory)")
    p.add_argument("--compression", choices=["lz4", "zstd", "auto", "none"],
                   help="compress the files written (default: the container's default)")
    p.add_argument("--level", type=int, help="compression level")

    p = command("get", cmd_get, "copy a file or directory out to the host")
    p.add_argument("cart", help="container file")
    credentials.add_options(p)
    p.add_argument("path", help="file or directory inside the container")
    p.add_argument("dest", help="host path (a directory for a tree), or - for stdout")
