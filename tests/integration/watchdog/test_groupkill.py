"""Phoenix's one process-group killer, on real process groups."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from phoenix_watchdog.probes.groupkill import kill_group, signal_group, signal_job
from testkit import process_alive

HANG_GUARD = 20.0

# A leader with a child in its group and one that left it (its own session), both printing their pids.
FAMILY = """
import os, subprocess, sys, time
inside = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
outside = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print(inside.pid, outside.pid, flush=True)
time.sleep(600)
"""


def wait_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while any(process_alive(p) for p in pids):
        assert time.monotonic() < deadline, f"still alive: {[p for p in pids if process_alive(p)]}"
        time.sleep(0.01)


def start_family() -> tuple[subprocess.Popen[bytes], int, int]:
    leader = subprocess.Popen([sys.executable, "-c", FAMILY], stdout=subprocess.PIPE, start_new_session=True)
    assert leader.stdout is not None
    inside, outside = (int(x) for x in leader.stdout.readline().split())
    return leader, inside, outside


def test_kill_group_ends_the_group_but_not_what_left_it() -> None:
    leader, inside, outside = start_family()
    try:
        assert kill_group(leader.pid)
        leader.wait(HANG_GUARD)
        wait_gone([inside])
        assert process_alive(outside)
        deadline = time.monotonic() + HANG_GUARD
        while kill_group(leader.pid):  # until the zombies are reaped too; then: nothing left, not an error
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        signal_job([outside], leader.pid, signal.SIGKILL)
    wait_gone([outside])


def test_signal_job_reaches_the_group_and_the_escaped_descendants() -> None:
    leader, inside, outside = start_family()
    signal_job([leader.pid, inside, outside], leader.pid, signal.SIGTERM)
    leader.wait(HANG_GUARD)
    wait_gone([inside, outside])


def test_our_own_group_and_init_s_are_never_signalled() -> None:
    for pgid in (0, 1, -5):
        with pytest.raises(ValueError):
            signal_group(pgid, signal.SIGTERM)
