"""What the supervisor and the repair engine tell the rest of Phoenix, as plain event records.

Listeners (metrics, the webhook notifier, the console) receive every event through `EventBus`.
Producers never know who listens, so a listener that fails cannot break supervision: the bus logs
the failure and carries on. Events carry bounded values only (categories, reasons, outcomes), so
listeners can use them as metric labels.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # a type-only import: events.py, imported everywhere, stays free of the supervise wing
    from phoenix_sidecar.supervise.state import JobState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    at: float = field(default_factory=time.time, kw_only=True)


@dataclass(frozen=True)
class StateChanged(Event):
    state: JobState


@dataclass(frozen=True)
class JobStarted(Event):
    run: int  # 1 for the first start, 2 for the first restart, ...
    target: str  # pid or container name
    attached: bool = False  # Phoenix attached to a run already going (a running container): no new run
    started_at: float | None = None  # when the run began (the container's StartedAt); None: at the event


@dataclass(frozen=True)
class IncidentOpened(Event):
    """A run ended badly: crash, hang, or safety stop."""

    incident: int
    kind: str  # crash | hang | safety
    category: str
    signature: str
    summary: str
    category_source: str = "rules"  # rules | llm (the LLM triage named an unknown failure)


@dataclass(frozen=True)
class FailureTriaged(Event):
    """The LLM was asked to name a failure no rule named (``llm_triage``); it follows the ``IncidentOpened``."""

    incident: int
    result: str  # a supervise.triage.TriageResult
    category: str | None  # the category it named (result "named"), else None: the failure stays unknown
    reason: str  # the model's one-line reason, or why there was no usable answer
    client: str | None = None
    seconds: float = 0.0
    cached: bool = False  # the session's earlier answer for the same signature: nothing was asked


@dataclass(frozen=True)
class HangDetected(Event):
    """The job was silent past the heartbeat threshold; Phoenix is about to stop it."""

    silent_seconds: float
    detail: str = ""  # which evidence decided: silence, or no new step while the output continued


@dataclass(frozen=True)
class DecisionMade(Event):
    incident: int
    action: str  # repair | restart | stop | wait (safety) | rollback
    reason: str
    delay_seconds: float
    budget_remaining: int  # attempts left for this signature after this one


@dataclass(frozen=True)
class JobRestarted(Event):
    reason: str  # the category, or "repair" / "safety"


@dataclass(frozen=True)
class GaveUp(Event):
    category: str
    reason: str  # a supervise.policy.GiveUpReason


@dataclass(frozen=True)
class JobSucceeded(Event):
    pass


@dataclass(frozen=True)
class SafetyTripped(Event):
    gate: str  # gpu_temperature | gpu_power | disk_space | gpu_errors
    detail: str


@dataclass(frozen=True)
class SafetyCleared(Event):
    gate: str


@dataclass(frozen=True)
class RepairFinished(Event):
    category: str
    outcome: str  # a repair.outcomes.Outcome
    repair_id: str = ""  # for humans only (never a metric label), as are reason and files
    reason: str = ""
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class LlmCalled(Event):
    client: str
    seconds: float
    ok: bool
    error: str = ""  # bounded kind: timeout | http | rate_limited | process | parse | config | ""


@dataclass(frozen=True)
class PatchRejected(Event):
    reason: str  # a repair.outcomes.RejectReason


@dataclass(frozen=True)
class VerificationFinished(Event):
    seconds: float
    ok: bool
    stage: str  # py_compile | test_cmd


@dataclass(frozen=True)
class StepProgress(Event):
    """One of Phoenix's own long steps began (``done`` False) or ended (True): the console says so,
    and repeats it with the time spent while it lasts, so a long silence is never Phoenix's."""

    step: str  # llm | verify | stop
    detail: str  # for humans only (never a metric label)
    limit_seconds: float  # the step's own time limit; 0: none
    done: bool = False


@dataclass(frozen=True)
class RepairPromoted(Event):
    files: int


@dataclass(frozen=True)
class RepairRolledBack(Event):
    automatic: bool


class Listener(Protocol):
    def handle(self, event: Event) -> None: ...


class EventBus:
    """Delivers each event to every listener, in order, from any thread."""

    def __init__(self, listeners: list[Listener] | None = None) -> None:
        self._listeners: list[Listener] = list(listeners or [])
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener | Callable[[Event], None]) -> None:
        if not hasattr(listener, "handle"):
            listener = _FunctionListener(listener)  # type: ignore[arg-type]
        with self._lock:
            self._listeners.append(listener)  # type: ignore[arg-type]

    def emit(self, event: Event) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener.handle(event)
            except Exception:  # a broken listener must not stop supervision
                log.exception("event listener %r failed on %s", listener, type(event).__name__)


@dataclass
class _FunctionListener:
    fn: Callable[[Event], None]

    def handle(self, event: Event) -> None:
        self.fn(event)
