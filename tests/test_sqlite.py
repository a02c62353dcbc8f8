"""SQLite through the cartridge VFS: journal modes, locking, processes, round trips."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import apsw
import pytest

import cartridge
from cartridge import sqlite
from cartridge.cli import main as cart_main
from cartridge.sqlite.registry import MAIN_FILES
from cartridge.testing import scaled
from cartridge.testing.workloads.sqlite import payload

WORKER = [sys.executable, "-m", "cartridge.testing.workloads.sqlite"]
MODES = ["delete", "truncate", "persist", "memory", "off", "wal"]


def fill(conn: apsw.Connection, n: int = 3000) -> None:
    conn.execute("CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c BLOB)")
    with conn:
        conn.executemany("INSERT INTO t(b, c) VALUES(?, ?)",
                         [(f"name {i:06d}", payload(i)[: 50 + i % 700]) for i in range(n)])
    conn.execute("CREATE INDEX t_b ON t(b)")
    for i in range(20):
        with conn:
            conn.execute("UPDATE t SET b = b || '!' WHERE a = ?", (i * 7 + 1,))
            conn.execute("DELETE FROM t WHERE a = ?", (i * 11 + 2,))


def _reference() -> list:
    mem = apsw.Connection(":memory:")
    fill(mem)
    return mem.execute("SELECT * FROM t ORDER BY a").fetchall()


REFERENCE = _reference()


def check(conn: apsw.Connection) -> None:
    """integrity_check is ok and the table equals the same workload in memory."""
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("SELECT * FROM t ORDER BY a").fetchall() == REFERENCE
    rows = conn.execute("SELECT a FROM t INDEXED BY t_b WHERE b >= 'name 000100' "
                        "ORDER BY b LIMIT 11").fetchall()
    assert len(rows) == 11


@pytest.mark.parametrize("mode", MODES)
def test_every_journal_mode(tmp_path: Path, mode: str) -> None:
    cart = tmp_path / "a.cart"
    conn = sqlite.connect(cart, "/db/app.db")
    assert conn.execute(f"PRAGMA journal_mode={mode}").fetchall() == [(mode,)]
    fill(conn)
    check(conn)
    conn.close()
    conn = sqlite.connect(cart, "/db/app.db")
    check(conn)
    conn.close()
    with cartridge.open(cart, "r") as c:
        assert c.verify().ok
        assert "/db/app.db" in c.list("/db")
        assert "/db/app.db-wal" not in c.list("/db")  # checkpointed and removed at close


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_exclusive_locking_mode(tmp_path: Path, mode: str) -> None:
    cart = tmp_path / "a.cart"
    conn = sqlite.connect(cart, "/db/app.db")
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    assert conn.execute(f"PRAGMA journal_mode={mode}").fetchall() == [(mode,)]
    fill(conn)
    check(conn)
    other = sqlite.connect(cart, "/db/app.db", timeout=0)
    with pytest.raises(apsw.BusyError):
        other.execute("SELECT count(*) FROM t").fetchall()
    other.close()
    conn.close()
    conn = sqlite.connect(cart, "/db/app.db")
    check(conn)
    conn.close()


def test_shared_memory_wal_between_connections(tmp_path: Path) -> None:
    cart = tmp_path / "a.cart"
    a = sqlite.connect(cart, "/db/app.db")
    assert a.execute("PRAGMA journal_mode=WAL").fetchall() == [("wal",)]
    a.execute("CREATE TABLE t(x)")
    b = sqlite.connect(cart, "/db/app.db")
    b.execute("BEGIN")
    assert b.execute("SELECT count(*) FROM t").fetchone() == (0,)
    with a:
        a.executemany("INSERT INTO t VALUES(?)", [(i,) for i in range(1000)])
    # b's read transaction keeps its snapshot; a new one sees the commit.
    assert b.execute("SELECT count(*) FROM t").fetchone() == (0,)
    b.execute("COMMIT")
    assert b.execute("SELECT count(*) FROM t").fetchone() == (1000,)
    with b:
        b.execute("INSERT INTO t VALUES(-1)")
    assert a.execute("SELECT count(*) FROM t").fetchone() == (1001,)
    assert a.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    assert a.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    a.close()
    b.close()


def test_shared_wal_across_processes_is_refused(tmp_path: Path) -> None:
    cart = tmp_path / "a.cart"
    a = sqlite.connect(cart, "/db/app.db")
    a.execute("PRAGMA journal_mode=WAL")
    a.execute("CREATE TABLE t(x)")
    code = ("import apsw, sys\nfrom cartridge import sqlite\n"
            f"c = sqlite.connect({str(cart)!r}, '/db/app.db', timeout=0)\n"
            "try:\n    c.execute('SELECT count(*) FROM t').fetchall()\n"
            "except apsw.CantOpenError as e:\n    print('refused'); sys.exit(0)\n"
            "print('not refused')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert "refused" == out.stdout.strip(), out.stderr
    a.close()


def test_busy_and_busy_timeout_between_connections(tmp_path: Path) -> None:
    cart = tmp_path / "a.cart"
    a = sqlite.connect(cart, "/db/app.db")
    a.execute("CREATE TABLE t(x)")
    b = sqlite.connect(cart, "/db/app.db", timeout=0)
    a.execute("BEGIN EXCLUSIVE")
    a.execute("INSERT INTO t VALUES(1)")
    with pytest.raises(apsw.BusyError):
        b.execute("SELECT * FROM t").fetchall()
    with pytest.raises(apsw.BusyError):
        b.execute("INSERT INTO t VALUES(2)")
    a.execute("COMMIT")
    assert b.execute("SELECT * FROM t").fetchall() == [(1,)]
    # A reader's SHARED lock keeps a writer from committing (RESERVED is fine).
    b.execute("BEGIN")
    b.execute("SELECT * FROM t").fetchall()
    a.set_busy_timeout(0)
    a.execute("BEGIN IMMEDIATE")
    a.execute("INSERT INTO t VALUES(3)")
    with pytest.raises(apsw.BusyError):
        a.execute("COMMIT")
    b.execute("COMMIT")
    a.execute("COMMIT")
    # The busy timeout waits for the lock instead.
    a.execute("BEGIN EXCLUSIVE")
    b.set_busy_timeout(5000)
    release = threading.Timer(0.3, lambda: a.execute("COMMIT"))
    t0 = time.monotonic()
    release.start()
    assert b.execute("SELECT count(*) FROM t").fetchone() == (2,)
    assert time.monotonic() - t0 >= 0.25
    release.join()
    a.close()
    b.close()


def test_locks_between_processes(tmp_path: Path) -> None:
    cart = tmp_path / "a.cart"
    proc = subprocess.Popen([*WORKER, "hold", str(cart), "/db/app.db",
                             "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        reader = sqlite.connect(cart, "/db/app.db", timeout=0)
        assert reader.execute("PRAGMA query_only").fetchone() == (0,)
        # The child holds RESERVED: reading is fine, writing is not.
        assert reader.execute("SELECT count(*) FROM rows").fetchone() == (0,)
        with pytest.raises((apsw.BusyError, apsw.ReadOnlyError)):
            reader.execute("INSERT INTO rows VALUES(5, x'01')")
        reader.set_busy_timeout(10000)
        assert proc.stdout.readline().strip() == "released"
        assert reader.execute("SELECT count(*) FROM rows").fetchone() == (1,)
        reader.close()
    finally:
        proc.wait(timeout=60)


def test_writer_and_reader_processes(tmp_path: Path) -> None:
    cart = tmp_path / "a.cart"
    n = scaled(300)
    proc = subprocess.Popen([*WORKER, "writer", str(cart), "/db/app.db",
                             str(n)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        reader = sqlite.connect(cart, "/db/app.db", readonly=True, timeout=10)
        seen = [0]
        done = False
        while not done:
            done = proc.poll() is not None
            (count,) = reader.execute("SELECT count(*) FROM rows").fetchone()
            assert count >= seen[-1]
            seen.append(count)
            for k, v in reader.execute("SELECT k, v FROM rows WHERE k % 50 = 0"):
                assert v == payload(k)
            time.sleep(0.005)
        assert proc.returncode == 0
        assert seen[-1] == n
        assert len(set(seen)) > 2, "the reader never saw the writer's progress"
        assert reader.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        reader.close()
    finally:
        proc.kill()
        proc.wait()


def test_several_databases_and_files_side_by_side(tmp_path: Path) -> None:
    cart_path = tmp_path / "a.cart"
    with cartridge.create(cart_path) as cart:
        cart.write("/docs/readme.txt", b"hello")
        one = sqlite.connect(cart, "/db/one.db")
        two = sqlite.connect(cart, "/db/two.db")
        one.execute("CREATE TABLE t(x); INSERT INTO t VALUES('one')")
        two.execute("CREATE TABLE t(x); INSERT INTO t VALUES('two')")
        one.execute("ATTACH 'file:/db/two.db?vfs=cartridge' AS other")
        assert one.execute("SELECT x FROM other.t").fetchall() == [("two",)]
        with one:
            one.execute("INSERT INTO t VALUES('one-b')")
            one.execute("INSERT INTO other.t VALUES('two-b')")
        one.close()
        two.close()
        # A freeze-style copy taken while SQLite is idle holds a consistent database.
        shutil.copyfile(cart_path, tmp_path / "copy.cart")
    with cartridge.open(tmp_path / "copy.cart", "r") as copy:
        assert copy.read("/docs/readme.txt") == b"hello"
    c = sqlite.connect(tmp_path / "copy.cart", "/db/two.db")
    assert sorted(c.execute("SELECT x FROM t").fetchall()) == [("two",), ("two-b",)]
    assert c.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    c.close()


def test_uri_and_user_handle(tmp_path: Path) -> None:
    cart_path = tmp_path / "a.cart"
    sqlite.register()
    sqlite.register()  # idempotent
    uri = f"file:/db/app.db?vfs=cartridge&cartridge={cart_path}"
    flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE | apsw.SQLITE_OPEN_URI
    conn = apsw.Connection(uri, flags=flags)
    conn.execute("CREATE TABLE t(x); INSERT INTO t VALUES(42)")
    conn.close()
    with cartridge.open(cart_path) as cart:
        conn = sqlite.connect(cart, "/db/app.db")
        cart.write("/mine.txt", b"pending")
        with conn:
            conn.execute("INSERT INTO t VALUES(43)")
        conn.close()
        # The documented rule: the SQLite commit also committed the user's write.
        with cartridge.open(cart_path, "r") as ro:
            assert ro.read("/mine.txt") == b"pending"


def test_vfs_file_operations_pass_the_choke_point(tmp_path: Path) -> None:
    """Every VFS file operation on a container file calls ``env.dispatch`` with
    its action and the file's path first, and a hook that raises refuses it."""
    seen: list[tuple[str, tuple[str, ...]]] = []
    refuse: set[str] = set()

    def hook(op) -> None:
        seen.append((op.action, tuple(op.paths)))
        if op.action in refuse:
            raise PermissionError(f"{op.action} refused")

    db, journal = "/db/app.db", "/db/app.db-journal"
    with cartridge.create(tmp_path / "a.cart") as cart:
        cart.hooks.add(hook)
        conn = sqlite.connect(cart, db)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("CREATE TABLE t(x)")
        with conn:
            conn.executemany("INSERT INTO t VALUES(?)", [(i,) for i in range(100)])
        conn.execute("PRAGMA journal_mode=TRUNCATE")
        with conn:
            conn.execute("INSERT INTO t VALUES(100)")
        conn.close()
        expected = {("sqlite.open", (db,)), ("sqlite.open", (journal,)),
                    ("sqlite.read", (db,)), ("sqlite.write", (db,)),
                    ("sqlite.write", (journal,)), ("sqlite.sync", (db,)),
                    ("sqlite.sync", (journal,)), ("sqlite.access", (journal,)),
                    ("sqlite.delete", (journal,)), ("sqlite.truncate", (journal,))}
        assert expected <= set(seen), expected - set(seen)
        assert {action for action, _ in seen if action.startswith("sqlite.")} == {
            action for action, _ in expected}
        # The handle calls an operation makes are part of it: hooks see only the
        # VFS operations (SQLite's commit points as sqlite.sync), never the
        # file.* calls or container commits the VFS makes for them.
        assert {action for action, _ in seen} == {action for action, _ in expected}

        conn = sqlite.connect(cart, db)
        refuse.add("sqlite.write")
        with pytest.raises((PermissionError, apsw.Error)):
            with conn:
                conn.execute("INSERT INTO t VALUES(-1)")
        refuse.clear()
        assert conn.execute("SELECT count(*), min(x) FROM t").fetchall() == [(101, 0)]
        refuse.add("sqlite.read")
        conn.execute("PRAGMA cache_size=0")
        with pytest.raises((PermissionError, apsw.Error)):
            conn.execute("SELECT count(*) FROM t").fetchall()
        refuse.clear()
        conn.close()


