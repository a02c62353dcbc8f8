"""SQLite inside a container: an apsw VFS named ``"cartridge"``.

Every file SQLite keeps for a database — the database itself, its rollback
journal, its WAL file — is a file inside the container.  Reads of database
pages are memory views straight into the container's mapped pages (apsw copies
them into SQLite's buffer: one copy, as from the OS page cache); writes go
through :meth:`Cartridge.write_at`, which copies on write only the chunks a
write touches (and writes in place into a chunk already copied in the pending
transaction), so reads and writes cost O(bytes touched) whatever the size of
the database.

How SQLite transactions and container commits relate (the rule):

* The container commits — one atomic, durable container transaction holding
  every pending SQLite write — when SQLite asks for durability: ``xSync`` of
  the database or WAL file, ``xSync`` of a rollback journal once the database
  file has been written in this transaction, deleting a journal or WAL file,
  and whenever SQLite releases a RESERVED or stronger lock (the end of every
  write transaction in the default locking mode), and when the last
  connection to a database closes.
* ``xSync`` of a rollback journal *before* any database page is written does
  not commit: SQLite syncs there only so that the journal is durable before
  the database is overwritten, and copy-on-write pages cannot be overwritten
  — the journal and the database pages reach the disk in one atomic commit.
* A container opened by :func:`connect` from a path is used by SQLite alone,
  so a commit holds SQLite's writes only.  When you hand :func:`connect` your
  own writable :class:`~cartridge.Cartridge`, SQLite shares that handle, and
  **a SQLite commit also commits that handle's other pending changes**
  (there is one transaction per writable handle; the container cannot commit
  part of it).  Commit your own changes first if that matters.

Locking: SQLite's lock levels are byte-range locks (Linux open-file-description
locks, ``F_OFD_SETLK``) on ``<container>-sqlite-lock`` beside the container.
Each database gets a 1 KiB region at ``2**32 + 1024 * (h % 2**40)`` where
``h`` is the first 8 bytes (little-endian) of BLAKE2b-64 of its UTF-8 path:
byte 0 is SQLite's PENDING byte, byte 1 the RESERVED byte, bytes 2–511 the
SHARED range (the unix VFS's protocol), byte 512 the WAL-owner byte.  Every
connection opens its own descriptor, so locks work the same between
connections of one process as between processes.

Limits (say it plainly): one process at a time writes a container
(the container's writer lock), so other processes open their databases
read-only; shared-memory WAL works between connections of one process but not
across processes (a second process gets a clear ``CantOpenError``); temp files
SQLite opens without a name (sort spills, temp tables, statement journals)
live in process memory, since they are private to one connection and deleted
on close.  See README.md, section "SQLite inside the container".
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import fcntl
import hashlib
import os
import shutil
import struct
import tempfile
import threading
import time
import urllib.parse
from typing import Any

import apsw

from . import paths
from .container import Cartridge
from .container import open as open_container
from .errors import CorruptionError, LockedError, NotFoundError
from .filedata import plain_chunk
from .layout import ENTRY_INLINE, KIND_FILE, PAGE_SIZE
from .pager import checksum

__all__ = ["VFS_NAME", "register", "connect", "unregister", "CartridgeVFS"]

VFS_NAME = "cartridge"

_SHARED_LOCK, _RESERVED_LOCK, _PENDING_LOCK, _EXCLUSIVE_LOCK = 1, 2, 3, 4
_PENDING_OFF, _RESERVED_OFF, _SHARED_OFF, _SHARED_LEN, _WAL_OFF = 0, 1, 2, 510, 512
_REGION_BASE, _REGION_SIZE = 1 << 32, 1024
_OPEN_RETRIES = 5
_BUFFER_LIMIT = 32 << 20
"""Buffered write bytes per container that trigger a flush (not a commit)."""
_FLOCK = struct.Struct("@hhqqi4x")
_ACCESS_READWRITE = 1
_SETLK = fcntl.F_OFD_SETLK

_IOCAP = (apsw.SQLITE_IOCAP_ATOMIC | apsw.SQLITE_IOCAP_SAFE_APPEND
          | apsw.SQLITE_IOCAP_SEQUENTIAL | apsw.SQLITE_IOCAP_POWERSAFE_OVERWRITE)
"""What shadow paging really gives: a write reaches the disk whole or not at all
(ATOMIC), never before the writes issued before it (SEQUENTIAL), a file never
grows before its new bytes are there (SAFE_APPEND), and a crash never changes
bytes that were not written (POWERSAFE_OVERWRITE)."""

_MAIN = apsw.SQLITE_OPEN_MAIN_DB
_WAL = apsw.SQLITE_OPEN_WAL


def lock_path(container_path: str) -> str:
    """The sidecar file holding SQLite's byte-range locks for a container."""
    return container_path + "-sqlite-lock"


def _region(inner: str) -> int:
    digest = hashlib.blake2b(inner.encode("utf-8"), digest_size=8).digest()
    return _REGION_BASE + _REGION_SIZE * (int.from_bytes(digest, "little") % (1 << 40))


