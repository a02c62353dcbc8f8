"""The ``cart`` command: look inside a container, copy files in and out, keep it healthy.

Why a command-line tool at all: a container is one opaque file, and the first
thing anyone does with an opaque file is ask what is in it, copy something in
or out, and ask whether it is healthy.  ``cart`` answers those questions
without a Python prompt.  This module parses the command line and turns what
a command raised into an exit code; the commands live in one module per job:

========================  ===================================================
``files``                 ``ls``, ``info``, ``cat``, ``put``, ``get``
``maintenance``           ``check``, ``snapshot``, ``compact``, ``readers``
``sql``                   ``sql``: apsw's shell on a database inside
``demo``                  ``demo``: build a container and tour the API
``credentials``           ``--password``, ``--key-file``, $CARTRIDGE_PASSWORD
``output``                human text and ``--json`` formatting
``streams``               streaming copies and the progress bar
``registry``              the types a command module registers itself with
========================  ===================================================

Design rules, and why:

* **Public API only.**  Every subcommand is a few calls on
  :class:`cartridge.Cartridge` and the value objects and errors exported by
  :mod:`cartridge`; nothing here reaches into the pager, the catalog or a
  private attribute.  If a subcommand needs something the API lacks, the API
  is what should grow, so library users get it too.
* **Imports go one way.**  This package imports the command modules; they
  import only the helper modules below them and :mod:`cartridge`, never this
  package, so there is no import cycle.
* **Exit codes are a contract.**  0 means success; 1 means ``check`` found
  damage (including a container too damaged to open); 2 means the command
  could not do what was asked (missing path, locked container, wrong
  password, bad option value, bad usage); 130 means interrupted.  Expected
  failures -- every :class:`~cartridge.CartridgeError`, every :class:`OSError`
  on a host file and every :class:`ValueError` from a bad option value --
  print one ``cart: error: ...`` line on stderr, never a traceback; a
  traceback from ``cart`` is a bug.

Human output is short and aligned; ``--json`` output is for scripts and keeps
every field (see :mod:`cartridge.cli.output`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

import cartridge

from . import demo, files, maintenance, sql
from .registry import Handler

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``cart`` and all its subcommands."""
    parser = argparse.ArgumentParser(
        prog="cart", description="Inspect and copy files in and out of a Cartridge container.")
    parser.add_argument("--version", action="version", version=f"cart {cartridge.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    for module in (demo, files, sql, maintenance):  # the order of ``cart --help``
        module.add_commands(command)
    return parser


def describe_error(exc: BaseException) -> str:
    """The one-line message ``cart`` prints for an expected failure."""
    if isinstance(exc, cartridge.CartridgeError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


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
        code: int = args.func(args)
    except BrokenPipeError:
        # The reader went away (``cart cat ... | head``): not an error worth a
        # message; point stdout at /dev/null so the exit-time flush is quiet.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("cart: interrupted", file=sys.stderr)
        return 130
    except (cartridge.CartridgeError, OSError, ValueError) as exc:
        print(f"cart: error: {describe_error(exc)}", file=sys.stderr)
        return 2
    return code
