"""The webhook notifier, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from phoenix_sidecar import events as ev
from phoenix_sidecar.supervise.state import JobState
from phoenix_sidecar.errors import ConfigError
from phoenix_sidecar.observe.notify import WebhookNotifier, message_for
from kits.waiting import HANG_GUARD


class Receiver:
    """A webhook endpoint that records what it receives and answers with scripted statuses."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.statuses: list[int] = []  # answers for the next requests; 200 when empty
        self.answer = threading.Event()  # cleared: requests are held unanswered until it is set
        self.answer.set()
        self.got = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.answer.wait(HANG_GUARD)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                with receiver.got:
                    receiver.bodies.append(json.loads(body))
                    receiver.headers.append(dict(self.headers))
                    receiver.got.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T0KEN-secret-path"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def wait(self, count: int) -> list[dict]:
        with self.got:
            assert self.got.wait_for(lambda: len(self.bodies) >= count, HANG_GUARD), \
                f"hang guard: got {len(self.bodies)} of {count}"
            return list(self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def notifier(url: str, fmt: str = "generic", **kw) -> tuple[WebhookNotifier, list[str]]:
    kw.setdefault("timeout", HANG_GUARD)  # a request to 127.0.0.1 on a loaded machine may be slow, not lost
    results: list[str] = []
    n = WebhookNotifier(url, fmt, target="container trainer", host="node-7", on_result=results.append,
                        retry_delay=0.05, **kw)
    n.start()
    return n, results


def test_generic_payload_for_an_incident(receiver):
    n, results = notifier(receiver.url)
    try:
        n.handle(ev.IncidentOpened(4, "crash", "cuda_oom", "sig", "CUDA out of memory at train.py:88", at=1_700_000_000))
        [body] = receiver.wait(1)
    finally:
        n.stop()
    assert body == {
        "source": "phoenix", "version": "0.1.0", "event": "incident_opened", "severity": "warning",
        "title": "Incident #4 on container trainer: crash (cuda_oom)", "text": "CUDA out of memory at train.py:88",
        "target": "container trainer", "host": "node-7", "at": "2023-11-14T22:13:20+00:00",
        "details": {"incident": 4, "kind": "crash", "category": "cuda_oom", "category_source": "rules"},
    }
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert results == ["sent"]


def test_slack_and_discord_shapes(receiver):
    for fmt, key in (("slack", "text"), ("discord", "content")):
        n, _ = notifier(receiver.url, fmt)
        try:
            n.handle(ev.GaveUp("code_bug", "budget_signature"))
            body = receiver.wait(len(receiver.bodies) + 1)[-1]
        finally:
            n.stop()
        assert key in body and "Phoenix gave up on container trainer: a human is needed" in body[key]
        assert "budget_signature" in body[key]
    long = ev.IncidentOpened(1, "crash", "unknown", "sig", "x" * 5000)
    n, _ = notifier(receiver.url, "discord")
    try:
        n.handle(long)
        assert len(receiver.wait(3)[-1]["content"]) <= 2000
    finally:
        n.stop()


def test_only_events_worth_a_human_are_sent():
    assert message_for(ev.StateChanged(JobState.RUNNING), "t") is None
    assert message_for(ev.LlmCalled("openai", 1.0, True), "t") is None
    assert message_for(ev.JobStarted(1, "pid 4"), "t") is None
    for event in (ev.IncidentOpened(1, "hang", "hang", "s", "silent"), ev.DecisionMade(1, "restart", "hang", 5, 2),
                  ev.GaveUp("hang", "budget_total"), ev.RepairFinished("code_bug", "promoted"),
                  ev.SafetyTripped("gpu_temperature", "GPU 0 at 91 °C (limit 85 °C)"), ev.SafetyCleared("disk_space"),
                  ev.RepairRolledBack(True), ev.RepairPromoted(2), ev.JobSucceeded()):
        assert message_for(event, "t") is not None, event
    trip = message_for(ev.SafetyTripped("gpu_temperature", "GPU 0 at 91 °C (limit 85 °C)"), "t")
    assert trip.severity == "critical" and trip.text == "GPU 0 at 91 °C (limit 85 °C)"


def test_secrets_never_leave(receiver, caplog):
    n, _ = notifier(receiver.url, secrets=["hunter2-api-key"])
    try:
        n.handle(ev.IncidentOpened(1, "crash", "code_bug", "s",
                                   "KeyError: hunter2-api-key; OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwx"))
        [body] = receiver.wait(1)
    finally:
        n.stop()
    text = json.dumps(body)
    assert "hunter2" not in text and "sk-abcdef" not in text and "[REDACTED]" in text


def test_webhook_urls_and_bearer_tokens_in_a_message_are_redacted(receiver):
    n, _ = notifier(receiver.url)
    slack = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
    try:
        n.handle(ev.IncidentOpened(1, "crash", "unknown", "s",
                                   f"posting to {slack} failed; Authorization: Bearer abc.def.ghi123456"))
        n.handle(ev.IncidentOpened(2, "crash", "code_bug", "s", "unexpected token in JSON at position 3"))
        first, second = receiver.wait(2)
    finally:
        n.stop()
    assert "hooks.slack.com" not in json.dumps(first) and "ghi123456" not in json.dumps(first)
    assert second["text"] == "unexpected token in JSON at position 3"  # ordinary words are left alone


def test_failures_are_logged_without_the_url_and_retried_once_on_5xx(receiver, caplog):
    receiver.statuses = [503, 500]
    n, results = notifier(receiver.url)
    with caplog.at_level(logging.DEBUG):
        try:
            n.handle(ev.JobSucceeded())
            receiver.wait(2)
        finally:
            n.stop()
    assert results == ["failed"], "two attempts, then given up"
    assert "HTTP 500" in caplog.text
    assert "T0KEN" not in caplog.text and "hooks" not in caplog.text


def test_a_4xx_is_not_retried(receiver):
    receiver.statuses = [404]
    n, results = notifier(receiver.url)
    try:
        n.handle(ev.JobSucceeded())
        receiver.wait(1)
    finally:
        n.stop(drain_seconds=HANG_GUARD)  # returns once the delivery, retries included, is over
    assert len(receiver.bodies) == 1 and results == ["failed"]


def test_unreachable_endpoint_is_not_fatal(caplog):
    n, results = notifier("http://127.0.0.1:9/hooks/T0KEN", timeout=0.5)
    try:
        n.handle(ev.JobSucceeded())
    finally:
        n.stop(drain_seconds=HANG_GUARD)  # returns once both attempts failed
    assert results == ["failed"]
    assert "cannot connect" in caplog.text and "T0KEN" not in caplog.text


def test_a_full_queue_drops_and_counts_without_blocking(receiver):
    receiver.answer.clear()  # the endpoint hangs: the queue fills and stays full
    n, results = notifier(receiver.url, queue_size=2)
    try:
        for i in range(10):
            n.handle(ev.IncidentOpened(i, "crash", "unknown", "s", "boom"))
        # Every call came back while the endpoint still held the first request: handle never
        # blocks the supervisor. Two queued, one perhaps already taken by the delivery thread.
        assert results.count("dropped") in (7, 8) and len(results) == results.count("dropped")
    finally:
        receiver.answer.set()
        n.stop(drain_seconds=HANG_GUARD)
    assert results.count("sent") == len(receiver.bodies) == 10 - results.count("dropped")
    assert len(results) == 10


def test_stop_delivers_what_is_queued(receiver):
    n, results = notifier(receiver.url)
    for i in range(5):
        n.handle(ev.IncidentOpened(i, "crash", "unknown", "s", "boom"))
    n.stop(drain_seconds=HANG_GUARD)  # returns as soon as the queue is empty
    assert results == ["sent"] * 5 and len(receiver.bodies) == 5
    n.handle(ev.JobSucceeded())  # after stop: ignored, no thread to send it
    assert len(results) == 5


def test_bad_settings_are_config_errors_that_do_not_show_the_url():
    with pytest.raises(ConfigError) as info:
        WebhookNotifier("ftp://example.invalid/T0KEN", target="t")
    assert info.value.key == "webhook_url" and "T0KEN" not in str(info.value)
    with pytest.raises(ConfigError):
        WebhookNotifier("http://127.0.0.1:1/x", "teams", target="t")
