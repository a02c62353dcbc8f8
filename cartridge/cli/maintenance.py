"""``cart check``, ``snapshot``, ``compact`` and ``readers``: keeping a container healthy.

These are the commands an operator runs on a container rather than on the
files in it:

* ``cart check [--data]`` verifies the last commit and warns about stale
  reader slots;
* ``cart snapshot list|create|restore|delete|diff`` names generations to keep;
* ``cart compact [--max-pages N]`` moves live pages into holes and shrinks the
  file, with a page-counting bar when a human watches;
* ``cart readers [--clear-stale]`` shows the reader table and empties the
  slots of processes that died while pinning a generation.

Why ``check`` has its own exit code: 0 means healthy and 1 means damaged --
including a container too damaged to open -- so a cron job or CI step can
test the status alone; 2 stays what it is for every command, "could not do
what was asked" (missing file, wrong password, locked).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from tqdm import tqdm

import cartridge

from . import credentials
from .output import human_size, timestamp
from .registry import Command

__all__ = ["add_commands"]


def cmd_check(args: argparse.Namespace) -> int:
    """Verify the last commit; exit 1 when anything is damaged."""
    try:
        with credentials.open_container(args, "r") as cart:
            report = cart.verify(data=args.data)
    except (cartridge.CorruptionError, cartridge.FormatError) as exc:
        report = cartridge.VerifyReport(ok=False,
                                        problems=[f"cannot open the container: {exc}"])
    stale = _stale_readers(args)
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


def _stale_readers(args: argparse.Namespace) -> list[str]:
    """One line per stale reader slot of ``args.cart`` (none when it cannot be opened)."""
    try:
        with credentials.open_container(args, "r") as cart:
            return [f"stale reader slot {s.slot}: pid {s.pid} died"
                    + (f" pinning generation {s.generation}" if s.generation else "")
                    + "; run 'cart readers --clear-stale'"
                    for s in cart.readers() if not s.alive]
    except cartridge.CartridgeError:
        return []


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Run ``cart snapshot ACTION``."""
    if args.action != "list" and args.name is None:
        print(f"cart: error: 'cart snapshot {args.action}' needs a snapshot name",
              file=sys.stderr)
        return 2
    if args.action == "list":
        with credentials.open_container(args, "r") as cart:
            snaps = cart.snapshots()
        if args.json:
            print(json.dumps([dataclasses.asdict(s) for s in snaps], indent=2))
        for s in [] if args.json else snaps:
            print(f"{s.name}\tgeneration {s.generation}\t{timestamp(s.created)}\t"
                  f"{s.file_count} files\t{s.exclusive_bytes} bytes only here")
        return 0
    if args.action == "diff":
        with credentials.open_container(args, "r") as cart:
            diff = cart.diff(args.name, args.other)
        if args.json:
            print(json.dumps(dataclasses.asdict(diff), indent=2))
        else:
            for mark, paths in (("+", diff.added), ("-", diff.removed), ("M", diff.changed)):
                for path in paths:
                    print(f"{mark} {path}")
        return 0
    with credentials.open_container(args, "r+") as cart:
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
        with credentials.open_container(args, "r+") as cart:
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


def cmd_readers(args: argparse.Namespace) -> int:
    """List the reader table (without this command's own slot); ``--clear-stale`` empties
    the slots of dead processes."""
    with credentials.open_container(args, "r", locking=True) as cart:
        cleared = cart.clear_stale_readers() if args.clear_stale else []
        slots = [s for s in cart.readers() if s.slot != cart.reader_slot]
    if args.json:
        print(json.dumps({"readers": [dataclasses.asdict(s) for s in slots],
                          "cleared": [dataclasses.asdict(s) for s in cleared]}, indent=2))
        return 0
    for s in slots:
        state = "alive" if s.alive else "STALE (process gone)"
        pin = (f"pins generation {s.generation} since {timestamp(s.since)}" if s.generation
               else "idle")
        print(f"slot {s.slot}\tpid {s.pid}\t{state}\t{pin}")
    for s in cleared:
        print(f"cleared stale slot {s.slot} (pid {s.pid})")
    if not slots and not cleared:
        print("no readers")
    return 0


def add_commands(command: Command) -> None:
    """Register ``check``, ``snapshot``, ``compact`` and ``readers``."""
    p = command("check", cmd_check, "verify the container; exit 1 when damaged")
    p.add_argument("cart", help="container file")
    credentials.add_options(p)
    p.add_argument("--data", action="store_true", help="also verify every data checksum")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = command("snapshot", cmd_snapshot, "list, create, restore, delete or diff snapshots")
    p.add_argument("action", choices=["list", "create", "restore", "delete", "diff"])
    p.add_argument("cart", help="container file")
    credentials.add_options(p)
    p.add_argument("name", nargs="?", help="snapshot name (diff: the old side)")
    p.add_argument("other", nargs="?", default=None,
                   help="diff only: the new side (default: the current state)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("compact", cmd_compact, "move data into holes and shrink the file")
    p.add_argument("cart", help="container file")
    credentials.add_options(p)
    p.add_argument("--max-pages", type=int, default=None,
                   help="move at most this many pages (run again to continue)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = command("readers", cmd_readers, "list the reader table (live and stale readers)")
    p.add_argument("cart", help="container file")
    credentials.add_options(p)
    p.add_argument("--clear-stale", action="store_true",
                   help="empty the slots of processes that died")
    p.add_argument("--json", action="store_true", help="print JSON")
