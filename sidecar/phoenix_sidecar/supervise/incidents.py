"""Incidents as the supervisor records them: the record in state.json, its log file, where it happened.

`open_incident` adds a run's incident to the state with its log file; `note_decision` writes the
policy's decision into it; `roll_back_if_worse` rolls back a repair after which the job failed
sooner, and says so in the incident. ``incidents/<id>.log`` holds the whole output tail of the failed run (and the stack dump of a hung
one); the newest `MAX_INCIDENT_FILES` are kept. `place` names the rank and node of the failure
when the runtime knows them (a multi-node job on Slurm).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from phoenix_sidecar.errors import PhoenixError
from phoenix_sidecar.fsutil import atomic_write_text
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.runtime.base import RunEnd
from phoenix_sidecar.supervise.policy import Decision
from phoenix_sidecar.supervise.state import Incident, SupervisorState
from phoenix_watchdog.diagnosis.failure import Diagnosis

if TYPE_CHECKING:
    from phoenix_sidecar.supervise.seams import Repairer

log = logging.getLogger(__name__)
MAX_INCIDENT_FILES = 100


def write_details(paths: StatePaths, number: int, end: RunEnd) -> str | None:
    """Write ``incidents/<number>.log``; its path relative to the workspace, or None if it could not be kept."""
    directory = paths.incidents
    directory.mkdir(parents=True, exist_ok=True)
    text = end.tail
    if end.hang is not None:
        why = end.hang.detail or f"no output for {end.hang.silent_seconds:.0f}s"
        text += f"\n\n=== phoenix: {why}; stack dump ===\n"
        text += end.hang.stack or "(no stack dump could be taken)"
    path = directory / f"{number}.log"
    try:
        atomic_write_text(path, text)
    except PhoenixError as exc:
        log.error("%s", exc)
        return None
    for old in sorted(directory.glob("*.log"), key=lambda p: p.stat().st_mtime)[:-MAX_INCIDENT_FILES]:
        old.unlink(missing_ok=True)
    return str(path.relative_to(paths.workspace))


def place(end: RunEnd, diagnosis: Diagnosis) -> str:
    """`` (rank 1 on node n2)`` when the runtime knows where the deciding rank ran, else ``""``."""
    stream = diagnosis.stream
    if not stream or not stream.startswith("rank") or stream not in end.ranks:
        return ""
    return f" (rank {stream[4:]} on node {end.ranks[stream]})"


def open_incident(state: SupervisorState, paths: StatePaths, end: RunEnd, *, kind: str, category: str,
                  signature: str, summary: str, now: float, diagnosis: Diagnosis | None = None) -> Incident:
    """A new incident for the run that just ended, added to ``state``, with its log file written."""
    incident = Incident(
        id=state.next_incident_id(), kind=kind, opened_at=now, run=state.job.run, run_seconds=round(end.duration, 3),
        exit=end.exit.describe(), category=category, signature=signature, summary=summary,
        exception=diagnosis.exception if diagnosis else None, message=diagnosis.message if diagnosis else None,
        frame=diagnosis.to_json()["frame"] if diagnosis else None,
        details=write_details(paths, state.next_incident_id(), end))
    state.add_incident(incident)
    return incident


def note_decision(incident: Incident, decision: Decision, now: float) -> None:
    """Write the policy's decision into the incident."""
    incident.action = decision.action.value
    incident.reason = decision.reason
    incident.delay_seconds = decision.delay
    incident.attempt = decision.attempt
    incident.budget_remaining = decision.budget_remaining
    incident.decided_at = now


def roll_back_if_worse(state: SupervisorState, end: RunEnd, incident: Incident, *, repairer: Repairer | None,
                       enabled: bool, now: float) -> bool:
    """A repaired job that fails sooner than before gets its repair rolled back; True when it was.

    The promoted repair is forgotten after the first run that ends with it, whatever happens here.
    """
    promoted = state.promoted_repair
    if not promoted or promoted.get("run") != state.job.run:
        return False
    state.promoted_repair = None
    if not enabled or repairer is None or end.duration >= float(promoted.get("run_seconds_before", 0.0)):
        return False
    try:
        result = repairer.rollback(promoted["id"], automatic=True)
    except PhoenixError as exc:
        log.error("could not roll back repair %s: %s", promoted["id"], exc)
        return False
    if not result.ok:  # e.g. someone edited the files since: leave them alone
        log.warning("repair %s not rolled back: %s", promoted["id"], result.reason)
        return False
    incident.action = "rollback"
    incident.reason = (f"repair {promoted['id']} made things worse (failed after {end.duration:.0f}s, "
                       f"before it {promoted['run_seconds_before']:.0f}s): rolled back")
    incident.decided_at = now
    return True