# ------------------------------------------------------------------ shared state
class _Box:
    """One container as this process's SQLite files see it.

    All connections of the process to databases in one container share one
    handle (a container has one writer handle per process), so they see each
    other's pending writes.  ``epoch`` changes whenever the handle moves to a
    newer commit, which invalidates every cached chunk map.
    """

    def __init__(self, cart: Cartridge, own: bool) -> None:
        self.cart = cart
        self.own = own
        self.refs = 0
        self.lock = cart._lock
        self.writable = cart.mode != "r"
        self.files: dict[str, _FileState] = {}
        self.wal: dict[str, list[int]] = {}
        """Per WAL database: [descriptor holding the WAL-owner lock, users]."""
        self.txns: dict[str, _TxnState] = {}
        """Per database path: see :class:`_TxnState`."""
        self.exists: dict[str, bool] = {}
        """Which SQLite files exist (writable handles only; kept by xOpen/xDelete)."""
        self.buffered = 0
        """Bytes of writes buffered in ``_FileState.buf`` across files."""

    @property
    def epoch(self) -> int:
        """What cached chunk maps depend on: the commit a read-only handle
        reads (a writable handle's maps follow its own writes)."""
        return 0 if self.writable else self.cart._gen

    def refresh(self) -> None:
        """Move a read-only handle to the newest commit (at a SHARED lock)."""
        if not self.writable:
            self.cart.refresh()

    def flush(self) -> None:
        """Apply every file's buffered writes (all at once: whatever a commit
        captures is a prefix of SQLite's writes)."""
        self.buffered = 0
        for st in builtins.list(self.files.values()):
            if st.buf:
                st.flush(self)

    def commit(self) -> None:
        if self.buffered:
            self.flush()
        self.cart.commit()


class _TxnState:
    """What the commit rule needs to know about one database's current write
    transaction, shared by the connections of this process (one of them at a
    time holds RESERVED)."""

    __slots__ = ("db_written", "journal_live")

    def __init__(self) -> None:
        self.db_written = False
        """A database page was written since the last unlock."""
        self.journal_live = False
        """Its rollback journal holds a live header: the journal's finalization
        (delete, truncate to 0, zeroed header) is the commit point, not xSync."""


class _FileState:
    """Where one file's chunks live, shared by every open VFS file on it.

    ``chunks`` maps a chunk index to ``(byte position in the map, stored
    length)``; ``None`` means a hole (reads as zeros) or an inline file.
    """

    __slots__ = ("path", "epoch", "size", "file_id", "inline", "chunks", "shift", "mask",
                 "buf", "lo", "hi", "stored", "live")

    def __init__(self, box: _Box, path: str) -> None:
        self.path = path
        chunk = box.cart._chunk
        self.shift = chunk.bit_length() - 1
        self.mask = chunk - 1
        self.epoch = -1
        self.buf: list[tuple[int, bytes]] = []
        self.lo = self.hi = 0
        self.live = True
        """False once the file is deleted (its VFS files then look it up again)."""
        self.reload(box)

    def reload(self, box: _Box) -> None:
        entry = box.cart._cat.get(self.path)
        if entry is None:
            raise NotFoundError(f"no such file: {self.path}", self.path)
        self.size = self.stored = entry.size
        self.file_id = entry.file_id
        self.inline = bool(entry.flags & ENTRY_INLINE)
        self.chunks: dict[int, tuple[int, int] | None] = {}
        self.epoch = box.epoch

    def flush(self, box: _Box) -> None:
        """Apply the buffered writes to the container's pending transaction.

        Each chunk they touch is assembled once (its current bytes, then the
        writes in the order SQLite issued them) and runs of consecutive
        chunks go to :meth:`Cartridge.write_at` as one write, so a chunk is
        copied on write once per flush however many pages of it SQLite wrote.
        """
        writes, self.buf = self.buf, []
        self.lo = self.hi = 0
        shift, mask = self.shift, self.mask
        ch = mask + 1
        stored = self.stored
        staged: dict[int, bytearray] = {}
        cart = box.cart
        for off, data in writes:
            n = len(data)
            index, lo = off >> shift, off & mask
            if lo + n <= ch:  # the common case: inside one chunk
                chunk = staged.get(index)
                if chunk is None:
                    chunk = staged[index] = self._stage(cart, index, stored, lo == 0 and n == ch)
                chunk[lo : lo + n] = data
                continue
            view = memoryview(data)
            pos = 0
            while pos < n:
                o = off + pos
                index, lo = o >> shift, o & mask
                take = min(n - pos, ch - lo)
                chunk = staged.get(index)
                if chunk is None:
                    chunk = staged[index] = self._stage(cart, index, stored, take == ch)
                chunk[lo : lo + take] = view[pos : pos + take]
                pos += take
        order = sorted(staged)
        size = self.size
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and order[j + 1] == order[j] + 1:
                j += 1
            start = order[i] << shift
            end = min((order[j] + 1) << shift, size)
            run = staged[order[i]] if i == j else b"".join(staged[c] for c in order[i : j + 1])
            cart.write_at(self.path, start, memoryview(run)[: end - start])
            for c in order[i : j + 1]:
                self.chunks.pop(c, None)
            i = j + 1
        self.stored = max(stored, size)
        if self.inline:
            self.reload(box)

    def _stage(self, cart: Cartridge, index: int, stored: int, whole: bool) -> bytearray:
        """A chunk's current bytes to apply writes to (zeros past the end)."""
        chunk = bytearray(self.mask + 1)
        have = min(self.mask + 1, stored - (index << self.shift))
        if have > 0 and not whole:
            chunk[:have] = cart.read(self.path, index << self.shift, have)
        return chunk

    def locate(self, box: _Box, index: int) -> tuple[int, int] | None:
        """Where chunk ``index`` lives, its checksum verified the first time.

        The check (XXH64 of at most one chunk, numba) runs once per chunk
        location, so damaged pages raise ``apsw.CorruptError`` instead of
        reaching SQLite, at a cost amortized over the chunk's pages.
        """
        rec = box.cart._cat.chunk(self.file_id, index)
        if rec is None or not rec[0] or not plain_chunk(rec):
            loc = None  # holes, and compressed or sealed chunks, are read through read()
        else:
            got = checksum(box.cart._pager.data_array(rec[0], rec[2]))
            if got != rec[6]:
                raise apsw.CorruptError(
                    f"cartridge VFS: {self.path} chunk {index} (data pages {rec[0]}.."
                    f"{rec[0] + rec[1] - 1}) fails its checksum; the container is damaged "
                    "(run cart check --data)")
            loc = (rec[0] * PAGE_SIZE, rec[2])
        self.chunks[index] = loc
        return loc


