"""Stopping a whole job: SIGTERM to every process of it, a grace period, then SIGKILL.

"Every process" is the job's process group plus any descendant that left the group (a daemon, a
launcher that calls setsid), so neither DataLoader workers nor escaped grandchildren outlive the
job (the signals go through the one process-group killer, `phoenix_watchdog.probes.groupkill`).
With `adopt_orphans`, Phoenix becomes the child subreaper, so a grandchild orphaned by its
parent's death stays findable (it is re-parented to Phoenix instead of init) and is reaped.

`die_with_parent` is the after-fork seam that ties a job's lifetime to its supervisor's: the
job's leader gets SIGTERM from the kernel the moment Phoenix dies (even by SIGKILL), since nobody is
left to stop the group the careful way.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable

from phoenix_watchdog.probes.groupkill import signal_job
from phoenix_watchdog.probes.proctree import all_processes, job_processes

log = logging.getLogger(__name__)
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_PDEATHSIG = 1
# Resolved before any fork: the child of a multi-threaded Phoenix must not load a library or look
# a symbol up (another thread may have held the dynamic loader's lock at the fork).
try:
    _PRCTL: Callable[..., int] | None = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - every Linux libc has prctl
    _PRCTL = None
_POLL = 0.02


def adopt_orphans() -> bool:
    """Make this process the subreaper of its descendants (Linux only). Returns whether it worked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for `subprocess.Popen`: the child gets ``signum`` when this process dies.

    The kernel sends the parent-death signal when the *thread* that forked the child ends, so the
    child must be started from a thread that lives as long as Phoenix (the main thread). If Phoenix
    died between the fork and the ``prctl``, the child stops itself at once. The setting survives
    ``exec`` (except into set-user-ID programs).
    """
    parent = os.getpid()
    prctl = _PRCTL

    def preexec() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signum)

    return preexec


def members(leader: int, pgid: int, *, orphans_of: int | None = None) -> list[int]:
    """The live processes of a job (group members and descendants of the leader).

    With ``orphans_of`` (our pid, when we are the subreaper), descendants re-parented to us after
    the leader died count too.
    """
    pids = set(job_processes(leader, pgid))
    if orphans_of is not None:
        pids.update(p for p in job_processes(orphans_of) if p != orphans_of)
    return sorted(pids)


def terminate(list_members: Callable[[], list[int]], pgid: int, grace: float, *, leader: int,
              while_waiting: Callable[[float], None] | None = None) -> bool:
    """Stop every member: SIGTERM, up to ``grace`` seconds, then SIGKILL.

    Args:
        list_members: returns the live pids of the job (called repeatedly).
        pgid: the job's process group.
        grace: seconds between the polite signal and SIGKILL.
        leader: the job's main process; never reaped here, its owner collects its exit status.
        while_waiting: called with a short timeout while waiting (to keep draining output).

    Returns True when everything was gone before SIGKILL was needed.
    """
    pids = list_members()
    if not pids:
        return True
    signal_job(pids, pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pids, leader)
        pids = list_members()
        if not pids:
            return True
        (while_waiting or time.sleep)(min(_POLL * 5, max(0.0, deadline - time.monotonic())))
    pids = list_members()
    if pids:
        log.info("job processes %s ignored SIGTERM for %.1fs; sending SIGKILL", pids, grace)
        signal_job(pids, pgid, signal.SIGKILL)
        end = time.monotonic() + 5.0  # SIGKILL cannot be ignored; only D-state waits delay it
        while pids and time.monotonic() < end:
            _reap(pids, leader)
            time.sleep(_POLL)
            pids = list_members()
    _reap(pids, leader)
    return False


def _reap(pids: list[int], leader: int) -> None:
    """Collect any of ``pids`` that are our own exited children (orphans we adopted)."""
    for pid in pids:
        if pid == leader:
            continue
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def reap_adopted_zombies(leader: int) -> int:
    """Collect exited orphans re-parented to us (as subreaper); returns how many were reaped."""
    me = os.getpid()
    reaped = 0
    for info in all_processes():
        if info.ppid == me and info.state == "Z" and info.pid != leader:
            try:
                os.waitpid(info.pid, os.WNOHANG)
                reaped += 1
            except ChildProcessError:
                pass
    return reaped
