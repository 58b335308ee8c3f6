"""Webhook notifications: incidents, decisions, give-ups, repairs and safety stops, as JSON.

Three payload shapes: ``generic`` (one JSON object with every field), ``slack`` (``{"text"}``, for
incoming webhooks) and ``discord`` (``{"content"}``). Delivery runs in its own thread from a
bounded queue, with a timeout per request and one retry on 429/5xx; when the queue is full new
messages are dropped and counted. A failure is logged, never raised: notifications must not
disturb supervision.

The webhook URL is itself a secret (Slack and Discord URLs embed their token): it is never
logged, and error messages that could quote it are not passed on. Message text goes through the
sidecar's one redactor (`phoenix_sidecar.redact`), which removes the given secret values and
token-looking strings; the delivery thread is a `Worker` whose stop never waits forever.
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from phoenix_sidecar import __version__
from phoenix_sidecar import events as ev
from phoenix_sidecar.errors import ConfigError
from phoenix_sidecar.redact import Redactor
from phoenix_watchdog.worker import Worker

log = logging.getLogger(__name__)
FORMATS = ("generic", "slack", "discord")
_DISCORD_LIMIT, _SLACK_LIMIT = 2000, 3000

@dataclass(frozen=True)
class Message:
    """What to say about one event; the payload shape comes later."""

    event: str  # incident_opened, decision_made, ...
    severity: str  # info | warning | critical
    title: str
    text: str
    details: dict[str, Any] = field(default_factory=dict)


def message_for(event: ev.Event, target: str) -> Message | None:
    """The message for an event worth telling a human about, or None."""
    if isinstance(event, ev.IncidentOpened):
        named = " named by the LLM triage" if event.category_source == "llm" else ""
        return Message("incident_opened", "warning",
                       f"Incident #{event.incident} on {target}: {event.kind} ({event.category}{named})", event.summary,
                       {"incident": event.incident, "kind": event.kind, "category": event.category,
                        "category_source": event.category_source})
    if isinstance(event, ev.DecisionMade):
        delay = f" in {event.delay_seconds:g} s" if event.delay_seconds > 0 else ""
        return Message("decision_made", "info", f"Incident #{event.incident}: {event.action}{delay}",
                       f"{event.reason}; {event.budget_remaining} attempt(s) left for this error",
                       {"incident": event.incident, "action": event.action, "delay_seconds": event.delay_seconds,
                        "budget_remaining": event.budget_remaining})
    if isinstance(event, ev.GaveUp):
        return Message("gave_up", "critical", f"Phoenix gave up on {target}: a human is needed",
                       f"reason: {event.reason}; failure category: {event.category}",
                       {"reason": event.reason, "category": event.category})
    if isinstance(event, ev.RepairFinished):
        ok = event.outcome in ("promoted", "dry_run")
        return Message("repair_finished", "info" if ok else "warning", f"Repair of a {event.category} failure: {event.outcome}",
                       f"outcome: {event.outcome}", {"category": event.category, "outcome": event.outcome})
    if isinstance(event, ev.RepairPromoted):
        return Message("repair_promoted", "info", f"Repair promoted on {target}",
                       f"{event.files} file(s) changed in the workspace", {"files": event.files})
    if isinstance(event, ev.RepairRolledBack):
        how = "automatically" if event.automatic else "by request"
        return Message("repair_rolled_back", "warning", f"Repair rolled back on {target}", f"rolled back {how}",
                       {"automatic": event.automatic})
    if isinstance(event, ev.SafetyTripped):
        return Message("safety_tripped", "critical", f"Safety stop on {target}: {event.gate}", event.detail,
                       {"gate": event.gate})
    if isinstance(event, ev.SafetyCleared):
        return Message("safety_cleared", "info", f"Safety gate {event.gate} clear on {target}", "the condition has cleared",
                       {"gate": event.gate})
    if isinstance(event, ev.JobSucceeded):
        return Message("job_succeeded", "info", f"{target} finished successfully", "the job exited with code 0")
    return None


_ICONS = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}


def payload(msg: Message, fmt: str, *, target: str, host: str, at: float) -> dict[str, Any]:
    """The JSON body for one message in the given format."""
    if fmt == "slack":
        return {"text": _clip(f"{_ICONS[msg.severity]} *{msg.title}*\n{msg.text}\n_{host} · phoenix_", _SLACK_LIMIT)}
    if fmt == "discord":
        return {"username": "Phoenix", "content": _clip(f"**{msg.title}**\n{msg.text}\n*{host}*", _DISCORD_LIMIT)}
    return {"source": "phoenix", "version": __version__, "event": msg.event, "severity": msg.severity,
            "title": msg.title, "text": msg.text, "target": target, "host": host,
            "at": datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds"), "details": msg.details}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class WebhookNotifier:
    """Posts event messages to a webhook from a background thread. Subscribe it to the `EventBus`.

    Args:
        url: the webhook (http or https); never logged.
        fmt: generic | slack | discord.
        target: what is supervised, named in the messages.
        secrets: values to cut out of every message (API keys).
        on_result: called with "sent", "failed" or "dropped" for each message (metrics).
    """

    def __init__(self, url: str, fmt: str = "generic", *, target: str, host: str | None = None,
                 timeout: float = 5.0, queue_size: int = 64, secrets: Iterable[str] = (),
                 on_result: Callable[[str], None] | None = None, retry_delay: float = 1.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError("must be an http:// or https:// URL (value not shown: it is a secret)", key="webhook_url")
        if fmt not in FORMATS:
            raise ConfigError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}", key="webhook_format")
        self._url = url
        self._fmt = fmt
        self._target = target
        self._host = host or socket.gethostname()
        self._timeout = timeout
        self._redactor = Redactor(secrets)  # the shared rules, plus these values
        self._on_result = on_result
        self._retry_delay = retry_delay
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=queue_size)
        self._worker = Worker(self._run, "phoenix-webhook")
        self._closed = self._worker.stopping
        self._deadline = float("inf")
        self._dropped = 0

    def start(self) -> None:
        self._worker.start()

    def stop(self, drain_seconds: float = 5.0) -> None:
        """Stop taking messages, deliver what is queued for up to ``drain_seconds``, then end the thread."""
        self._deadline = time.monotonic() + drain_seconds
        if not self._worker.stop(drain_seconds + self._timeout + 1.0):
            log.warning("webhook delivery thread still busy after %.0f s; left behind", drain_seconds + self._timeout + 1.0)
        while True:  # whatever the deadline left behind is lost: count it
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            self._result("dropped")

    def handle(self, event: ev.Event) -> None:
        """Queue the message for an event (an `events.Listener`); never blocks, never raises."""
        if self._closed.is_set():
            return
        msg = message_for(event, self._target)
        if msg is None:
            return
        scrub = self._redactor.text
        msg = Message(msg.event, msg.severity, scrub(msg.title), scrub(msg.text), msg.details)
        body = payload(msg, self._fmt, target=scrub(self._target), host=self._host, at=event.at)
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 100 == 0:
                log.warning("webhook queue full: %d notification(s) dropped so far", self._dropped)
            self._result("dropped")

    # -- delivery ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            if self._closed.is_set() and (self._queue.empty() or time.monotonic() >= self._deadline):
                return
            try:
                body = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            self._result(self._deliver(body))

    def _deliver(self, body: dict[str, Any]) -> str:
        data = json.dumps(body).encode()
        for attempt in (1, 2):
            retry, problem = self._post(data)
            if problem is None:
                return "sent"
            if not retry or attempt == 2 or self._time_left() < self._retry_delay:
                log.warning("webhook delivery failed: %s", problem)
                return "failed"
            time.sleep(self._retry_delay)
        return "failed"

    def _post(self, data: bytes) -> tuple[bool, str | None]:
        """One POST: (worth retrying, problem or None). Problems never quote the URL."""
        request = urllib.request.Request(self._url, data=data, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": f"phoenix/{__version__}"})
        try:
            with urllib.request.urlopen(request, timeout=max(0.1, min(self._timeout, self._time_left()))) as resp:
                resp.read(65536)
            return False, None
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the connection
            return exc.code == 429 or exc.code >= 500, f"HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            reason = exc.reason
            text = reason.strerror if isinstance(reason, OSError) and reason.strerror else type(reason).__name__
            return True, f"cannot connect ({text})"
        except (TimeoutError, socket.timeout):
            return True, f"no answer within {self._timeout:g} s"
        except (OSError, ValueError, http.client.HTTPException) as exc:
            return False, type(exc).__name__

    def _time_left(self) -> float:
        return self._deadline - time.monotonic() if self._closed.is_set() else float("inf")

    def _result(self, result: str) -> None:
        if self._on_result is not None:
            try:
                self._on_result(result)
            except Exception:
                log.exception("webhook result callback failed")