_BOXES: dict[str, _Box] = {}
_BOXES_LOCK = threading.RLock()
_DB_OWNERS: dict[str, list[_Box]] = {}
"""Inner database path -> the containers that have it open, once per open
main file (journal and WAL files are named after their database path alone)."""

_LOCAL = threading.local()
"""Per thread: ``recent`` maps a database path to the container whose main
file this thread used last, ``box`` is the last container used.  SQLite opens,
probes and deletes a database's journal and WAL in the thread that is working
on that database, right after locking it, so this resolves a journal name to
the right container even when two containers hold databases at the same path."""

_SHM_DIR: str | None = None


def _shm_dir() -> str:
    """A private directory for the unix VFS's wal-index files (this process only)."""
    global _SHM_DIR
    if _SHM_DIR is None:
        _remove_dead_shm_dirs()
        _SHM_DIR = tempfile.mkdtemp(prefix=f"{_SHM_PREFIX}{os.getpid()}-")
        atexit.register(shutil.rmtree, _SHM_DIR, True)
    elif not os.path.isdir(_SHM_DIR):  # removed by a temp-file cleaner
        os.makedirs(_SHM_DIR, 0o700, exist_ok=True)
    return _SHM_DIR


_SHM_PREFIX = "cartridge-sqlite-shm-"


def _remove_dead_shm_dirs() -> None:
    """Delete the wal-index directories of processes that died without atexit
    (SIGKILL); their names carry the owner's pid."""
    root = tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for name in os.listdir(root):
            if not name.startswith(_SHM_PREFIX):
                continue
            pid = name[len(_SHM_PREFIX):].split("-", 1)[0]
            if not pid.isdigit():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            except OSError:
                continue


def _get_box(cart_path: str, flags: int) -> _Box:
    """The shared box for a container, opening it the way SQLite's flags ask."""
    real = os.path.realpath(cart_path)
    box = _BOXES.get(real)
    if box is not None and not box.cart.closed:
        return box
    if flags & apsw.SQLITE_OPEN_READONLY:
        cart = _open_reader(real)
    else:
        mode = "a" if flags & apsw.SQLITE_OPEN_CREATE else "r+"
        try:
            cart = open_container(real, mode)
        except LockedError:
            # Another process writes this container: read-only databases.
            cart = _open_reader(real)
    box = _Box(cart, own=True)
    _BOXES[real] = box
    return box


def _open_reader(path: str) -> Cartridge:
    """Open a container read-only beside a live writer.

    Opening maps the file and then reads the meta pages; a writer that grows
    the file in between makes the newest meta page describe more pages than
    the mapping holds, which the core reports as corruption.  That race is
    retried a few times; a container that stays unreadable raises.
    """
    attempt = 0
    while True:
        try:
            return open_container(path, "r")
        except CorruptionError:
            attempt += 1
            if attempt >= _OPEN_RETRIES:
                raise
            time.sleep(0.01 * attempt)


def _release_box(box: _Box) -> None:
    box.refs -= 1
    if box.refs <= 0:
        real = os.path.realpath(box.cart.path)
        if _BOXES.get(real) is box:
            del _BOXES[real]
        if box.writable and not box.cart.closed:
            box.commit()
        if box.own:
            box.cart.close()


