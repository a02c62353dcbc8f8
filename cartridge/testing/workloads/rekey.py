"""The rekey workload: one rekey, announced, for the crash harness.

``python -m cartridge.testing.workloads.rekey CART OLD_KEY_HEX NEW_KEY_HEX``
takes ``START`` from the harness, opens ``CART`` with the old key (phase
``open``), rekeys it to the new one (phase ``rekey``) and announces ``done``
when ``rekey`` returned.  A kill some Python calls into ``rekey`` lands inside
the re-encryption; one at ``done`` finds it finished.
"""

from __future__ import annotations

import sys

import cartridge
from cartridge.testing.crash import Phases


def main(argv: list[str]) -> int:
    """Rekey ``argv[1]`` from key ``argv[2]`` to ``argv[3]`` (hex)."""
    phases = Phases()
    if phases.start() is None:
        return 0  # the parent no longer needs this worker
    phases("open")
    cart = cartridge.open(argv[1], "r+", key=bytes.fromhex(argv[2]))
    phases("rekey")
    cart.rekey(bytes.fromhex(argv[3]))
    phases("done")
    cart.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
