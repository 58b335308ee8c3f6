"""What Phoenix tells the human: one line per event on stderr, and every event in the run log.

Phoenix's own lines go to stderr with a ``[phoenix]`` prefix, never to stdout, so the job's stdout
passes through untouched and can still be piped. Every line has one format, events and log records
(warnings, errors) alike: ``[phoenix 2026-12-04 20:10:19] ...``, the date included, since a run can
last weeks. A long step of Phoenix's own (waiting for the LLM, verifying, the kill grace) is
repeated with the time spent every `PROGRESS_SECONDS`, so a silence is never Phoenix's. A line may quote the job's
error message, so it passes the session's redactor (``scrub``) first.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from phoenix_sidecar import events as ev
from phoenix_sidecar.observe.runlog import RunLog


PROGRESS_SECONDS = 15.0


def when(at: float) -> str:
    """Phoenix's way of writing a time: local, with the date."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def line(text: str, at: float | None = None) -> str:
    return f"[phoenix {when(time.time() if at is None else at)}] {text}"


class ConsoleFormatter(logging.Formatter):
    """Log records in the console's one format: ``[phoenix <date> <time>] warning: ...``."""

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else record.levelname.lower() + ": "
        text = line(level + record.getMessage(), record.created)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class ConsoleReporter:
    """Prints the events a human should see as they happen, and repeats a long step while it lasts."""

    def __init__(self, stream: TextIO | None = None, scrub: Callable[[str], str] | None = None, *,
                 progress_seconds: float = PROGRESS_SECONDS) -> None:
        self.stream = stream or sys.stderr
        self.scrub = scrub
        self.progress_seconds = progress_seconds
        self._steps: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.StepProgress):
            self._progress(event)
        text = describe(event)
        if text:
            self._print(line(text, event.at))

    def _print(self, text: str) -> None:
        if self.scrub is not None:
            text = self.scrub(text)
        with self._lock:
            print(text, file=self.stream, flush=True)

    def _progress(self, event: ev.StepProgress) -> None:
        with self._lock:
            done = self._steps.pop(event.step, None)
            if done is not None:
                done.set()
            if event.done:
                return
            done = self._steps[event.step] = threading.Event()
        threading.Thread(target=self._repeat, args=(event, done), name="phoenix-progress", daemon=True).start()

    def _repeat(self, event: ev.StepProgress, done: threading.Event) -> None:
        limit = f" of at most {event.limit_seconds:g} s" if event.limit_seconds else ""
        while not done.wait(self.progress_seconds):
            self._print(line(f"still {event.detail}: {time.time() - event.at:.0f} s{limit}"))


def describe(event: ev.Event) -> str | None:
    """One human line for an event, or None for events that are not worth a line."""
    match event:
        case ev.JobStarted(attached=True, run=run, target=target, started_at=started):
            since = f", running since {when(started)}" if started else ""
            return f"attached to the job ({target}{since}; run {run}): not a new run"
        case ev.StepProgress(detail=detail, limit_seconds=limit, done=False):
            return detail + (f" (at most {limit:g} s)" if limit else "")
        case ev.JobStarted(run=1, target=target):
            return f"started the job ({target})"
        case ev.JobStarted(run=run, target=target):
            return f"started run {run} of the job ({target})"
        case ev.HangDetected(detail=detail) if detail:
            return f"hung: {detail}: taking a stack dump and stopping the job"
        case ev.HangDetected(silent_seconds=silent):
            return f"no output for {silent:.0f}s: taking a stack dump and stopping the job"
        case ev.IncidentOpened(incident=n, kind=kind, category=category, signature=sig, summary=summary,
                               category_source="llm"):
            return f"incident #{n}: {kind}, {category} (named by the LLM triage): {summary} [{sig}]"
        case ev.IncidentOpened(incident=n, kind=kind, category=category, signature=sig, summary=summary):
            return f"incident #{n}: {kind}, {category}: {summary} [{sig}]"
        case ev.FailureTriaged(result="named", category=category, reason=reason, client=client, cached=cached):
            again = ", as before" if cached else ""
            return f"triage: the LLM ({client}{again}) named it {category}: {reason}"
        case ev.FailureTriaged(reason=reason):
            return f"triage: the failure stays unknown: {reason}"
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
