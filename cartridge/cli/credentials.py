"""How a ``cart`` command gets the password or key of an encrypted container.

Every command that opens a container accepts the same three sources, checked
in this order:

1. ``--key-file PATH``: a file holding the 32-byte key, raw or as 64 hex
   digits (a trailing newline is ignored, so ``echo $KEY > key.hex`` works);
2. ``--password PW``;
3. the environment variable ``$CARTRIDGE_PASSWORD``.

Why the environment variable: a password given as an option shows in ``ps``
and in shell history, a variable does not.  Why one module: the options are
added by :func:`add_options` and turned into :func:`cartridge.open` keywords by
:func:`open_kwargs`, so a command added later cannot forget a source
(``tests/test_cli_secrets.py`` holds every command to all three).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import cartridge

__all__ = ["PASSWORD_VARIABLE", "add_options", "open_container", "open_kwargs"]

#: The environment variable read when neither --key-file nor --password is given.
PASSWORD_VARIABLE = "CARTRIDGE_PASSWORD"


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--password`` and ``--key-file`` to one subcommand's parser."""
    parser.add_argument("--password", help="password of an encrypted container (or set "
                        f"${PASSWORD_VARIABLE})")
    parser.add_argument("--key-file", help="file holding the 32-byte key (raw or 64 hex digits)")


def open_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The ``key=`` or ``password=`` keyword for :func:`cartridge.open`, or none.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of a subcommand registered with :func:`add_options`.

    Returns
    -------
    dict
        ``{"key": bytes}``, ``{"password": str}`` or ``{}`` (no secret given:
        opening an encrypted container then fails with a message that says so).

    Raises
    ------
    OSError
        The key file cannot be read.
    """
    if args.key_file:
        with open(args.key_file, "rb") as f:
            raw = f.read().strip()
        try:
            key = bytes.fromhex(raw.decode("ascii")) if len(raw) == 64 else raw
        except (UnicodeDecodeError, ValueError):
            key = raw  # 64 bytes that are not hex digits: a raw key after all
        return {"key": key}
    password = args.password or os.environ.get(PASSWORD_VARIABLE)
    return {"password": password} if password else {}


def open_container(args: argparse.Namespace, mode: str, **kwargs: Any) -> cartridge.Cartridge:
    """Open ``args.cart`` in ``mode`` with the secret the command line gave.

    ``kwargs`` go to :func:`cartridge.open` as they are (``locking=`` ...).
    """
    return cartridge.open(args.cart, mode, **open_kwargs(args), **kwargs)
