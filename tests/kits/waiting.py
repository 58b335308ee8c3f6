"""Waiting for an event in a test, without a wall-clock bound that a loaded machine can break.

A test waits for the thing itself (a line read, a request received, a thread gone). `HANG_GUARD`
is not a timing target: it only keeps a broken test from hanging the suite, and it is long enough
that a busy 2-core CI machine never reaches it while the code works. Timing targets live in
``bench/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

HANG_GUARD = 60.0


def wait_for(condition: Callable[[], T], what: str = "condition", *, hang_guard: float = HANG_GUARD,
             interval: float = 0.02) -> T:
    """Poll ``condition`` until it returns something true, and return that."""
    deadline = time.monotonic() + hang_guard
    while not (result := condition()):
        assert time.monotonic() < deadline, f"hang guard: {what} did not happen in {hang_guard:g} s"
        time.sleep(interval)
    return result
