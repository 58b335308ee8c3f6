"""The hang verdict: no new step for the learned timeout, or silence past the heartbeat; busy GPUs defer it.

Two kinds of evidence, whichever runs out first decides:

- ``no_progress``: the job reported steps and then no new one for the tracker's learned timeout,
  even though it may still be writing (a logging thread, NCCL warnings, a DataLoader complaining);
- ``silence``: no output at all for the heartbeat timeout: the outer bound, and the only evidence
  for a job that never reported a step.

When the evidence runs out while the GPUs the job uses are busy (``busy()`` says so: utilisation
above a threshold), the job is probably working (a checkpoint save, a long evaluation, a compile):
the verdict waits, at most ``busy_grace`` seconds past the deadline, and comes as soon as the GPUs
go idle. An unknown (no NVML) counts as idle: nothing extends the deadline without evidence.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from phoenix_watchdog.progress.tracker import ProgressTracker

__all__ = ["HangJudge", "HangVerdict", "NO_PROGRESS", "SILENCE"]
log = logging.getLogger(__name__)
NO_PROGRESS = "no_progress"
SILENCE = "silence"


class Heartbeat(Protocol):
    """What the judge reads of `phoenix_watchdog.heartbeat.Heartbeat` (which imports this wing)."""

    progress: ProgressTracker | None

    @property
    def paused(self) -> bool: ...

    def deadline(self) -> float | None: ...

    def silent_for(self) -> float: ...

    def current_timeout(self) -> float | None: ...


@dataclass(frozen=True)
class HangVerdict:
    """Why the job counts as hung.

    Attributes:
        evidence: ``no_progress`` or ``silence``.
        seconds: how long without a new step (``no_progress``) or without output (``silence``).
        silent_seconds: how long without any output (the two differ when the job kept printing).
        detail: one line for humans and the incident.
        busy_seconds: how long the verdict was deferred because the GPUs were busy.
    """

    evidence: str
    seconds: float
    silent_seconds: float
    detail: str
    busy_seconds: float = 0.0


class HangJudge:
    """Combines the heartbeat (silence) with its progress tracker (no new step) and the GPUs' business.

    Args:
        heartbeat: the run's heartbeat; its ``progress`` tracker, when it has one, adds the
            no-progress evidence.
        busy: whether the job's GPUs are busy now (True), idle (False) or unknown (None).
        busy_grace: the most seconds a busy GPU defers a verdict; None or 0: never.
        clock: monotonic seconds, the heartbeat's clock.
    """

    def __init__(self, heartbeat: Heartbeat, *, busy: Callable[[], bool | None] = lambda: None,
                 busy_grace: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.heartbeat = heartbeat
        self.busy = busy
        self.busy_grace = busy_grace or 0.0
        self._clock = clock
        self._deferred_since: float | None = None

    def _evidence(self) -> tuple[float, str] | None:
        """The earliest deadline and what it is for, or None when nothing can run out now."""
        found: list[tuple[float, str]] = []
        silence = self.heartbeat.deadline()
        if silence is not None:
            found.append((silence, SILENCE))
        tracker = self.heartbeat.progress
        if tracker is not None and not self.heartbeat.paused:
            progress = tracker.progress_deadline()
            if progress is not None:
                found.append((progress, NO_PROGRESS))
        return min(found) if found else None

    def deadline(self) -> float | None:
        """When to look again: the evidence's deadline, or the end of the busy grace while deferring."""
        evidence = self._evidence()
        if evidence is None:
            return None
        if self._deferred_since is not None and self._clock() >= evidence[0]:
            return evidence[0] + self.busy_grace
        return evidence[0]

    def seconds_left(self) -> float | None:
        deadline = self.deadline()
        return None if deadline is None else max(0.0, deadline - self._clock())

    def verdict(self) -> HangVerdict | None:
        """The job is hung (and why), or None. Call it at every tick: it also keeps the busy deferral."""
        evidence = self._evidence()
        now = self._clock()
        if evidence is None or now < evidence[0]:
            self._deferred_since = None
            return None
        deadline, kind = evidence
        busy = self.busy() if self.busy_grace > 0 else None
        if busy is True and now < deadline + self.busy_grace:
            if self._deferred_since is None:
                self._deferred_since = now
                log.warning("the job looks hung (%s) but its GPUs are busy: waiting up to %.0f s more, or until "
                            "they go idle", kind.replace("_", " "), deadline + self.busy_grace - now)
            return None
        deferred = now - self._deferred_since if self._deferred_since is not None else 0.0
        self._deferred_since = None
        return self._describe(kind, deferred, busy)

    def _describe(self, kind: str, deferred: float, busy: bool | None) -> HangVerdict:
        silent = self.heartbeat.silent_for()
        tracker = self.heartbeat.progress
        if kind == NO_PROGRESS and tracker is not None:
            seconds = tracker.no_progress_for()
            snap = tracker.snapshot()
            detail = (f"no new step for {seconds:.0f} s (learned timeout {snap.timeout_seconds or 0:.0f} s; "
                      f"last step {snap.step})")
            detail += (f" while the output continued (last output {silent:.0f} s ago)" if silent + 1.0 < seconds
                       else ", and no output either")
        else:
            seconds = silent
            detail = f"no output for {silent:.0f} s (heartbeat {self.heartbeat.current_timeout() or 0:.0f} s)"
        if deferred > 0:
            detail += (f"; deferred {deferred:.0f} s while the GPUs were busy, "
                       + ("up to the busy grace" if busy else "until they went idle"))
        return HangVerdict(kind, seconds, silent, detail, deferred)
