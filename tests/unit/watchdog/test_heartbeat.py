"""The heartbeat's arithmetic, on a controlled clock."""

from __future__ import annotations

from phoenix_watchdog.heartbeat import Heartbeat


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deadline_moves_with_output_and_initial_timeout_applies_before_the_first() -> None:
    clock = Clock()
    hb = Heartbeat(60, initial_timeout=600, clock=clock, wall=clock)
    assert hb.deadline() == 700
    clock.now = 150
    hb.beat("stdout")
    assert hb.deadline() == 210 and hb.last_output == 150 and hb.last_output_wall == {"stdout": 150}
    clock.now = 209.9
    assert not hb.expired()
    clock.now = 210
    assert hb.expired() and hb.silent_for() == 60


def test_pause_does_not_count_the_outage_as_silence() -> None:
    clock = Clock()
    hb = Heartbeat(60, clock=clock, wall=clock)
    hb.beat("stderr")
    clock.now = 150
    hb.pause()
    assert hb.deadline() is None
    clock.now = 1000  # a long daemon outage
    assert not hb.expired() and hb.silent_for() == 50
    hb.resume()
    assert hb.deadline() == 1060


def test_disabled() -> None:
    hb = Heartbeat(None)
    assert hb.deadline() is None and hb.seconds_left() is None and not hb.expired()


def test_reset_starts_a_new_run_without_output() -> None:
    clock = Clock()
    hb = Heartbeat(10, initial_timeout=100, clock=clock, wall=clock)
    hb.beat("stdout")
    clock.now = 105
    hb.reset()
    assert not hb.seen_output and hb.deadline() == 205
