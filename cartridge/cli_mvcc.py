"""``cart`` subcommands for snapshots, compaction and the reader table.

Kept apart from ``cli.py`` so that module keeps its file-copying job; the
rules are the same (public API only, exit code 2 on expected errors, a tqdm
bar on stderr only when a human watches).

* ``cart snapshot list|create|restore|delete|diff``
* ``cart compact [--max-pages N]``
* ``cart readers [--clear-stale]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

import cartridge

Command = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _open(args: argparse.Namespace, mode: str, **kwargs: Any) -> cartridge.Cartridge:
    """Open ``args.cart`` with the secrets of ``--password``/``--key-file``/$CARTRIDGE_PASSWORD."""
    from .cli import _secrets  # cli imports this module: resolve at call time

    return cartridge.open(args.cart, mode, **_secrets(args), **kwargs)


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Dispatch ``cart snapshot ACTION``."""
    if args.action != "list" and args.name is None:
        print(f"cart: error: 'cart snapshot {args.action}' needs a snapshot name",
              file=sys.stderr)
        return 2
    if args.action == "list":
        with _open(args, "r") as cart:
            snaps = cart.snapshots()
        if args.json:
            print(json.dumps([dataclasses.asdict(s) for s in snaps], indent=2))
        for s in [] if args.json else snaps:
            print(f"{s.name}\tgeneration {s.generation}\t{_when(s.created)}\t"
                  f"{s.file_count} files\t{s.exclusive_bytes} bytes only here")
        return 0
    if args.action == "diff":
        with _open(args, "r") as cart:
            diff = cart.diff(args.name, args.other)
        if args.json:
            print(json.dumps(dataclasses.asdict(diff), indent=2))
        else:
            for mark, paths in (("+", diff.added), ("-", diff.removed), ("M", diff.changed)):
                for path in paths:
                    print(f"{mark} {path}")
        return 0
    with _open(args, "r+") as cart:
        if args.action == "create":
            info = cart.snapshot(args.name)
            print(f"snapshot {info.name!r} pins generation {info.generation}")
        elif args.action == "restore":
            cart.restore(args.name)
            print(f"restored {args.name!r} as generation {cart.generation}")
        else:
            cart.delete_snapshot(args.name)
            print(f"deleted snapshot {args.name!r}")
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    """Move live pages into holes and truncate the file."""
    bar = None
    if sys.stderr.isatty() and not args.json:
        bar = tqdm(desc="compact", unit="page", file=sys.stderr, leave=False)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        with _open(args, "r+") as cart:
            result = cart.compact(max_pages=args.max_pages, callback=progress)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
    else:
        print(f"moved {result.moved_pages} pages in {result.commits} commits; "
              f"{result.size_before} -> {result.size_after} bytes"
              + ("" if result.done else " (more to do: run again)"))
    return 0


def _slot_dict(slot: Any) -> dict:
    return dataclasses.asdict(slot)


def cmd_readers(args: argparse.Namespace) -> int:
    """List the reader table; ``--clear-stale`` empties the slots of dead processes."""
    with _open(args, "r", locking=True) as cart:
        cleared = cart.clear_stale_readers() if args.clear_stale else []
        slots = [s for s in cart.readers() if s.slot != cart._table.slot]
    if args.json:
        print(json.dumps({"readers": [_slot_dict(s) for s in slots],
                          "cleared": [_slot_dict(s) for s in cleared]}, indent=2))
        return 0
    for s in slots:
        state = "alive" if s.alive else "STALE (process gone)"
        pin = f"pins generation {s.generation} since {_when(s.since)}" if s.generation else "idle"
        print(f"slot {s.slot}\tpid {s.pid}\t{state}\t{pin}")
    for s in cleared:
        print(f"cleared stale slot {s.slot} (pid {s.pid})")
    if not slots and not cleared:
        print("no readers")
    return 0


def stale_readers(args: argparse.Namespace) -> list[str]:
    """One line per stale reader slot of ``args.cart`` (for ``cart check``)."""
    try:
        with _open(args, "r") as cart:
            return [f"stale reader slot {s.slot}: pid {s.pid} died"
                    + (f" pinning generation {s.generation}" if s.generation else "")
                    + "; run 'cart readers --clear-stale'"
                    for s in cart.readers() if not s.alive]
    except cartridge.CartridgeError:
        return []


def add_commands(command: Command, secrets: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register the subcommands with ``cli.build_parser``'s ``command`` helper
    (``secrets`` adds its ``--password``/``--key-file`` options)."""
    p = command("snapshot", cmd_snapshot, "list, create, restore, delete or diff snapshots")
    p.add_argument("action", choices=["list", "create", "restore", "delete", "diff"])
    p.add_argument("cart", help="container file")
    secrets(p)
    p.add_argument("name", nargs="?", help="snapshot name (diff: the old side)")
    p.add_argument("other", nargs="?", default=None,
                   help="diff only: the new side (default: the current state)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("compact", cmd_compact, "move data into holes and shrink the file")
    p.add_argument("cart", help="container file")
    secrets(p)
    p.add_argument("--max-pages", type=int, default=None,
                   help="move at most this many pages (run again to continue)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = command("readers", cmd_readers, "list the reader table (live and stale readers)")
    p.add_argument("cart", help="container file")
    secrets(p)
    p.add_argument("--clear-stale", action="store_true",
                   help="empty the slots of processes that died")
    p.add_argument("--json", action="store_true", help="print JSON")
