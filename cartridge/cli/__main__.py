"""``python -m cartridge.cli``: the same as the installed ``cart`` script."""

import sys

from . import main

sys.exit(main())
