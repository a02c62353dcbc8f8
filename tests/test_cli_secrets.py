"""``cart`` commands added by later issues take the same secrets as the others:
``--password``, ``--key-file`` and $CARTRIDGE_PASSWORD."""

from __future__ import annotations

import json

import numpy as np

import cartridge
from cartridge.cli import main


def _encrypted(tmp_path):
    path = str(tmp_path / "e.cart")
    with cartridge.create(path, password="pw") as cart:
        cart.write_array("/a", np.arange(1000))
        cart.write("/f", b"x" * 200_000)
    return path


def test_snapshot_compact_readers_with_password(tmp_path, capsys, monkeypatch):
    path = _encrypted(tmp_path)
    monkeypatch.delenv("CARTRIDGE_PASSWORD", raising=False)
    assert main(["snapshot", "create", path, "s1"]) == 2  # no secret: a clear error
    assert "encrypted" in capsys.readouterr().err
    assert main(["snapshot", "create", path, "s1", "--password", "pw"]) == 0
    assert "pins generation" in capsys.readouterr().out
    assert main(["snapshot", "list", path, "--password", "pw", "--json"]) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)] == ["s1"]
    monkeypatch.setenv("CARTRIDGE_PASSWORD", "pw")
    assert main(["snapshot", "diff", path, "s1"]) == 0
    capsys.readouterr()
    assert main(["compact", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["done"]
    assert main(["readers", path]) == 0
    assert "no readers" in capsys.readouterr().out
    assert main(["check", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stale_readers"] == []
    with cartridge.open(path, "r", password="pw") as cart:
        assert [s.name for s in cart.snapshots()] == ["s1"]
        assert (cart.array("/a")[...] == np.arange(1000)).all()


def test_key_file_and_sql(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CARTRIDGE_PASSWORD", raising=False)
    key = bytes(range(32))
    path = str(tmp_path / "k.cart")
    cartridge.create(path, key=key).close()
    key_file = tmp_path / "key.hex"
    key_file.write_text(key.hex())
    secret = ["--key-file", str(key_file)]
    assert main(["snapshot", "create", path, "s", *secret]) == 0
    assert main(["sql", path, "/db/t.db", *secret, "-c", "create table t(x)",
                 "-c", "insert into t values (41)"]) == 0
    capsys.readouterr()
    assert main(["sql", path, "/db/t.db", *secret, "--readonly", "-c",
                 "select x + 1 from t"]) == 0
    assert "42" in capsys.readouterr().out