def test_device_characteristics(tmp_path: Path) -> None:
    conn = sqlite.connect(tmp_path / "a.cart", "/db/app.db")
    conn.execute("CREATE TABLE t(x)")
    assert conn.vfsname("main").startswith("cartridge")
    path = str(tmp_path / "a.cart")
    (main,) = [f for f in MAIN_FILES.values() if f.session.cart.path == path]
    caps = main.xDeviceCharacteristics()
    for cap in ("ATOMIC", "SAFE_APPEND", "SEQUENTIAL", "POWERSAFE_OVERWRITE"):
        assert caps & getattr(apsw, f"SQLITE_IOCAP_{cap}")
    assert not caps & (apsw.SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN | apsw.SQLITE_IOCAP_IMMUTABLE
                       | apsw.SQLITE_IOCAP_BATCH_ATOMIC)
    assert main.xSectorSize() == 4096
    conn.close()


def test_round_trip_with_cart_get_and_put(tmp_path: Path, capsys) -> None:
    cart = tmp_path / "a.cart"
    conn = sqlite.connect(cart, "/db/app.db")
    fill(conn)
    expect = conn.execute("SELECT * FROM t ORDER BY a").fetchall()
    conn.close()
    out = tmp_path / "out.db"
    assert cart_main(["get", str(cart), "/db/app.db", str(out)]) == 0
    plain = sqlite3.connect(out)
    assert plain.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert plain.execute("SELECT * FROM t ORDER BY a").fetchall() == expect
    plain.execute("CREATE TABLE extra(y)")
    plain.execute("INSERT INTO extra VALUES('from sqlite3')")
    plain.commit()
    plain.close()
    assert cart_main(["put", str(cart), str(out), "/db/imported.db"]) == 0
    conn = sqlite.connect(cart, "/db/imported.db")
    assert conn.execute("SELECT * FROM t ORDER BY a").fetchall() == expect
    assert conn.execute("SELECT y FROM extra").fetchall() == [("from sqlite3",)]
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


