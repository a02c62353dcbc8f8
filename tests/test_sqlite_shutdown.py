"""Interpreter exit with SQLite connections left open (issue 11, defect 4).

A script opens a database in a container, commits rows, leaves the
connection open and calls ``sys.exit(0)``.  The connection sits in a
reference cycle, so without the package's exit hook it is collected during
module teardown, where its close used to fail with ``ImportError:
sys.meta_path is None`` and lose the last commits (WAL, ``synchronous=NORMAL``).
The exit must be quiet (status 0, nothing on stderr), keep every committed
row, keep nothing of a transaction left open, and remove the process's
wal-index directory.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cartridge import sqlite

SCRIPT = r'''
import sys

import cartridge
from cartridge import sqlite

path, mode, sync, pending, own = sys.argv[1:6]


class Holder:
    pass


holder = Holder()
holder.me = holder  # a cycle: collected only while the interpreter tears down
target = cartridge.open(path, "a") if own == "1" else path
holder.target = target
holder.conn = conn = sqlite.connect(target, "/db/app.db")
conn.execute(f"PRAGMA journal_mode={mode}")
conn.execute(f"PRAGMA synchronous={sync}")
conn.execute("PRAGMA cache_size=8")  # an open transaction spills pages to the files
conn.execute("CREATE TABLE t(x INTEGER, pad BLOB)")
for k in range(10):
    with conn:
        conn.executemany("INSERT INTO t VALUES(?, zeroblob(200))",
                         [(k * 100 + i,) for i in range(100)])
if pending == "1":
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t VALUES(?, zeroblob(200))", [(-i,) for i in range(1, 3000)])
    conn.execute("UPDATE t SET x = x + 1000000 WHERE x < 500")
del conn, target
sys.exit(0)
'''

CASES = [
    ("delete", "full", False, False),
    ("delete", "full", True, False),
    ("wal", "normal", False, False),
    ("wal", "normal", True, False),
    ("wal", "normal", False, True),
]


@pytest.mark.parametrize(("mode", "sync", "pending", "own"), CASES,
                         ids=[f"{m}-{s}-{'open-txn' if p else 'committed'}"
                              f"{'-own-handle' if o else ''}" for m, s, p, o in CASES])
def test_exit_with_connection_open(tmp_path: Path, mode: str, sync: str, pending: bool,
                                   own: bool) -> None:
    script = tmp_path / "leave_open.py"
    script.write_text(SCRIPT)
    cart = tmp_path / "a.cart"
    proc = subprocess.Popen([sys.executable, str(script), str(cart), mode, sync,
                             str(int(pending)), str(int(own))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _out, err = proc.communicate(timeout=120)
    assert err == ""
    assert proc.returncode == 0
    shm = os.path.join(tempfile.gettempdir(), f"cartridge-sqlite-shm-{proc.pid}-*")
    assert glob.glob(shm) == []

    conn = sqlite.connect(cart, "/db/app.db", readonly=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = [x for (x,) in conn.execute("SELECT x FROM t ORDER BY x")]
    finally:
        conn.close()
    assert rows == list(range(1000))  # every commit kept, nothing of the open transaction



FORK_SCRIPT = r'''
import os
import sys

import apsw

from cartridge import sqlite

path, mode = sys.argv[1:3]
conn = sqlite.connect(path, "/db/app.db")
conn.execute(f"PRAGMA journal_mode={mode}")
conn.execute("CREATE TABLE t(x)")
with conn:
    conn.execute("INSERT INTO t VALUES(1)")
conn.execute("BEGIN IMMEDIATE")  # this process holds RESERVED
conn.execute("INSERT INTO t VALUES(2)")
pid = os.fork()
if pid == 0:
    sys.exit(0)  # the child exits normally, with the parent's connection inherited
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
other = sqlite.connect(path, "/db/app.db", timeout=0)
try:
    other.execute("BEGIN IMMEDIATE")
except apsw.BusyError:
    pass  # the parent's RESERVED lock survived the child's exit
else:
    raise AssertionError("the child's exit released the parent's lock")
other.close()
conn.execute("INSERT INTO t VALUES(3)")
conn.execute("COMMIT")
conn.close()
print("parent ok")
'''


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_forked_child_exit_leaves_the_parents_databases_alone(tmp_path: Path,
                                                              mode: str) -> None:
    """A child forked with a connection open runs the exit hook too: it must
    neither commit, nor close, nor unlock what belongs to its parent."""
    script = tmp_path / "fork_exit.py"
    script.write_text(FORK_SCRIPT)
    cart = tmp_path / "a.cart"
    proc = subprocess.run([sys.executable, str(script), str(cart), mode], capture_output=True,
                          text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.strip() == "parent ok"
    conn = sqlite.connect(cart, "/db/app.db", readonly=True)
    try:
        assert [x for (x,) in conn.execute("SELECT x FROM t ORDER BY x")] == [1, 2, 3]
    finally:
        conn.close()