# ------------------------------------------------------------------------ VFS
class CartridgeVFS(apsw.VFS):
    """The ``"cartridge"`` VFS.  Files are named by their path inside the
    container; the container comes from the ``cartridge=`` URI parameter (or,
    for journals and WAL files, from the database they belong to)."""

    def __init__(self) -> None:
        super().__init__(VFS_NAME, "")

    # --- names
    def xFullPathname(self, name: str) -> str:  # noqa: N802 - SQLite's name
        return paths.normalize(name)

    def _box_for(self, name: str) -> tuple[_Box, str]:
        """The container of a file SQLite names by its path alone."""
        base = name
        for suffix in ("-journal", "-wal", "-mj"):
            if suffix in name:
                base = name.rsplit(suffix, 1)[0]
                break
        owners = _DB_OWNERS.get(base)
        if owners:
            recent = getattr(_LOCAL, "recent", None)
            box = recent.get(base) if recent else None
            if box is not None and box in owners:
                return box, name
            if all(b is owners[0] for b in owners):
                return owners[0], name
            raise apsw.CantOpenError(
                f"cartridge VFS: {base} is open in several containers and this thread "
                "has used none of them; open it through connect() or a cartridge= URI")
        box = getattr(_LOCAL, "box", None)
        if base == name and box is not None and not box.cart.closed:
            return box, name  # e.g. ATTACH of another database in the same container
        raise apsw.CantOpenError(
            f"cartridge VFS: {name} belongs to no open database; open databases "
            "with cartridge.sqlite.connect() or a URI with cartridge=/path/to.cart")

    # --- files
    def xOpen(self, name: Any, flags: list[int]) -> Any:  # noqa: N802
        inflags = flags[0]
        if name is None:
            flags[1] = inflags
            return _MemoryFile()
        with _BOXES_LOCK:
            if isinstance(name, apsw.URIFilename):
                inner = paths.normalize(name.filename())
                cart_path = name.uri_parameter("cartridge")
                if cart_path is not None:
                    box = _get_box(cart_path, inflags)
                else:
                    box, inner = self._box_for(inner)
            else:
                box, inner = self._box_for(_normal(name))
            box.refs += 1
            try:
                f = self._open(box, inner, inflags, flags)
            except BaseException:
                _release_box(box)
                raise
            return f

    def _open(self, box: _Box, inner: str, inflags: int, flags: list[int]) -> Any:
        cart = box.cart
        with box.lock:
            readonly = not box.writable or bool(inflags & apsw.SQLITE_OPEN_READONLY)
            exists = cart.exists(inner)
            if not exists:
                if inflags & _WAL and not box.writable:
                    flags[1] = (inflags & ~(apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
                                ) | apsw.SQLITE_OPEN_READONLY
                    return _EmptyWal(box, inner[: -len("-wal")])
                if readonly or not inflags & apsw.SQLITE_OPEN_CREATE:
                    raise apsw.CantOpenError(
                        f"cartridge VFS: {inner} does not exist in {cart.path}"
                        + (" (the container is open read-only)" if not box.writable else ""))
                cart.write(inner, b"")
                box.exists[inner] = True
            elif inflags & apsw.SQLITE_OPEN_EXCLUSIVE:
                raise apsw.CantOpenError(f"cartridge VFS: {inner} already exists")
        out = inflags
        if readonly:
            out = (out & ~(apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
                   ) | apsw.SQLITE_OPEN_READONLY
        flags[1] = out
        if inflags & _MAIN:
            return _MainFile(box, inner, inflags, readonly)
        if inflags & _WAL:
            return _WalFile(box, inner, inflags, readonly)
        return _ContainerFile(box, inner, inflags, readonly)

    def xDelete(self, name: str, syncdir: bool) -> None:  # noqa: N802
        with _BOXES_LOCK:
            box, inner = self._box_for(_normal(name))
        with box.lock:
            if not box.writable:
                raise apsw.ReadOnlyError(f"cartridge VFS: {box.cart.path} is open read-only")
            box.exists[inner] = False
            st = box.files.pop(inner, None)
            if st is not None:
                st.live = False
            if st is not None and st.buf:
                box.buffered -= sum(len(d) for _o, d in st.buf)
                st.buf = []
            try:
                box.cart.delete(inner)
            except NotFoundError:
                return  # like unlink of a missing file: nothing to delete, nothing to commit
            if inner.endswith("-journal"):
                txn = box.txns.get(inner[: -len("-journal")])
                if txn is not None:
                    txn.journal_live = False
            # Deleting a journal or WAL file is a commit point of SQLite's.
            box.commit()

    def xAccess(self, name: str, flags: int) -> bool:  # noqa: N802
        with _BOXES_LOCK:
            try:
                box, inner = self._box_for(_normal(name))
            except apsw.CantOpenError:
                return False
        with box.lock:
            cart = box.cart
            if cart.closed:
                return False
            if box.writable:
                # Only this process changes a container it writes, and every
                # SQLite file it creates or deletes goes through this VFS.
                known = box.exists.get(inner)
                if known is None:
                    entry = cart._cat.get(inner)
                    known = box.exists[inner] = entry is not None and entry.kind == KIND_FILE
                return known
            # A read-only handle moved to the newest commit at the SHARED lock.
            entry = cart._cat.get(inner)
            if entry is None or entry.kind != KIND_FILE:
                return False
            return flags != _ACCESS_READWRITE


_NORMAL: dict[str, str] = {}


def _normal(name: str) -> str:
    """``paths.normalize``, remembered (SQLite asks about the same few names)."""
    got = _NORMAL.get(name)
    if got is None:
        if len(_NORMAL) > 4096:
            _NORMAL.clear()
        got = _NORMAL[name] = paths.normalize(name)
    return got


def _release_box_if_unused(box: _Box) -> None:
    if box.refs == 0:
        box.refs = 1
        _release_box(box)


# ----------------------------------------------------------------------- files
class _Unlocked:
    """What every file of ours answers alike: the sector size and device
    characteristics the container really gives, and no locks of its own (the
    main database file overrides the lock methods; journals, WAL files and
    temp files are covered by their database's locks)."""

    def xSectorSize(self) -> int:  # noqa: N802
        return PAGE_SIZE

    def xDeviceCharacteristics(self) -> int:  # noqa: N802
        return _IOCAP

    def xLock(self, level: int) -> None:  # noqa: N802
        return None

    def xUnlock(self, level: int) -> None:  # noqa: N802
        return None

    def xCheckReservedLock(self) -> bool:  # noqa: N802
        return False


class _MemoryFile(_Unlocked):
    """A temp file SQLite opened without a name: private heap memory."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def xRead(self, amount: int, offset: int) -> bytes:  # noqa: N802
        return bytes(self.buf[offset : offset + amount])

    def xWrite(self, data: bytes, offset: int) -> None:  # noqa: N802
        end = offset + len(data)
        if end > len(self.buf):
            self.buf.extend(bytes(end - len(self.buf)))
        self.buf[offset:end] = data

    def xTruncate(self, size: int) -> None:  # noqa: N802
        del self.buf[size:]

    def xFileSize(self) -> int:  # noqa: N802
        return len(self.buf)

    def xSync(self, flags: int) -> None:  # noqa: N802
        return None

    def xClose(self) -> None:  # noqa: N802
        self.buf = bytearray()

    def xFileControl(self, op: int, ptr: int) -> bool:  # noqa: N802
        return False


class _FileOps(_Unlocked):
    """Reads, writes and sizes of one container file, for the VFS file classes."""

    def _setup(self, box: _Box, inner: str, readonly: bool) -> None:
        self.box = box
        self.follow = not box.writable
        """Read-only handles: chunk positions follow the commit the handle reads."""
        self.inner = inner
        self.readonly = readonly
        self.closed = False
        st = box.files.get(inner)
        if st is None:
            with box.lock:
                st = box.files[inner] = _FileState(box, inner)
        self.st = st

    def _state(self) -> _FileState:
        st = self.st
        box = self.box
        if (self.follow and st.epoch != box.cart._gen) or box.files.get(self.inner) is not st:
            st = box.files.get(self.inner)
            if st is None:
                st = box.files[self.inner] = _FileState(box, self.inner)
            elif st.epoch != box.epoch:
                st.reload(box)
            self.st = st
        return st

    def xRead(self, amount: int, offset: int) -> Any:  # noqa: N802
        """The hot path: a memoryview of the mapped bytes when they lie in one chunk."""
        box = self.box
        with box.lock:
            st = self.st
            if not st.live or (self.follow and st.epoch != box.cart._gen):
                st = self._state()
            end = offset + amount
            if st.buf and offset < st.hi and end > st.lo:
                box.flush()
            if end <= st.stored:
                index = offset >> st.shift
                loc = st.chunks.get(index, False)
                if loc is False:
                    loc = None if st.inline else st.locate(box, index)
                if loc is not None:
                    lo = offset & st.mask
                    if lo + amount <= loc[1]:
                        pos = loc[0] + lo
                        return box.cart._mf.view[pos : pos + amount]
            # Inline files, holes, reads across chunks or past the end.
            return box.cart.read(self.inner, offset, amount)

    def xWrite(self, data: bytes, offset: int) -> None:  # noqa: N802
        """Buffer the write; see :meth:`_FileState.flush`."""
        if self.readonly:
            raise apsw.ReadOnlyError(f"cartridge VFS: {self.inner} is open read-only")
        box = self.box
        n = len(data)
        end = offset + n
        with box.lock:
            st = self.st
            if not st.live:
                st = self._state()
            buf = st.buf
            if buf:
                if offset < st.lo:
                    st.lo = offset
                if end > st.hi:
                    st.hi = end
            else:
                st.lo, st.hi = offset, end
            buf.append((offset, data))
            if end > st.size:
                st.size = end
            box.buffered += n
            if box.buffered > _BUFFER_LIMIT:
                box.flush()
            self._wrote()

    def _wrote(self) -> None:
        return None

    def xTruncate(self, size: int) -> None:  # noqa: N802
        if self.readonly:
            raise apsw.ReadOnlyError(f"cartridge VFS: {self.inner} is open read-only")
        box = self.box
        with box.lock:
            st = self._state()
            if size != st.size:
                box.flush()
                box.cart.truncate(self.inner, size)
                st.reload(box)
                self._wrote()

    def xFileSize(self) -> int:  # noqa: N802
        with self.box.lock:
            return self._state().size

    def xSync(self, flags: int) -> None:  # noqa: N802
        box = self.box
        if box.writable:
            with box.lock:
                box.commit()

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with _BOXES_LOCK:
            _release_box(self.box)


class _ContainerFile(_FileOps):
    """A rollback or super journal (or any other named file) in the container."""

    def xFileControl(self, op: int, ptr: int) -> bool:  # noqa: N802
        """No file controls (SQLite treats them as unsupported)."""
        return False

    def __init__(self, box: _Box, inner: str, flags: int, readonly: bool) -> None:
        self._setup(box, inner, readonly)
        self.journal = bool(flags & apsw.SQLITE_OPEN_MAIN_JOURNAL)
        self.delete_on_close = bool(flags & apsw.SQLITE_OPEN_DELETEONCLOSE)
        db = inner[: -len("-journal")] if inner.endswith("-journal") else inner
        self.txn = box.txns.setdefault(db, _TxnState())

    def xSync(self, flags: int) -> None:  # noqa: N802
        # A journal sync before any database page is written only orders the
        # journal before the overwrite; copy-on-write gives that for free.
        if self.journal and not self.txn.db_written:
            return
        super().xSync(flags)

    def xWrite(self, data: bytes, offset: int) -> None:  # noqa: N802
        super().xWrite(data, offset)
        if self.journal and offset == 0:
            if any(bytes(data[:8])):
                self.txn.journal_live = True
            elif self.txn.journal_live:
                # PERSIST (and exclusive-mode) finalization: the zeroed header
                # is SQLite's commit point.
                self.txn.journal_live = False
                with self.box.lock:
                    self.box.commit()

    def xTruncate(self, size: int) -> None:  # noqa: N802
        super().xTruncate(size)
        if self.journal and size == 0 and self.txn.journal_live:
            # TRUNCATE finalization: SQLite's commit point.
            self.txn.journal_live = False
            with self.box.lock:
                self.box.commit()

    def xClose(self) -> None:  # noqa: N802
        if self.delete_on_close and not self.closed and self.box.writable:
            with self.box.lock, contextlib.suppress(NotFoundError):
                st = self.box.files.pop(self.inner, None)
                if st is not None:
                    st.buf = []
                    st.live = False
                self.box.exists[self.inner] = False
                self.box.cart.delete(self.inner)
        self._close()


_MAIN_FILES: dict[tuple[int, str], _MainFile] = {}


def _wal_claim(box: _Box, db: str) -> None:
    """Take (or share, within this process) the WAL-owner byte of ``db``."""
    with _BOXES_LOCK:
        held = box.wal.get(db)
        if held is None:
            fd = os.open(lock_path(box.cart.path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                _ofd(fd, fcntl.F_OFD_SETLK, fcntl.F_WRLCK, _region(db) + _WAL_OFF, 1)
            except OSError:
                os.close(fd)
                raise apsw.CantOpenError(
                    f"cartridge VFS: another process has {db} open in WAL mode; WAL "
                    "databases inside a container are shared by the connections of one "
                    "process only (use journal_mode=DELETE to share across processes)"
                ) from None
            held = box.wal[db] = [fd, 0]
        held[1] += 1


def _wal_unclaim(box: _Box, db: str) -> None:
    with _BOXES_LOCK:
        held = box.wal.get(db)
        if held is not None:
            held[1] -= 1
            if held[1] == 0:
                os.close(held[0])
                del box.wal[db]


class _WalFile(_FileOps):
    """The WAL file.  Shared-memory WAL works within one process only: the
    WAL-owner byte keeps a second process out with a clear error."""

    def __init__(self, box: _Box, inner: str, flags: int, readonly: bool) -> None:
        self.db = inner[: -len("-wal")]
        _wal_claim(box, self.db)
        self._setup(box, inner, readonly)

    def xFileControl(self, op: int, ptr: int) -> bool:  # noqa: N802
        """No file controls (SQLite treats them as unsupported)."""
        return False

    def xClose(self) -> None:  # noqa: N802
        if self.closed:
            return
        _wal_unclaim(self.box, self.db)
        self._close()


class _EmptyWal(_MemoryFile):
    """A read-only container's view of a WAL file that does not exist: empty.

    SQLite needs a WAL file to read a WAL database even when it has nothing in
    it; the last commit has none, so an empty one is exactly what it holds.
    """

    def __init__(self, box: _Box, db: str) -> None:
        _wal_claim(box, db)
        super().__init__()
        self.box = box
        self.db = db
        self.closed = False

    def xWrite(self, data: bytes, offset: int) -> None:  # noqa: N802
        raise apsw.ReadOnlyError(f"cartridge VFS: {self.db}-wal is read-only")

    def xClose(self) -> None:  # noqa: N802
        if not self.closed:
            self.closed = True
            _wal_unclaim(self.box, self.db)
            with _BOXES_LOCK:
                _release_box(self.box)


def _remember(box: _Box, inner: str) -> None:
    """Note that this thread is working on database ``inner`` of ``box``."""
    recent = getattr(_LOCAL, "recent", None)
    if recent is None:
        recent = _LOCAL.recent = {}
    recent[inner] = box
    _LOCAL.box = box


def _ofd(fd: int, cmd: int, kind: int, start: int, length: int) -> bytes:
    return fcntl.fcntl(fd, cmd, _FLOCK.pack(kind, os.SEEK_SET, start, length, 0))


class _MainFile(_FileOps, apsw.VFSFile):
    """A main database file.

    It inherits from the unix VFS opened on an empty placeholder file in a
    private temp directory for one reason: SQLite's xShm methods (the
    wal-index) cannot be written in Python, and apsw forwards them to the
    inherited file.  Every other method is below and never touches the
    placeholder.  File controls (``xFileControl``) go to that unix file too:
    the ones SQLite sends to a main database concern the wal-index locks the
    unix file implements (``SQLITE_FCNTL_LOCK_TIMEOUT``, external readers) or
    are no-ops on an empty file, and skipping a Python call matters on the
    WAL read path, which sends three per statement.
    """

    def __init__(self, box: _Box, inner: str, flags: int, readonly: bool) -> None:
        key = hashlib.blake2b(f"{os.path.realpath(box.cart.path)}\0{inner}".encode(),
                              digest_size=12).hexdigest()
        holder = os.path.join(_shm_dir(), key + ".db")
        super().__init__("unix", holder, [apsw.SQLITE_OPEN_MAIN_DB | apsw.SQLITE_OPEN_READWRITE
                                          | apsw.SQLITE_OPEN_CREATE, 0])
        self._setup(box, inner, readonly)
        self.level = 0
        self.txn = box.txns.setdefault(inner, _TxnState())
        self.region = _region(inner)
        self._args: dict[tuple[int, int, int], bytes] = {}
        self.lock_fd = os.open(lock_path(box.cart.path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                               0o644)
        self.key = (id(box), inner)
        _remember(box, inner)
        with _BOXES_LOCK:
            _DB_OWNERS.setdefault(inner, []).append(box)
            _MAIN_FILES[self.key] = self

    # --- locks
    def _set(self, kind: int, off: int, length: int) -> bool:
        """One OFD lock call; the packed ``struct flock`` is built once."""
        key = (kind, off, length)
        arg = self._args.get(key)
        if arg is None:
            arg = self._args[key] = _FLOCK.pack(kind, os.SEEK_SET, self.region + off, length, 0)
        try:
            fcntl.fcntl(self.lock_fd, _SETLK, arg)
        except (BlockingIOError, PermissionError):
            return False
        return True

    def xLock(self, level: int) -> None:  # noqa: N802
        _remember(self.box, self.inner)
        cur = self.level
        if cur >= level:
            return
        rd, wr = fcntl.F_RDLCK, fcntl.F_WRLCK
        if level == _SHARED_LOCK:
            if not self._set(rd, _PENDING_OFF, 1):
                raise apsw.BusyError("cartridge VFS: database is locked (pending writer)")
            ok = self._set(rd, _SHARED_OFF, _SHARED_LEN)
            self._set(fcntl.F_UNLCK, _PENDING_OFF, 1)
            if not ok:
                raise apsw.BusyError("cartridge VFS: database is locked")
            self.level = _SHARED_LOCK
            with self.box.lock:
                self.box.refresh()
            return
        if level == _RESERVED_LOCK:
            if not self._set(wr, _RESERVED_OFF, 1):
                raise apsw.BusyError("cartridge VFS: database is locked (reserved)")
            self.level = _RESERVED_LOCK
            return
        if cur < _PENDING_LOCK:
            if not self._set(wr, _PENDING_OFF, 1):
                raise apsw.BusyError("cartridge VFS: database is locked (pending)")
            self.level = _PENDING_LOCK
        if level == _EXCLUSIVE_LOCK:
            if not self._set(wr, _SHARED_OFF, _SHARED_LEN):
                raise apsw.BusyError("cartridge VFS: database is locked (readers)")
            self.level = _EXCLUSIVE_LOCK

    def xUnlock(self, level: int) -> None:  # noqa: N802
        cur = self.level
        if cur <= level:
            return
        if cur >= _RESERVED_LOCK:
            # The end of a write transaction: make it durable and visible
            # before any other connection can take a lock.
            box = self.box
            if box.writable:
                with box.lock:
                    box.commit()
            self.txn.db_written = False
        if level == _SHARED_LOCK:
            if cur >= _EXCLUSIVE_LOCK:
                self._set(fcntl.F_RDLCK, _SHARED_OFF, _SHARED_LEN)
            self._set(fcntl.F_UNLCK, _PENDING_OFF, 2)
        else:
            self._set(fcntl.F_UNLCK, _PENDING_OFF, _SHARED_OFF + _SHARED_LEN)
        self.level = level

    def xCheckReservedLock(self) -> bool:  # noqa: N802
        if self.level >= _RESERVED_LOCK:
            return True
        got = _ofd(self.lock_fd, fcntl.F_OFD_GETLK, fcntl.F_WRLCK,
                   self.region + _RESERVED_OFF, 1)
        return _FLOCK.unpack(got)[0] != fcntl.F_UNLCK

    def _wrote(self) -> None:
        self.txn.db_written = True

    def xSync(self, flags: int) -> None:  # noqa: N802
        # With a live rollback journal the commit point is the journal's
        # finalization, which commits; committing here too would only add a
        # durable "new pages + hot journal" state that recovery rolls back.
        if self.txn.journal_live:
            return
        super().xSync(flags)

    def xClose(self) -> None:  # noqa: N802
        if self.closed:
            return
        with contextlib.suppress(OSError):
            self.xUnlock(0)
        os.close(self.lock_fd)
        box = self.box
        with _BOXES_LOCK:
            if _MAIN_FILES.get(self.key) is self:
                del _MAIN_FILES[self.key]
            owners = _DB_OWNERS.get(self.inner, [])
            if box in owners:
                owners.remove(box)
            if not owners:
                _DB_OWNERS.pop(self.inner, None)
        super().xClose()
        if box.writable and not box.cart.closed:
            # Closing a database makes whatever it wrote durable (this
            # matters with synchronous=OFF, where nothing else may have).
            with box.lock:
                box.commit()
        self._close()


# ------------------------------------------------------------------ public API
_VFS: CartridgeVFS | None = None


def register() -> str:
    """Register the ``"cartridge"`` VFS with SQLite (idempotent); return its name."""
    global _VFS
    with _BOXES_LOCK:
        if _VFS is None or VFS_NAME not in apsw.vfs_names():
            _VFS = CartridgeVFS()
    return VFS_NAME


def unregister() -> None:
    """Remove the VFS (connections using it must be closed first)."""
    global _VFS
    with _BOXES_LOCK:
        if _VFS is not None:
            _VFS.unregister()
            _VFS = None


def uri(container: str | os.PathLike[str], db_path: str, **params: str) -> str:
    """The SQLite URI naming database ``db_path`` inside ``container``."""
    query = {"vfs": VFS_NAME, "cartridge": os.path.realpath(os.fspath(container)), **params}
    return "file:" + urllib.parse.quote(paths.normalize(db_path)) + "?" + \
        urllib.parse.urlencode(query, quote_via=urllib.parse.quote)


def connect(cart_or_path: Cartridge | str | os.PathLike[str], db_path: str, *,
            readonly: bool = False, create: bool = True, timeout: float = 5.0,
            flags: int | None = None, **kwargs: Any) -> apsw.Connection:
    """Open the SQLite database ``db_path`` inside a container.

    Parameters
    ----------
    cart_or_path:
        A container path (opened read-write when no other process writes it,
        created if missing and ``create``; read-only otherwise) or an open
        :class:`~cartridge.Cartridge` you own — then SQLite shares your handle,
        and a SQLite commit also commits your handle's pending changes.
    db_path:
        The database's path inside the container, e.g. ``"/db/app.db"``.
    readonly:
        Open the database read-only.
    create:
        Create the database (and the container) when missing.
    timeout:
        SQLite busy timeout in seconds (how long to wait for locks).
    flags:
        Explicit SQLite open flags (overrides ``readonly``/``create``).
    kwargs:
        Passed to :class:`apsw.Connection` (e.g. ``statementcachesize``).
    """
    register()
    if flags is None:
        flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE
        if create and not readonly:
            flags |= apsw.SQLITE_OPEN_CREATE
    flags |= apsw.SQLITE_OPEN_URI
    with _BOXES_LOCK:
        if isinstance(cart_or_path, Cartridge):
            cart = cart_or_path
            real = os.path.realpath(cart.path)
            box = _BOXES.get(real)
            if box is not None and box.cart is not cart and not box.cart.closed:
                raise ValueError(f"{real} is already open for SQLite through another handle "
                                 "in this process")
            if box is None or box.cart is not cart:
                box = _Box(cart, own=False)
                _BOXES[real] = box
            path = cart.path
        else:
            path = os.fspath(cart_or_path)
            box = _get_box(path, flags)
        box.refs += 1  # held while the connection opens
    try:
        conn = apsw.Connection(uri(path, db_path), flags=flags, vfs=VFS_NAME, **kwargs)
    finally:
        with _BOXES_LOCK:
            _release_box(box)
    conn.set_busy_timeout(int(timeout * 1000))
    return conn
