"""``cart sql``: an SQL shell on a SQLite database stored inside the container.

The shell is apsw's own (``apsw.shell.Shell``: the dot-commands of the
``sqlite3`` program) over a connection from :func:`cartridge.sqlite.connect`,
so a database inside a container can be inspected and edited like any other.
apsw and the VFS are imported when the command runs, not when ``cart``
starts, so the other commands do not pay for them.

Why a second handle when a secret is given: the path form of
``sqlite.connect`` opens containers without a password or key, so with
``--password``/``--key-file`` the command opens the container itself and
passes the handle, closing it after the connection.
"""

from __future__ import annotations

import argparse
import sys

import cartridge

from . import credentials
from .registry import Command

__all__ = ["add_commands"]


def cmd_sql(args: argparse.Namespace) -> int:
    """Run ``-c`` statements, or an interactive shell, on ``args.db`` in ``args.cart``."""
    import apsw

    secret = credentials.open_kwargs(args)
    own = cartridge.open(args.cart, "r" if args.readonly else "a", **secret) if secret else None
    try:
        _shell(own or args.cart, args)
    except apsw.Error as exc:  # SQL errors, a missing database opened --readonly, ...
        print(f"cart: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if own is not None:
            own.close()
    return 0


def _shell(container: cartridge.Cartridge | str, args: argparse.Namespace) -> None:
    """Connect to ``args.db`` and run the shell on it; the connection is closed after."""
    import apsw.shell

    from cartridge import sqlite

    conn = sqlite.connect(container, args.db, readonly=args.readonly, create=not args.readonly)
    try:
        shell = apsw.shell.Shell(db=conn, stdout=sys.stdout, stderr=sys.stderr)
        if args.command_text is None:
            shell.cmdloop()
        else:
            for line in args.command_text:
                shell.process_complete_line(line)
    finally:
        conn.close()


def add_commands(command: Command) -> None:
    """Register ``sql``."""
    p = command("sql", cmd_sql, "SQL shell on a SQLite database inside the container")
    p.add_argument("cart", help="container file (created if missing)")
    p.add_argument("db", help="database path inside the container, e.g. /db/app.db")
    credentials.add_options(p)
    p.add_argument("-c", dest="command_text", action="append", metavar="SQL",
                   help="run this statement (or .command) and exit; repeatable")
    p.add_argument("--readonly", action="store_true", help="open the database read-only")
