"""What every file of the VFS answers alike: sector size, device
characteristics, and no locks of its own.

SQLite adapts its work to what the storage promises (``xDeviceCharacteristics``).
A file inside a container is copy-on-write, and every container commit is
atomic, so the promises are strong ones, and each saves SQLite work:

* ``ATOMIC``: a write reaches the disk whole or not at all;
* ``SEQUENTIAL``: never before the writes issued before it;
* ``SAFE_APPEND``: a file never grows before its new bytes are there;
* ``POWERSAFE_OVERWRITE``: a crash never changes bytes that were not written.

The sector size is the container's page size (4 KiB).  The lock methods are
no-ops here: the main database file implements SQLite's locks
(:mod:`.mainfile`), and journals, WAL files and temp files are covered by
their database's locks, as in SQLite's unix VFS.
"""

from __future__ import annotations

import apsw

from ..layout import PAGE_SIZE

__all__ = ["UnlockedFile", "IOCAP"]

IOCAP = (apsw.SQLITE_IOCAP_ATOMIC | apsw.SQLITE_IOCAP_SAFE_APPEND
         | apsw.SQLITE_IOCAP_SEQUENTIAL | apsw.SQLITE_IOCAP_POWERSAFE_OVERWRITE)
"""What shadow paging really gives (see the module docstring)."""


class UnlockedFile:
    """The answers every file of ours shares (see the module docstring)."""

    def xSectorSize(self) -> int:  # noqa: N802 - SQLite's name
        return PAGE_SIZE

    def xDeviceCharacteristics(self) -> int:  # noqa: N802
        return IOCAP

    def xLock(self, level: int) -> None:  # noqa: N802
        return None

    def xUnlock(self, level: int) -> None:  # noqa: N802
        return None

    def xCheckReservedLock(self) -> bool:  # noqa: N802
        return False
