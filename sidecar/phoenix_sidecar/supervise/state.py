"""Phoenix's persistent state: budgets, the incident history and what the job is doing now.

It lives in ``.phoenix_cli/state.json``, written atomically, so a restarted Phoenix (a crashed
sidecar, a rebooted host) picks up the same budgets instead of granting a failing job fresh
attempts. `phoenix status` reads the same file. A corrupt file is set aside, never silently lost.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from phoenix_sidecar.errors import StateError
from phoenix_sidecar.fsutil import atomic_write_text

log = logging.getLogger(__name__)
STATE_VERSION = 1
MAX_INCIDENTS = 200


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


@dataclass
class JobStatus:
    """What the job is doing now, for `phoenix status` and humans."""

    state: str = "starting"
    target: str = ""
    run: int = 0
    started_at: float | None = None
    last_output: float | None = None
    updated_at: float = 0.0


@dataclass
class SupervisorState:
    """Everything in state.json."""

    budgets: Budgets = field(default_factory=Budgets)
    incidents: list[Incident] = field(default_factory=list)
    job: JobStatus = field(default_factory=JobStatus)
    supervisor: dict[str, Any] = field(default_factory=dict)
    promoted_repair: dict[str, Any] | None = None  # the last promoted repair, for auto-rollback

    @property
    def current_incident(self) -> Incident | None:
        """The latest incident, while Phoenix is still dealing with it (backoff, repair, given up)."""
        if self.incidents and self.job.state not in ("starting", "running", "succeeded"):
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
        budgets = data.get("budgets") or {}
        return cls(
            budgets=Budgets(
                signatures={k: SignatureBudget(**v) for k, v in (budgets.get("signatures") or {}).items()},
                total_restarts=int(budgets.get("total_restarts", 0)),
                failures_in_a_row=int(budgets.get("failures_in_a_row", 0)),
            ),
            incidents=[Incident(**i) for i in data.get("incidents") or []],
            job=JobStatus(**(data.get("job") or {})),
            supervisor=dict(data.get("supervisor") or {}),
            promoted_repair=data.get("promoted_repair"),
        )


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
