"""The seam between the supervisor and whatever runs the job: a local process group or a container.

The supervisor's loop (`supervise/loop.py`) is the same for every runtime; it only talks to a
`Runtime`. A runtime passes the job's output on (to the terminal, to the run log), feeds the
`Heartbeat`, keeps a bounded tail of the output for the diagnosis (`runtime/output.py`), and
reports how each run ended as a `RunEnd`. A runtime is built from the settings and a
`RuntimeContext` (what the session gives it) by its folder's ``create``.

This module imports nothing else of the runtime wing, so the wing's face can re-export it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Protocol

from phoenix_watchdog.diagnosis.failure import ExitStatus, HangInfo
from phoenix_watchdog.heartbeat import Heartbeat

OutputListener = Callable[[str, bytes], None]  # (stream, data): receives every block of the job's output
ENGINE = "engine:"  # the prefix of a `RunEnd.stopped_for` that is the scheduler's doing


class EngineCause(enum.StrEnum):
    """Why a run ended that was not the code's fault: the scheduler's or the machine's doing.

    The one owner of this vocabulary: runtimes write it into `RunEnd.stopped_for` with
    `engine_end`, the supervisor reads it back with `engine_cause`, and the metrics' restart
    reasons are built from it. Such an end is restarted without spending a failure budget.
    """

    PREEMPTED = "preempted"          # a higher-priority job took the nodes
    NODE_FAIL = "node_fail"          # a node of the run failed (detail: the nodes)
    TIME_LIMIT = "time_limit"        # the job reached its time limit (it checkpoints on a signal)
    REQUEUED = "requeued"            # put back in the queue by the scheduler or an operator
    LAUNCH_FAILED = "launch_failed"  # the engine failed to start the run; nothing of the job ran
    HARDWARE = "hardware"            # a GPU hardware failure on some nodes (detail: the nodes excluded)


def engine_end(cause: EngineCause, detail: str = "") -> str:
    """The `RunEnd.stopped_for` of an end the engine caused: ``engine:node_fail:n2``."""
    return f"{ENGINE}{cause.value}" + (f":{detail}" if detail else "")


def engine_cause(stopped_for: str | None) -> tuple[EngineCause, str] | None:
    """``engine:node_fail:n2`` -> ``(NODE_FAIL, "n2")``; None for any other end (or an unknown cause)."""
    if not stopped_for or not stopped_for.startswith(ENGINE):
        return None
    kind, _, detail = stopped_for[len(ENGINE):].partition(":")
    try:
        return EngineCause(kind), detail
    except ValueError:
        return None


@dataclass(frozen=True)
class RuntimeContext:
    """What a supervision session gives the runtime it builds, besides the settings.

    Attributes:
        heartbeat: fed by the job's output; paused by the runtime while it cannot see the job.
        record: receives every block of the job's output (the run log).
        echo: pass the job's output on to Phoenix's own stdout and stderr.
        handled_until: wall time up to which Phoenix already dealt with this workspace's job (the
            state's last update), or None: a failure found at start-up that is later was never handled.
        keep_fds: descriptors the job inherits (the workspace lock: held while any job process lives).
        on_start: called with the job's pid after each start (a local runtime only).
    """

    heartbeat: Heartbeat
    record: OutputListener | None = None
    echo: bool = True
    handled_until: float | None = None
    keep_fds: tuple[int, ...] = ()
    on_start: Callable[[int], None] | None = None


@dataclass(frozen=True)
class RunStart:
    """How a run began, when the runtime knows better than "now, by Phoenix".

    Attributes:
        started_at: wall time the run started (for Docker: the container's ``StartedAt``).
        attached: the run was already going (Phoenix attached to a running container): it is not
            a new run of the job, and its clock did not start now.
    """

    started_at: float
    attached: bool = False


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

    def start(self) -> RunStart | None:
        """Start the job, or start it again after a run ended. Resets the heartbeat.

        Returns how the run began (`RunStart`), or None for "started now, by Phoenix".

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


@dataclass(frozen=True)
class EngineJob:
    """What the engine that runs the job says about it (a Slurm job), for state.json, `phoenix status`
    and the metrics. ``requeues`` are the requeues Phoenix made; ``restarts`` is the engine's own count
    (requeues by the scheduler too); ``state`` is a word of the engine's bounded vocabulary."""

    engine: str
    job_id: str
    state: str
    nodes: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    requeues: int = 0
    restarts: int = 0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "nodes": list(self.nodes), "excluded": list(self.excluded)}


def engine_job_of(runtime: object) -> EngineJob | None:
    """The engine's view of the job, from a runtime that has one (an ``engine_job()`` method), else None.
    Optional so that the local and Docker runtimes, which run the job themselves, need nothing."""
    report = getattr(runtime, "engine_job", None)
    return report() if callable(report) else None
