"""``cart demo``: build a small container and tour the API on it.

Why a demo command: a newcomer who has just installed the package has no
container to try ``cart ls`` or ``cart info`` on.  ``cart demo`` writes
``demo.cart`` (files with metadata, an appended log, a structured numpy
dataset), commits, reopens it read-only, verifies every checksum and prints
what it did at each step, so its output doubles as a two-minute tour.  It
exits 1 when what was read back differs or verification fails, which makes it
a smoke test of an installation as well.
"""

from __future__ import annotations

import argparse
import os
import stat as stat_mod

import numpy as np

import cartridge

from .output import container_fields, human_size, print_fields, print_long
from .registry import Command

__all__ = ["add_commands"]


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
        print_long([info for _path, info in cart.walk("/")])
        print("\nOne file's details (stat /data/2024/a.bin):")
        info = cart.stat("/data/2024/a.bin")
        print_fields({
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
        print_fields(container_fields(cart.info()), indent="  ")
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


def add_commands(command: Command) -> None:
    """Register ``demo``."""
    p = command("demo", cmd_demo, "build demo.cart and take a short tour of the API")
    p.add_argument("--dir", default=".", help="where to create demo.cart (default: .)")
