"""Phoenix's persistent state: budgets, the incident history and what the job is doing now.

It lives in ``.phoenix_cli/state.json``, written atomically, so a restarted Phoenix (a crashed
sidecar, a rebooted host) picks up the same budgets instead of granting a failing job fresh
attempts. `phoenix status` reads the same file. A corrupt file is set aside, never silently lost.

`JobState` and its transition table live here too: the table is data, and `check_transition`
turns a move it does not list into an internal error (a bug in the loop), never a silent state.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from phoenix_sidecar.errors import StateError
from phoenix_sidecar.fsutil import atomic_write_text

log = logging.getLogger(__name__)
STATE_VERSION = 1
MAX_INCIDENTS = 200
_T = TypeVar("_T")


class JobState(enum.StrEnum):
    """Where the supervised job stands. Exactly one holds at a time; `TRANSITIONS` says what may follow.

    A StrEnum: it is saved, compared and used as a metric label as its plain value (``"running"``).
    """

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    BACKOFF = "backoff"
    REPAIRING = "repairing"
    SAFETY_STOP = "safety_stop"
    SUCCEEDED = "succeeded"
    GAVE_UP = "gave_up"
    INTERRUPTED = "interrupted"


_S = JobState
# The moves one supervision session may make. ``None`` is "nothing yet in this session": a session
# always begins by starting the job, whatever the last session left in state.json. SUCCEEDED,
# GAVE_UP and INTERRUPTED end a session. A crash is seen while RUNNING; a hang or a safety gate
# first moves to STOPPING; a shutdown request goes straight to INTERRUPTED.
TRANSITIONS: Mapping[JobState | None, frozenset[JobState]] = MappingProxyType({
    None: frozenset({_S.STARTING}),
    _S.STARTING: frozenset({_S.RUNNING}),
    _S.RUNNING: frozenset({
        _S.SUCCEEDED,                               # exit 0
        _S.STOPPING,                                # a hang or a safety gate: Phoenix stops the job
        _S.BACKOFF, _S.REPAIRING, _S.GAVE_UP,      # a crash, decided by the policy
        _S.STARTING,                                # a crash restarted at once (no backoff, a rollback)
        _S.INTERRUPTED,                             # a shutdown request
    }),
    _S.STOPPING: frozenset({
        _S.SAFETY_STOP,                             # stopped for a safety gate
        _S.BACKOFF, _S.REPAIRING, _S.GAVE_UP,      # stopped for a hang, decided by the policy
        _S.STARTING,                                # a hang restarted at once (no backoff, a rollback)
        _S.INTERRUPTED,                             # a shutdown request while stopping
    }),
    _S.BACKOFF: frozenset({
        _S.STARTING,                                # the delay is over
        _S.REPAIRING,                               # the LLM failed: ask again after the delay
        _S.INTERRUPTED,                             # a shutdown request during the delay
    }),
    _S.REPAIRING: frozenset({
        _S.STARTING,                                # the repair was promoted (or a dry run)
        _S.REPAIRING,                               # it failed and the policy allows another attempt
        _S.BACKOFF,                                 # it failed: restart after a delay, or ask the LLM again
        _S.GAVE_UP,                                 # nothing to patch, or the budgets are spent
    }),
    _S.SAFETY_STOP: frozenset({
        _S.STARTING,                                # the condition cleared: resume
        _S.GAVE_UP,                                 # not recoverable, or resuming is switched off
        _S.INTERRUPTED,                             # a shutdown request while waiting
    }),
    _S.SUCCEEDED: frozenset(),
    _S.GAVE_UP: frozenset(),
    _S.INTERRUPTED: frozenset(),
})


class IllegalTransition(RuntimeError):
    """The loop tried a move `TRANSITIONS` does not list: a bug in Phoenix, not the job's failure.

    Deliberately not a `PhoenixError`, so the command line reports it as an internal error.
    """

    def __init__(self, current: JobState | None, new: JobState) -> None:
        before = current.value if current is not None else "(session start)"
        super().__init__(f"illegal job state transition {before} -> {new.value}")
        self.current = current
        self.new = new


def check_transition(current: JobState | None, new: JobState) -> JobState:
    """Return ``new`` when the table allows moving there from ``current``; raise `IllegalTransition` if not."""
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(current, new)
    return new


def parse_job_state(value: object) -> JobState | None:
    """A saved job state, or None for one this Phoenix does not know (state.json of another version)."""
    try:
        return JobState(value)
    except ValueError:
        return None


@dataclass
class SignatureBudget:
    """Attempts spent on one error signature."""

    category: str
    attempts: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    summary: str = ""


@dataclass
class Budgets:
    """The counters the policy reads. Per-signature attempts reset after a stable run."""

    signatures: dict[str, SignatureBudget] = field(default_factory=dict)
    total_restarts: int = 0
    failures_in_a_row: int = 0  # drives the backoff; reset after a stable run
    no_progress_runs: int = 0  # runs in a row that ended without passing the best step (max_no_progress_restarts)

    def attempts(self, signature: str) -> int:
        entry = self.signatures.get(signature)
        return entry.attempts if entry else 0


@dataclass
class Incident:
    """One bad end of a run and what Phoenix decided about it."""

    id: int
    kind: str  # crash | hang | safety
    opened_at: float
    run: int
    run_seconds: float
    exit: str
    category: str = ""
    signature: str = ""
    summary: str = ""
    exception: str | None = None
    message: str | None = None
    frame: dict[str, Any] | None = None
    action: str = ""
    reason: str = ""
    delay_seconds: float = 0.0
    attempt: int = 0
    budget_remaining: int = 0
    decided_at: float | None = None
    repair: dict[str, Any] | None = None
    details: str | None = None  # file with the full tail and stack dump
    evidence: str | None = None  # a hang's deciding evidence, or a divergence: one line
    step: int | None = None  # the last step the run reported
    category_source: str = "rules"  # rules | llm: the LLM triage named a failure the rules called unknown
    triage: dict[str, Any] | None = None  # the triage's verdict (result, category, reason, client), if one was asked


@dataclass
class JobStatus:
    """What the job is doing now, for `phoenix status` and humans.

    ``state`` is None when state.json holds a state this Phoenix does not know (see `from_json`).
    """

    state: JobState | None = JobState.STARTING
    target: str = ""
    run: int = 0
    started_at: float | None = None
    last_output: float | None = None
    updated_at: float = 0.0
    engine: dict[str, Any] | None = None  # the engine's view of the job (`runtime.base.EngineJob`), for Slurm


@dataclass
class ProgressStatus:
    """The job's progress as read from its output (`phoenix_watchdog.progress`), kept across restarts.

    ``best_step`` is the highest step any run reached (a run that ends below it went nowhere);
    ``intervals`` are what the learned no-progress timeout is computed from.
    """

    step: int | None = None
    best_step: int | None = None
    run_best_step: int | None = None
    total: int | None = None
    loss: float | None = None
    steps_per_second: float | None = None
    last_progress: float | None = None
    timeout_seconds: float | None = None
    slowdown: bool = False
    format: str = ""
    intervals: list[float] = field(default_factory=list)


@dataclass
class SupervisorState:
    """Everything in state.json."""

    budgets: Budgets = field(default_factory=Budgets)
    incidents: list[Incident] = field(default_factory=list)
    job: JobStatus = field(default_factory=JobStatus)
    supervisor: dict[str, Any] = field(default_factory=dict)
    promoted_repair: dict[str, Any] | None = None  # the last promoted repair, for auto-rollback
    progress: ProgressStatus = field(default_factory=ProgressStatus)

    @property
    def current_incident(self) -> Incident | None:
        """The latest incident, while Phoenix is still dealing with it (backoff, repair, given up)."""
        if self.incidents and self.job.state not in (JobState.STARTING, JobState.RUNNING, JobState.SUCCEEDED):
            return self.incidents[-1]
        return None

    def next_incident_id(self) -> int:
        return self.incidents[-1].id + 1 if self.incidents else 1

    def add_incident(self, incident: Incident) -> None:
        self.incidents.append(incident)
        del self.incidents[:-MAX_INCIDENTS]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = STATE_VERSION
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SupervisorState:
        """Read state.json's object. Another version's file is read as far as this one understands it.

        The budgets and the incidents are what matter across versions, so they are kept. A job
        state this Phoenix does not know (written by a newer one, or an older one with a state
        since retired) is loaded as None with a warning: only `phoenix status` shows it, and a
        supervision session starts the job afresh whatever the last one left.
        """
        version = data.get("version", STATE_VERSION)
        if isinstance(version, int) and version > STATE_VERSION:
            log.warning("state.json has version %d, newer than this Phoenix's %d: reading what this version "
                        "understands", version, STATE_VERSION)
        budgets = data.get("budgets") or {}
        job = dict(data.get("job") or {})
        if "state" in job:
            saved, job["state"] = job["state"], parse_job_state(job["state"])
            if job["state"] is None and saved is not None:
                log.warning("state.json records the job state %r, which this Phoenix does not know (written by "
                            "another version?): shown as unknown; budgets and incidents are kept", saved)
        return cls(
            budgets=Budgets(
                signatures={k: _record(SignatureBudget, v) for k, v in (budgets.get("signatures") or {}).items()},
                total_restarts=int(budgets.get("total_restarts", 0)),
                failures_in_a_row=int(budgets.get("failures_in_a_row", 0)),
                no_progress_runs=int(budgets.get("no_progress_runs", 0)),
            ),
            incidents=[_record(Incident, i) for i in data.get("incidents") or []],
            job=_record(JobStatus, job),
            supervisor=dict(data.get("supervisor") or {}),
            promoted_repair=data.get("promoted_repair"),
            progress=_record(ProgressStatus, data.get("progress") or {}),
        )


def _record(cls: type[_T], data: Any) -> _T:
    """``cls(**data)`` without the fields this version does not have (another version added them)."""
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__}: not an object")
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


class StateStore:
    """Reads and writes state.json; the only code that touches it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> SupervisorState:
        """The saved state, or a fresh one. A corrupt file is renamed aside with a warning."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return SupervisorState()
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc.strerror}") from exc
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            return SupervisorState.from_json(data)
        except (ValueError, TypeError, KeyError) as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            os.replace(self.path, aside)
            log.warning("state file %s was unreadable (%s); kept as %s, starting with fresh budgets",
                        self.path, exc, aside)
            return SupervisorState()

    def save(self, state: SupervisorState) -> None:
        """Write the state atomically. Raises `StateError` (full disk), leaving the old file intact."""
        state.job.updated_at = time.time()
        atomic_write_text(self.path, json.dumps(state.to_json(), indent=1, default=str) + "\n")


def read_state(path: str | os.PathLike[str]) -> SupervisorState | None:
    """For readers such as `phoenix status`: the state, or None when there is none yet."""
    store = StateStore(path)
    if not store.path.exists():
        return None
    try:
        data = json.loads(store.path.read_text(encoding="utf-8"))
        return SupervisorState.from_json(data)
    except (OSError, ValueError, TypeError, KeyError):
        return None