def test_cli_sql(tmp_path: Path, capsys) -> None:
    cart = str(tmp_path / "a.cart")
    assert cart_main(["sql", cart, "/db/app.db", "-c", "CREATE TABLE t(x)",
                      "-c", "INSERT INTO t VALUES(7),(8)"]) == 0
    capsys.readouterr()
    assert cart_main(["sql", cart, "/db/app.db", "-c", "SELECT sum(x) FROM t"]) == 0
    assert capsys.readouterr().out.strip() == "15"
    assert cart_main(["sql", cart, "/db/app.db", "-c", "SELECT * FROM nosuch"]) == 2


def test_readonly_database(tmp_path: Path) -> None:
    cart = tmp_path / "a.cart"
    conn = sqlite.connect(cart, "/db/app.db")
    conn.execute("CREATE TABLE t(x); INSERT INTO t VALUES(1)")
    conn.close()
    ro = sqlite.connect(cart, "/db/app.db", readonly=True)
    assert ro.execute("SELECT x FROM t").fetchall() == [(1,)]
    with pytest.raises(apsw.ReadOnlyError):
        ro.execute("INSERT INTO t VALUES(2)")
    ro.close()
    with pytest.raises(apsw.CantOpenError):
        sqlite.connect(cart, "/db/missing.db", readonly=True)


