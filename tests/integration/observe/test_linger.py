"""The end of a job reaches Prometheus: after a success or a give-up, `Observability.stop` keeps
serving /metrics until a scrape has read the final state (at most ``metrics_linger_seconds``)."""

from __future__ import annotations

import http.client
import logging
import threading

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from phoenix_sidecar import events as ev
from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.observe.observability import Observability
from phoenix_sidecar.supervise.state import JobState
from phoenix_watchdog.heartbeat import Heartbeat
from kits.waiting import HANG_GUARD, wait_for


def make(**settings):  # type: ignore[no-untyped-def]
    bus = ev.EventBus()
    obs = Observability(Settings(metrics_addr="127.0.0.1:0", gpu_poll_seconds=0.1, **settings), bus, Heartbeat(60.0),
                        target="container trainer", disk_paths=[], registry=CollectorRegistry())
    return obs, bus, None


def scrape(obs) -> dict:  # type: ignore[no-untyped-def]
    host, port = obs.metrics_address
    conn = http.client.HTTPConnection(host, port, timeout=HANG_GUARD)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        assert resp.status == 200
        text = resp.read().decode()
    finally:
        conn.close()
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def stopping(obs) -> threading.Thread:  # type: ignore[no-untyped-def]
    thread = threading.Thread(target=obs.stop, name="test-stop")
    thread.start()
    return thread


def final_state(obs) -> str:  # type: ignore[no-untyped-def]
    values = scrape(obs)
    [state] = [dict(labels)["state"] for (name, labels), v in values.items() if name == "phoenix_job_state" and v == 1]
    return state


def test_a_finished_job_is_served_until_a_scrape_has_read_it(caplog) -> None:
    caplog.set_level(logging.INFO, "phoenix_sidecar.observe.observability")
    obs, bus, _ = make(metrics_linger_seconds=HANG_GUARD)
    obs.start()
    bus.emit(ev.StateChanged(state=JobState.RUNNING))
    assert final_state(obs) == "running"  # Prometheus scrapes this Phoenix
    bus.emit(ev.StateChanged(state=JobState.SUCCEEDED))
    thread = stopping(obs)
    wait_for(lambda: "serving the final state" in caplog.text, "the linger to begin")
    assert thread.is_alive() and obs.metrics_address is not None
    assert final_state(obs) == "succeeded"
    thread.join(HANG_GUARD)
    assert not thread.is_alive() and obs.metrics_address is None


def test_a_give_up_is_served_too() -> None:
    obs, bus, _ = make(metrics_linger_seconds=HANG_GUARD)
    obs.start()
    scrape(obs)
    bus.emit(ev.StateChanged(state=JobState.GAVE_UP))
    thread = stopping(obs)
    wait_for(lambda: final_state(obs) == "gave_up", "the give-up on /metrics")
    thread.join(HANG_GUARD)
    assert not thread.is_alive()


def test_nothing_lingers_when_nothing_ever_scraped_or_the_end_was_an_interruption(caplog) -> None:
    caplog.set_level(logging.INFO, "phoenix_sidecar.observe.observability")
    obs, bus, _ = make(metrics_linger_seconds=HANG_GUARD)
    obs.start()
    bus.emit(ev.StateChanged(state=JobState.SUCCEEDED))
    obs.stop()  # a local `phoenix run` without a Prometheus: no wait (the hang guard would show one)
    obs, bus, _ = make(metrics_linger_seconds=HANG_GUARD)
    obs.start()
    scrape(obs)
    bus.emit(ev.StateChanged(state=JobState.INTERRUPTED))
    obs.stop()
    assert "serving the final state" not in caplog.text


def test_the_linger_ends_after_its_time_without_a_scrape(caplog) -> None:
    obs, bus, _ = make(metrics_linger_seconds=0.2)
    obs.start()
    scrape(obs)
    bus.emit(ev.StateChanged(state=JobState.SUCCEEDED))
    obs.stop()
    assert "no scrape read the final state within 0.2s" in caplog.text


def test_a_phoenix_served_to_other_hosts_waits_for_the_first_scrape_too(caplog) -> None:
    # The stack (metrics_addr 0.0.0.0:9479): a job that gives up at once ends before Prometheus
    # ever scraped; its give-up must still be read.
    caplog.set_level(logging.INFO, "phoenix_sidecar.observe.observability")
    bus = ev.EventBus()
    obs = Observability(Settings(metrics_addr="0.0.0.0:0", gpu_poll_seconds=0.1, metrics_linger_seconds=HANG_GUARD),
                        bus, Heartbeat(60.0), target="container trainer", disk_paths=[], registry=CollectorRegistry())
    obs.start()
    bus.emit(ev.StateChanged(state=JobState.GAVE_UP))
    thread = stopping(obs)
    wait_for(lambda: "serving the final state" in caplog.text, "the linger to begin")
    port = obs.metrics_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_GUARD)
    try:
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
    finally:
        conn.close()
    assert 'phoenix_job_state{state="gave_up"} 1.0' in body
    thread.join(HANG_GUARD)
    assert not thread.is_alive()
