"""Child of the rekey crash test: open with one key, rekey to another, print "done".

Usage: ``python tests/rekey_worker.py CART OLD_KEY_HEX NEW_KEY_HEX`` (prints
"ready" once imported and opened, then rekeys; the parent kills it at a random
moment).
"""

from __future__ import annotations

import sys

import cartridge


def main(argv: list[str]) -> int:
    """Rekey ``argv[1]`` from key ``argv[2]`` to ``argv[3]`` (hex)."""
    cart = cartridge.open(argv[1], "r+", key=bytes.fromhex(argv[2]))
    print("ready", flush=True)
    cart.rekey(bytes.fromhex(argv[3]))
    print("done", flush=True)
    cart.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