@pytest.mark.slow
def test_one_gib_database_costs_pages_touched(tmp_path: Path) -> None:
    """A 1 GiB database: a point update writes a few pages, a point read is fast."""
    host = tmp_path / "big.db"
    plain = sqlite3.connect(host)
    plain.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB)")
    plain.execute("CREATE TABLE small(id INTEGER PRIMARY KEY, x)")
    plain.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1024) "
                  "INSERT INTO big SELECT i, zeroblob(1048576) FROM n")
    plain.executemany("INSERT INTO small VALUES(?, ?)", [(i, i) for i in range(1000)])
    plain.commit()
    plain.close()
    assert host.stat().st_size >= 1 << 30
    cart = tmp_path / "big.cart"
    assert cart_main(["put", str(cart), str(host), "/db/big.db"]) == 0
    host.unlink()
    conn = sqlite.connect(cart, "/db/big.db")
    with cartridge.open(cart, "r") as ro:
        before = ro.info()
    t0 = time.perf_counter()
    with conn:
        conn.execute("UPDATE small SET x = -x WHERE id = 500")
        conn.execute("UPDATE big SET v = zeroblob(10) WHERE id = 1000")
    assert conn.execute("SELECT x FROM small WHERE id = 500").fetchone() == (-500,)
    assert conn.execute("SELECT length(v) FROM big WHERE id = 999").fetchone() == (1 << 20,)
    elapsed = time.perf_counter() - t0
    with cartridge.open(cart, "r") as ro:
        after = ro.info()
    # Touched: a few chunks of the database and the journal, not 1 GiB.
    assert after.size == before.size
    assert abs(after.used_pages - before.used_pages) < 2048
    assert elapsed < 5.0
    assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    conn.close()


