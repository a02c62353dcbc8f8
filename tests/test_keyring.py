"""crypto.KeyRing and KeySlot: the keys of an open container and the key slots on page 0."""

from __future__ import annotations

import pytest

import cartridge
from cartridge.crypto import KeyRing, KeySlot
from cartridge.errors import WrongKeyError
from cartridge.filedata import FileData
from cartridge.layout import CHUNK_ENCRYPTED, KEY_SLOT

UUID = bytes(range(16))
A, B = bytes(range(32)), bytes(range(32, 64))


def test_key_slot_round_trip():
    image, key = KeySlot.encode(UUID, A, None, 3)
    assert len(image) == KEY_SLOT.itemsize and key == A
    slot = KeySlot.decode(image)
    assert slot.in_use and slot.epoch == 3
    assert slot.opens(UUID, A, None) == A
    assert slot.opens(UUID, B, None) is None
    assert slot.opens(bytes(16), A, None) is None  # another container's uuid
    assert slot.opens(UUID, None, "pw") is None  # a raw-key slot ignores passwords


def test_password_slot_and_cleared_slot():
    image, key = KeySlot.encode(UUID, None, "secret", 0)
    slot = KeySlot.decode(image)
    assert slot.opens(UUID, None, "secret") == key
    assert slot.opens(UUID, None, "wrong") is None
    assert slot.opens(UUID, key, None) is None  # a password slot ignores raw keys
    cleared, none = KeySlot.encode(UUID, None, None, 0)
    assert none == b"" and not KeySlot.decode(cleared).in_use


def test_damaged_slot_reads_as_unused():
    image, _ = KeySlot.encode(UUID, A, None, 0)
    damaged = image[:20] + bytes([image[20] ^ 1]) + image[21:]
    assert not KeySlot.decode(damaged).in_use


def test_unlock_seals_under_the_newest_slot():
    slots = [KeySlot.decode(KeySlot.encode(UUID, A, None, epoch)[0]) for epoch in (4, 5)]
    ring = KeyRing.unlock(UUID, slots, A, None)
    assert ring is not None and ring.current == 1
    assert ring.sealer_for(0) is not None and ring.sealer_for(1) is not None
    assert KeyRing.unlock(UUID, slots, B, None) is None


def test_rekey_transition():
    ring = KeyRing(UUID, {0: A}, 0)
    assert ring.chunk_flags == CHUNK_ENCRYPTED
    with pytest.raises(ValueError):
        ring.switch(1)  # no key for slot 1 yet
    ring.add(1, B)
    ring.switch(1)
    assert ring.current == 1 and ring.chunk_flags == CHUNK_ENCRYPTED | 2
    with pytest.raises(ValueError):
        ring.drop(1)  # the slot in use
    with pytest.raises(ValueError):
        ring.add(1, A)  # replacing the key in use
    ring.drop(0)
    assert ring.sealer_for(0) is None and ring.sealer_for(1) is ring.sealer


def test_failed_rekey_keeps_the_old_key(tmp_path, monkeypatch):
    """A rekey that fails midway (here: resealing a chunk) goes back to the old key:
    the handle keeps working under it and the new key opens nothing."""
    path = tmp_path / "k.cart"
    with cartridge.create(path, key=A) as c:
        for i in range(4):
            c.write(f"/f{i}", bytes([i]) * 200_000)
        c.commit()

        def broken(self, *args, **kwargs):
            raise OSError("disk gone")

        monkeypatch.setattr(FileData, "reseal", broken)
        with pytest.raises(OSError, match="disk gone"):
            c.rekey(B)
        monkeypatch.undo()
        c.write("/after", b"x" * 100_000)
        c.commit()
    with cartridge.open(path, key=A) as c:
        assert c.read("/after") == b"x" * 100_000
        assert c.read("/f3") == bytes([3]) * 200_000
    with pytest.raises(WrongKeyError):
        cartridge.open(path, key=B)
