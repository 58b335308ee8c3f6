"""What Phoenix tells the human: one line per event on stderr, and every event in the run log.

Phoenix's own lines go to stderr with a ``[phoenix]`` prefix, never to stdout, so the job's stdout
passes through untouched and can still be piped. A line may quote the job's error message, so
it passes the session's redactor (``scrub``) first.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from typing import TextIO

from phoenix_sidecar import events as ev
from phoenix_sidecar.observe.runlog import RunLog


class ConsoleReporter:
    """Prints the events a human should see as they happen."""

    def __init__(self, stream: TextIO | None = None, scrub: Callable[[str], str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.scrub = scrub

    def handle(self, event: ev.Event) -> None:
        line = describe(event)
        if line:
            if self.scrub is not None:
                line = self.scrub(line)
            stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
            print(f"[phoenix {stamp}] {line}", file=self.stream, flush=True)


def describe(event: ev.Event) -> str | None:
    """One human line for an event, or None for events that are not worth a line."""
    match event:
        case ev.JobStarted(run=1, target=target):
            return f"started the job ({target})"
        case ev.JobStarted(run=run, target=target):
            return f"started run {run} of the job ({target})"
        case ev.HangDetected(detail=detail) if detail:
            return f"hung: {detail}: taking a stack dump and stopping the job"
        case ev.HangDetected(silent_seconds=silent):
            return f"no output for {silent:.0f}s: taking a stack dump and stopping the job"
        case ev.IncidentOpened(incident=n, kind=kind, category=category, signature=sig, summary=summary):
            return f"incident #{n}: {kind}, {category}: {summary} [{sig}]"
        case ev.DecisionMade(action=action, reason=reason):
            return f"decision: {action}: {reason}"
        case ev.JobSucceeded():
            return "the job finished successfully"
        case ev.SafetyTripped(gate=gate, detail=detail):
            return f"safety gate {gate} crossed: {detail}"
        case ev.SafetyCleared(gate=gate):
            return f"safety gate {gate} clear again"
        case ev.RepairFinished(outcome="promoted", repair_id=rid, files=files):
            return (f"repair {rid} promoted: {', '.join(files)} changed (backups in .phoenix_cli/backups; "
                    f"undo: phoenix rollback {rid})")
        case ev.RepairFinished(outcome=outcome, repair_id=rid, reason=reason):
            return f"repair {rid or '(not recorded)'}: {outcome}: {reason}"
        case ev.RepairRolledBack(automatic=automatic):
            return "repair rolled back" + (" automatically" if automatic else "")
    return None


class RunLogRecorder:
    """Writes every event into the run log, next to the job's output."""

    def __init__(self, runlog: RunLog) -> None:
        self.runlog = runlog

    def handle(self, event: ev.Event) -> None:
        fields = {k: v for k, v in dataclasses.asdict(event).items() if k != "at"}
        self.runlog.flush_output()  # the job's output so far comes before the event that follows it
        self.runlog.event(_snake(type(event).__name__), **fields)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