def test_stdlib_sqlite3_cannot_see_the_vfs(tmp_path: Path) -> None:
    """apsw bundles its own SQLite library; the VFS lives there, not in the one
    the stdlib ``sqlite3`` module links (the README says so)."""
    sqlite.register()
    uri = f"file:/db/app.db?vfs=cartridge&cartridge={tmp_path / 'a.cart'}"
    with pytest.raises(sqlite3.OperationalError, match="no such vfs"):
        sqlite3.connect(uri, uri=True).execute("SELECT 1")


@pytest.mark.parametrize("where", [0, 4096 * 2 + 100, 4096 * 5 + 7])
def test_flipped_database_bytes_are_reported(tmp_path: Path, where: int) -> None:
    """A damaged database page inside the container: SQLite reports corruption
    (or integrity_check does) and ``cart check --data`` fails; no crash, no hang."""
    cart = tmp_path / "a.cart"
    conn = sqlite.connect(cart, "/db/app.db")
    fill(conn)
    conn.close()
    with cartridge.open(cart, "r") as c:
        entry = c.txn.catalog.get("/db/app.db")
        first_page = c.txn.catalog.chunk(entry.file_id, where // c.chunk_size)[0]
    pos = first_page * 4096 + where % (64 * 1024)
    with open(cart, "r+b") as f:
        f.seek(pos)
        byte = f.read(1)
        f.seek(pos)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert cart_main(["check", str(cart), "--data"]) == 1
    with pytest.raises(apsw.CorruptError, match="fails its checksum"):
        conn = sqlite.connect(cart, "/db/app.db")
        try:
            conn.execute("SELECT * FROM t ORDER BY a").fetchall()
        finally:
            conn.close()


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_same_database_path_in_two_containers(tmp_path: Path, mode: str) -> None:
    """Journals are named after the database path alone; the VFS still finds
    the right container for each."""
    a = sqlite.connect(tmp_path / "a.cart", "/db/app.db")
    b = sqlite.connect(tmp_path / "b.cart", "/db/app.db")
    for conn in (a, b):
        conn.execute(f"PRAGMA journal_mode={mode}")
        conn.execute("CREATE TABLE t(x)")
    for i in range(20):
        for conn, name in ((a, "a"), (b, "b")):
            with conn:
                conn.execute("INSERT INTO t VALUES(?)", (f"{name}{i}",))
    a.close()
    b.close()
    for name in ("a", "b"):
        conn = sqlite.connect(tmp_path / f"{name}.cart", "/db/app.db")
        assert [x for (x,) in conn.execute("SELECT x FROM t")] == [f"{name}{i}" for i in range(20)]
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()


def test_wal_writers_busy_and_timeout(tmp_path: Path) -> None:
    cart = tmp_path / "a.cart"
    a = sqlite.connect(cart, "/db/app.db")
    a.execute("PRAGMA journal_mode=WAL")
    a.execute("CREATE TABLE t(x)")
    b = sqlite.connect(cart, "/db/app.db", timeout=0)
    a.execute("BEGIN IMMEDIATE")
    a.execute("INSERT INTO t VALUES(1)")
    with pytest.raises(apsw.BusyError):
        b.execute("BEGIN IMMEDIATE")
    assert b.execute("SELECT count(*) FROM t").fetchone() == (0,)  # readers never wait
    b.set_busy_timeout(5000)
    release = threading.Timer(0.3, lambda: a.execute("COMMIT"))
    release.start()
    b.execute("BEGIN IMMEDIATE")
    b.execute("INSERT INTO t VALUES(2)")
    b.execute("COMMIT")
    release.join()
    assert a.execute("SELECT count(*) FROM t").fetchone() == (2,)
    a.close()
    b.close()


def test_wal_database_read_only(tmp_path: Path, capsys) -> None:
    """A WAL database whose WAL file is gone (checkpointed at close) reads
    read-only: the VFS shows an empty WAL."""
    cart = tmp_path / "a.cart"
    conn = sqlite.connect(cart, "/db/app.db")
    assert conn.execute("PRAGMA journal_mode=WAL").fetchall() == [("wal",)]
    conn.execute("CREATE TABLE t(x); INSERT INTO t VALUES(5)")
    conn.close()
    ro = sqlite.connect(cart, "/db/app.db", readonly=True)
    assert ro.execute("SELECT x FROM t").fetchall() == [(5,)]
    ro.close()
    code = ("from cartridge import sqlite\n"
            f"c = sqlite.connect({str(cart)!r}, '/db/app.db', readonly=True)\n"
            "print(c.execute('SELECT x FROM t').fetchall())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "[(5,)]", out.stderr
    assert cart_main(["sql", str(cart), "/db/app.db", "--readonly", "-c", "SELECT x FROM t"]) == 0
    assert capsys.readouterr().out.strip() == "5"
