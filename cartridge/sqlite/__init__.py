"""SQLite inside a container: an apsw VFS named ``"cartridge"``.

Every file SQLite keeps for a database (the database itself, its rollback
journal, its WAL file) is a file inside the container.  Reads of database
pages are memory views straight into the container's mapped pages (apsw copies
them into SQLite's buffer: one copy, as from the OS page cache); writes go
through :meth:`Cartridge.write_at`, which copies on write only the chunks a
write touches (and writes in place into a chunk already copied in the pending
transaction), so reads and writes cost O(bytes touched) whatever the size of
the database.

How SQLite transactions and container commits relate (the rule):

* The container commits (one atomic, durable container transaction holding
  every pending SQLite write) when SQLite asks for durability: ``xSync`` of
  the database or WAL file, ``xSync`` of a rollback journal once the database
  file has been written in this transaction, deleting a journal or WAL file,
  and whenever SQLite releases a RESERVED or stronger lock (the end of every
  write transaction in the default locking mode), and when the last
  connection to a database closes.
* ``xSync`` of a rollback journal *before* any database page is written does
  not commit: SQLite syncs there only so that the journal is durable before
  the database is overwritten, and copy-on-write pages cannot be overwritten
  (the journal and the database pages reach the disk in one atomic commit).
* A container opened by :func:`connect` from a path is used by SQLite alone,
  so a commit holds SQLite's writes only.  When you hand :func:`connect` your
  own writable :class:`~cartridge.Cartridge`, SQLite shares that handle, and
  **a SQLite commit also commits that handle's other pending changes**
  (there is one transaction per writable handle; the container cannot commit
  part of it).  Commit your own changes first if that matters.
* At interpreter exit, connections still open are closed and their
  containers committed before Python tears its modules down
  (:mod:`.shutdown`): what SQLite committed is kept, what it had not is not.

Locking: SQLite's lock levels are byte-range locks (Linux open-file-description
locks) on ``<container>-sqlite-lock`` beside the container, one 1 KiB region
per database (:mod:`.locks`).  Every connection opens its own descriptor, so
locks work the same between connections of one process as between processes.

Limits (say it plainly): one process at a time writes a container (the
container's writer lock), so other processes open their databases
read-only; shared-memory WAL works between connections of one process but not
across processes (a second process gets a clear ``CantOpenError``); temp files
SQLite opens without a name (sort spills, temp tables, statement journals)
live in process memory, since they are private to one connection and deleted
on close.  See README.md, section "SQLite inside the container".

Where things are, top to bottom (each module opens with why it is so):

* :mod:`.connections`: ``register``, ``uri``, ``connect`` (the public calls);
* :mod:`.vfs`: the VFS class, names to files (``xOpen``, ``xDelete``, ``xAccess``);
* :mod:`.mainfile`, :mod:`.journal`, :mod:`.wal`, :mod:`.memfile`: one file
  class per kind of file, each with its part of the commit rule;
* :mod:`.storedfile`: reads, writes, truncates and syncs shared by the files
  stored in the container, and the choke point they pass;
* :mod:`.registry`: the process-wide tables (which containers are open, which
  container a journal's name belongs to);
* :mod:`.session`: one container as the process's SQLite files share it;
* :mod:`.filestate`, :mod:`.writeback`: chunk locations and buffered writes of
  one file, and how the buffer reaches the container;
* :mod:`.locks`, :mod:`.walindex`: SQLite's locks as byte ranges, and the
  private directory of the wal-index;
* :mod:`.shutdown`: what interpreter exit does.
"""

from __future__ import annotations

import atexit

from .connections import connect, register, unregister, uri
from .locks import lock_path
from .shutdown import close_all
from .vfs import VFS_NAME, CartridgeVFS

__all__ = ["VFS_NAME", "register", "connect", "unregister", "uri", "lock_path", "CartridgeVFS"]

atexit.register(close_all)
