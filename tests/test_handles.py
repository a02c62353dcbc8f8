"""Handles across processes and at exit: pickles carry no secrets, and dropped
uncommitted work is reported (issue 11, defects 2 and 5)."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import cartridge

PASSWORD = "correct horse battery staple"
KEY = bytes(range(32))


def _read_in_worker(handle: cartridge.Cartridge, path: str) -> bytes:
    return handle.read(path)


def _sum_in_worker(ds: cartridge.Dataset) -> float:
    return float(ds[...].sum())


def _spawn_pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))


def test_pickle_of_password_handle_carries_no_password(tmp_path):
    path = tmp_path / "e.cart"
    with cartridge.create(path, password=PASSWORD) as c:
        c.write("/f", b"secret data")
    with cartridge.open(path, "r", password=PASSWORD) as r:
        blob = pickle.dumps(r)
        assert PASSWORD.encode() not in blob and b"horse" not in blob
        assert len(blob) < 1024
        with _spawn_pool() as pool:
            with pytest.raises(cartridge.WrongKeyError, match="password_env"):
                pool.submit(_read_in_worker, r, "/f").result()


def test_pickle_of_key_handle_carries_no_key(tmp_path):
    path = tmp_path / "e.cart"
    with cartridge.create(path, key=KEY) as c:
        c.write("/f", b"secret data")
        blob = pickle.dumps(c)
        assert KEY not in blob and KEY.hex().encode() not in blob
    reopened = pickle.loads(blob)
    with pytest.raises(cartridge.WrongKeyError, match="key_file"):
        reopened.read("/f")


def test_key_file_and_password_env_reopen_in_spawned_workers(tmp_path, monkeypatch):
    path = tmp_path / "e.cart"
    key_file = tmp_path / "key.hex"
    key_file.write_text(KEY.hex())
    with cartridge.create(path, key_file=key_file) as c:
        c.write("/f", b"secret data")
        c.write_array("/a", np.arange(1000, dtype=np.float64))
    with cartridge.open(path, "r", key_file=key_file) as r:
        blob = pickle.dumps(r)
        assert KEY not in blob and KEY.hex().encode() not in blob
        with _spawn_pool() as pool:
            assert pool.submit(_read_in_worker, r, "/f").result() == b"secret data"
            assert pool.submit(_sum_in_worker, r.array("/a")).result() == 499500.0
    pw_path = tmp_path / "p.cart"
    monkeypatch.setenv("CART_TEST_PASSWORD", PASSWORD)
    with cartridge.create(pw_path, password_env="CART_TEST_PASSWORD") as c:
        c.write("/g", b"more")
    with cartridge.open(pw_path, "r", password_env="CART_TEST_PASSWORD") as r:
        assert PASSWORD.encode() not in pickle.dumps(r)
        with _spawn_pool() as pool:
            assert pool.submit(_read_in_worker, r, "/g").result() == b"more"


def test_key_sources_are_validated(tmp_path, monkeypatch):
    path = tmp_path / "e.cart"
    with pytest.raises(ValueError, match="one of"):
        cartridge.create(path, password=PASSWORD, password_env="X")
    monkeypatch.delenv("CART_UNSET_VARIABLE", raising=False)
    with pytest.raises(cartridge.WrongKeyError, match="CART_UNSET_VARIABLE"):
        cartridge.create(path, password_env="CART_UNSET_VARIABLE")
    with pytest.raises(cartridge.WrongKeyError, match="cannot read key file"):
        cartridge.create(path, key_file=tmp_path / "missing.key")
    assert not path.exists()


def test_dropped_handle_with_uncommitted_changes_warns(tmp_path):
    path = tmp_path / "w.cart"
    c = cartridge.create(path)
    c.write("/kept", b"1")
    c.commit()
    c.write("/lost", b"2")
    c.mkdir("/lost-dir")
    with pytest.warns(cartridge.UncommittedChangesWarning, match=r"2 uncommitted change.*w\.cart"):
        del c
        gc.collect()
    with cartridge.open(path, "r") as r:
        assert r.list("/") == ["/kept"]


def test_committed_or_closed_handles_do_not_warn(tmp_path, recwarn):
    c = cartridge.create(tmp_path / "a.cart")
    c.write("/x", b"1")
    c.commit()
    del c
    d = cartridge.create(tmp_path / "b.cart")
    d.write("/x", b"1")
    d.rollback()
    del d
    gc.collect()
    assert not [w for w in recwarn if issubclass(w.category,
                                                 cartridge.UncommittedChangesWarning)]


SCRIPT = textwrap.dedent("""
    import sys, cartridge
    c = cartridge.create(sys.argv[1])
    c.write("/committed", b"yes")
    c.commit()
    c.write("/uncommitted", b"no")
    c.write("/uncommitted2", b"no")
    sys.exit(0)
""")


def test_interpreter_exit_with_uncommitted_changes_warns_and_keeps_commits(tmp_path):
    path = tmp_path / "exit.cart"
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "UncommittedChangesWarning" in proc.stderr
    assert "2 uncommitted change(s)" in proc.stderr and "exit.cart" in proc.stderr
    assert "Traceback" not in proc.stderr
    with cartridge.open(path, "r") as r:
        assert r.list("/") == ["/committed"]


def test_unpickled_handle_answers_before_first_use(tmp_path):
    path = tmp_path / "u.cart"
    with cartridge.create(path) as c:
        c.write("/f", b"1")
    with cartridge.open(path, "r") as r:
        clone = pickle.loads(pickle.dumps(r))
        assert "Cartridge" in repr(clone)
        assert clone.generation == r.generation
        assert clone.max_size is None
        clone.close()


def test_raw_key_file_is_taken_as_it_is(tmp_path):
    key = b" \n" + bytes(range(30))  # starts with whitespace: must not be stripped
    key_file = tmp_path / "raw.key"
    key_file.write_bytes(key)
    path = tmp_path / "k.cart"
    with cartridge.create(path, key_file=key_file) as c:
        c.write("/f", b"x")
    with cartridge.open(path, "r", key=key) as r:
        assert r.read("/f") == b"x"


def test_kept_views_are_released_at_close(tmp_path):
    path = tmp_path / "v.cart"
    with cartridge.create(path) as w:
        w.write_array("/a", np.arange(100_000, dtype=np.float64))
        w.write_array("/b", np.arange(100_000, dtype=np.float64))
    r = cartridge.open(path, "r")
    ds, other = r.array("/a"), r.array("/b")
    assert ds[5] == 5 and other[7] == 7
    with cartridge.open(path, "r+") as w:
        w.write_array("/a", np.zeros(10))
        w.commit()
        assert w.info().holders  # the kept views pin the old generation
        assert ds[5] == 0  # a read of the new commit drops every older kept view
        assert not [h for h in w.info().holders if "generation 1" in h]
        r.close()
        assert not w.info().holders  # closing the handle releases the rest
        del ds, other


def test_a_hook_holding_the_handle_does_not_keep_it_alive(tmp_path):
    import weakref

    c = cartridge.create(tmp_path / "h.cart")
    c.hooks.add(lambda op, c=c: None)
    c.write("/f", b"1")
    c.commit()
    ref = weakref.ref(c)
    del c
    gc.collect()
    assert ref() is None
