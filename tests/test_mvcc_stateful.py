"""Model-based test of snapshots and compaction against a dict of dicts.

The model holds the handle's current files, the last committed files and one
dict of files per snapshot.  Rules: write, delete, commit, rollback,
snapshot, restore, delete_snapshot, compact (bounded or not), reopen, and
reading a snapshot through its own read-only handle.  After every step the
container must equal the model; ``verify()`` (which checks that every
snapshot's pages are still kept) runs at every reopen and compaction.

Scale (``CARTRIDGE_TEST_SCALE``): 60 examples.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile

import hypothesis.strategies as st
from hypothesis import HealthCheck
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import cartridge
from cartridge.testing import hypothesis_settings

NAMES = st.sampled_from(["/a", "/b", "/d/c", "/d/e", "/f/g/h"])
SNAPS = st.sampled_from(["s1", "s2", "s3"])
SIZE = st.sampled_from([0, 10, 1536, 1537, 4096, 70_000, 200_000, 600_000])


def _files(cart) -> dict[str, bytes]:
    return {p: cart.read(p) for p, info in cart.walk("/") if info.kind == "file"}


class SnapshotMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="cart-mvcc-")
        self.path = os.path.join(self.dir, "m.cart")
        self.cart = cartridge.create(self.path)
        self.current: dict[str, bytes] = {}
        self.committed: dict[str, bytes] = {}
        self.snaps: dict[str, dict[str, bytes]] = {}
        self.seed = 0

    def _commit_model(self) -> None:
        self.committed = dict(self.current)

    @rule(name=NAMES, size=SIZE)
    def write(self, name: str, size: int) -> None:
        self.seed += 1
        data = random.Random(self.seed).randbytes(size)
        self.cart.write(name, data)
        self.current[name] = data

    @rule(name=NAMES)
    def delete(self, name: str) -> None:
        if name in self.current:
            self.cart.delete(name)
            del self.current[name]
        else:
            try:
                self.cart.delete(name)
            except (cartridge.NotFoundError, cartridge.IsADirectoryError):
                return
            raise AssertionError(f"deleting missing {name} succeeded")

    @rule()
    def commit(self) -> None:
        self.cart.commit()
        self._commit_model()

    @rule()
    def rollback(self) -> None:
        self.cart.rollback()
        self.current = dict(self.committed)

    @rule(name=SNAPS)
    def snapshot(self, name: str) -> None:
        if name in self.snaps:
            try:
                self.cart.snapshot(name)
            except cartridge.SnapshotExistsError:
                return
            raise AssertionError("duplicate snapshot accepted")
        self.cart.snapshot(name)
        self._commit_model()
        self.snaps[name] = dict(self.current)

    @rule(name=SNAPS)
    def restore(self, name: str) -> None:
        if name not in self.snaps:
            try:
                self.cart.restore(name)
            except cartridge.SnapshotNotFoundError:
                self.current = dict(self.committed)  # restore rolls back first
                return
            raise AssertionError("restore of a missing snapshot succeeded")
        self.cart.restore(name)
        self.current = dict(self.snaps[name])
        self._commit_model()

    @rule(name=SNAPS)
    def delete_snapshot(self, name: str) -> None:
        if name not in self.snaps:
            try:
                self.cart.delete_snapshot(name)
            except cartridge.SnapshotNotFoundError:
                return
            raise AssertionError("deleting a missing snapshot succeeded")
        self.cart.delete_snapshot(name)
        del self.snaps[name]
        self._commit_model()

    @rule(max_pages=st.sampled_from([None, 1, 20, 200]))
    def compact(self, max_pages: int | None) -> None:
        self.cart.compact(max_pages=max_pages)
        self._commit_model()
        assert self.cart.verify().ok, self.cart.verify().problems

    @rule()
    def reopen(self) -> None:
        self.cart.close()
        self._commit_model()
        self.cart = cartridge.open(self.path)
        report = self.cart.verify()
        assert report.ok, report.problems

    @rule(name=SNAPS)
    def read_snapshot(self, name: str) -> None:
        if name not in self.snaps:
            return
        with cartridge.open(self.path, "r", snapshot=name) as snap:
            assert _files(snap) == self.snaps[name]

    @invariant()
    def same(self) -> None:
        assert _files(self.cart) == self.current
        assert sorted(s.name for s in self.cart.snapshots()) == sorted(self.snaps)

    def teardown(self) -> None:
        self.cart.close()
        with cartridge.open(self.path, "r") as r:
            report = r.verify()
            assert report.ok, report.problems
            assert _files(r) == self.current
        shutil.rmtree(self.dir, ignore_errors=True)


SnapshotMachine.TestCase.settings = hypothesis_settings(
    60, stateful_step_count=30, suppress_health_check=list(HealthCheck))
TestSnapshots = SnapshotMachine.TestCase
