"""The testing kit itself: the scale knob, the fixtures and the crash harness's protocol."""

from __future__ import annotations

import sys
import textwrap

import pytest

import cartridge
from cartridge.testing import SCALE_ENV, hypothesis_settings, scaled, scaled_down
from cartridge.testing.crash import KillPoint, Phase, Worker, WorkerDied, count_calls


def test_scale_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SCALE_ENV, raising=False)
    assert (scaled(50), scaled_down(4), hypothesis_settings(150).max_examples) == (50, 4, 150)
    monkeypatch.setenv(SCALE_ENV, "10")
    assert (scaled(50), scaled_down(4), hypothesis_settings(150).max_examples) == (500, 1, 1500)
    monkeypatch.setenv(SCALE_ENV, "0.01")
    assert scaled(50) == 1 and scaled_down(4) == 400
    for bad in ("ten", "0", "-1", "nan"):
        monkeypatch.setenv(SCALE_ENV, bad)
        with pytest.raises(ValueError, match=SCALE_ENV):
            scaled(1)


def test_fixtures(cart: cartridge.Cartridge, encrypted_cart: cartridge.Cartridge,
                  make_cart, cart_path) -> None:
    assert cart.mode == "r+" and not cart.list("/")
    assert encrypted_cart.info().encrypted
    other = make_cart("other.cart", compression="zstd")
    assert other.path != cart.path and other.info().compression == "zstd"
    assert not cart_path.exists()


#: A toy worker: phase "loop i" for i = start.. and, inside it, a loop of calls.
TOY = textwrap.dedent("""
    import sys
    from cartridge.testing.crash import Phases

    def step():
        return 1

    phases = Phases()
    start = phases.start()
    if start is None:
        sys.exit(0)
    print("stray output must not break the protocol")
    for i in range(int(start), int(start) + 3):
        phases("loop", i)
        for _ in range(int(sys.argv[1])):
            step()
    phases("done")
    sys.exit(int(sys.argv[2]))
""")


def toy(calls_per_phase: int, exit_code: int = 0) -> Worker:
    return Worker([sys.executable, "-c", TOY, str(calls_per_phase), str(exit_code)])


def test_kill_at_an_announcement() -> None:
    killed = toy(10).start("5").run_to(KillPoint("loop", occurrence=2))
    assert killed.phases == (Phase("loop", "5"), Phase("loop", "6")) and killed.calls == 0


def test_kill_inside_a_phase() -> None:
    killed = toy(1000).start("0").run_to(KillPoint("loop", occurrence=3, calls=400))
    assert killed.last == Phase("loop", "2") and killed.calls == 400
    assert killed.tags("loop") == ["0", "1", "2"]


def test_a_phase_too_short_is_killed_at_the_next_announcement() -> None:
    killed = toy(10).start("0").run_to(KillPoint("loop", occurrence=3, calls=400))
    assert killed.last == Phase("done", "-") and killed.calls == 0


def test_within_bounds_the_wait_for_a_phase() -> None:
    killed = toy(10).start("0").run_to(KillPoint("never", within=2))
    assert killed.tags("loop") == ["0", "1"]


def test_a_worker_that_exits_is_reported() -> None:
    with pytest.raises(WorkerDied, match="exited with 3"):
        toy(10, exit_code=3).start("0").run_to(KillPoint("never"))


def test_count_calls() -> None:
    def f() -> None:
        for _ in range(100):
            abs(int("1"))
            (lambda: None)()

    assert count_calls(f) == 101  # f itself and the lambdas; builtins are not counted
