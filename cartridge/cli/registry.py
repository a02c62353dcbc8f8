"""How a command module adds its subcommands to the ``cart`` parser.

The package ``__init__`` owns the argparse tree (:func:`cartridge.cli.build_parser`)
and hands each command module one :data:`Command` callable; the module calls
it once per subcommand and adds that subcommand's own arguments to the parser
it gets back.  The two types live here, below the package and every command
module, so that no command module has to import the package that imports it:
``cli.py`` and ``cli_mvcc.py`` used to import each other for exactly this.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["Command", "Handler"]

#: What a subcommand runs: the parsed arguments in, the exit code out.
Handler = Callable[[argparse.Namespace], int]

#: ``command(name, handler, help_text)`` registers one subcommand and returns its parser.
Command = Callable[[str, Handler, str], argparse.ArgumentParser]
