"""Signals a process group, and a job's processes that left it: Phoenix's one process-group killer.

Every group Phoenix ends goes through here: the supervised job (`phoenix run`), the repair
engine's children and what a crashed Phoenix left in an isolated copy, and a py-spy that
overran its time. It lives in the watchdog, beside `proctree`, because the stack dumper needs it
and the watchdog never imports the sidecar; the sidecar uses it from here.

A group or process that is already gone, or was never ours to signal, is not an error: the
caller wanted it gone.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to every process in group ``pgid``. False when none was left (or none ours)."""
    if pgid <= 1:  # 0 is our own group and 1 is init's: never a job's
        raise ValueError(f"refusing to signal process group {pgid}")
    try:
        os.killpg(pgid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill_group(pgid: int) -> bool:
    """SIGKILL every process left in group ``pgid``. False when none was left."""
    return signal_group(pgid, signal.SIGKILL)


def signal_job(pids: Iterable[int], pgid: int, signum: int) -> None:
    """Send ``signum`` to the group ``pgid`` and to each of ``pids`` (covers the ones that left the group)."""
    signal_group(pgid, signum)
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass
