"""The seam between the supervisor and whatever runs the job: a local process group or a container.

The supervisor's loop (`supervisor.py`) is the same for both; it only talks to a `Runtime`. A
runtime passes the job's output on (to the terminal, to the run log), feeds the `Heartbeat`, keeps a
bounded tail of the output for the diagnosis, and reports how each run ended as a `RunEnd`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from phoenix_watchdog.diagnosis.failure import ExitStatus, HangInfo


@dataclass(frozen=True)
class RunEnd:
    """How one run of the job ended.

    Attributes:
        exit: exit code, signal, OOM flag.
        started_at: wall time the run started.
        ended_at: wall time it ended (for Docker: the container's ``FinishedAt``).
        tail: the last output of the run (bounded), the diagnosis's input.
        hang: set when Phoenix stopped the run for silence.
        stopped_for: set when Phoenix stopped the run for another reason (``safety:gpu_temperature``,
            ``shutdown``); such an end is not a failure of the job. A cause beginning ``engine:``
            (``engine:preempted``, ``engine:node_fail:n2``) is the scheduler's doing, not the code's:
            the job is restarted without spending a failure budget.
        ranks: where each rank ran, by the diagnosis's stream name (``{"rank1": "n2"}``), for a
            runtime that spreads ranks over nodes; the incident then names the node.
    """

    exit: ExitStatus
    started_at: float
    ended_at: float
    tail: str
    hang: HangInfo | None = None
    stopped_for: str | None = None
    ranks: Mapping[str, str] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return max(0.0, self.ended_at - self.started_at)


class Runtime(Protocol):
    """What the supervisor needs from a job runtime. All methods but `wakeup` run on one thread."""

    @property
    def target(self) -> str:
        """What is supervised, for humans and labels: ``pid 4242``, ``container trainer``."""
        ...

    def start(self) -> None:
        """Start the job, or start it again after a run ended. Resets the heartbeat.

        Raises:
            RuntimeUnavailable: the job could not be started (command not found, daemon down).
        """
        ...

    def wait(self, timeout: float | None) -> RunEnd | None:
        """Pass output through for up to ``timeout`` seconds (None: no limit).

        Returns the `RunEnd` as soon as the run has ended, or None on timeout or `wakeup`.
        """
        ...

    def dump_stack(self) -> str | None:
        """Best effort: the stack of the running job's Python processes, or None."""
        ...

    def stop(self, *, hang: HangInfo | None = None, reason: str | None = None) -> RunEnd:
        """Stop the running job (SIGTERM, grace, SIGKILL, whole group) and report how it ended."""
        ...

    def wakeup(self) -> None:
        """Make a blocked `wait` return early. Safe to call from any thread or a signal handler."""
        ...

    def close(self) -> None:
        """Release what the runtime holds (pipes, connections). The job is not touched."""
        ...
