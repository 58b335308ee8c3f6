"""The composition the supervisor calls: real threads, real HTTP, the fake NVML or the real pynvml."""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from phoenix_sidecar import events as ev
from phoenix_sidecar.supervise.state import JobState
from phoenix_sidecar.errors import ConfigError
from phoenix_sidecar.observe.observability import Observability, SafetyTrip
from phoenix_sidecar.config.schema import Settings
from phoenix_watchdog.heartbeat import Heartbeat
from kits.waiting import HANG_GUARD, wait_for


def make(nvml=None, *, disk_paths=(), clock=time.time, **settings) -> tuple[Observability, ev.EventBus, Heartbeat]:
    settings.setdefault("metrics_addr", "127.0.0.1:0")
    settings.setdefault("gpu_poll_seconds", 0.1)
    bus = ev.EventBus()
    hb = Heartbeat(60.0)
    obs = Observability(Settings(**settings), bus, hb, target="container trainer", disk_paths=list(disk_paths),
                        nvml=nvml, registry=CollectorRegistry(), clock=clock)
    return obs, bus, hb



def get(obs: Observability, path: str) -> tuple[int, str]:
    host, port = obs.metrics_address
    conn = http.client.HTTPConnection(host, port, timeout=HANG_GUARD)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def scrape(obs: Observability) -> dict[tuple[str, frozenset], float]:
    status, text = get(obs, "/metrics")
    assert status == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_a_running_phoenix_serves_gpu_job_and_repair_metrics(fakenvml):
    nv = fakenvml.eight_gpus()
    obs, bus, hb = make(nv)
    obs.start()
    try:
        bus.emit(ev.JobStarted(run=1, target="pid 7"))
        bus.emit(ev.StateChanged(JobState.RUNNING))
        hb.beat("stdout")
        bus.emit(ev.RepairFinished("code_bug", "verify_failed"))
        wait_for(lambda: obs.registry.get_sample_value("phoenix_gpu_up") == 1)
        samples = scrape(obs)
        assert samples[("phoenix_gpu_devices", frozenset())] == 8
        uuid = nv.gpus[7].uuid
        assert samples[("phoenix_gpu_temperature_celsius", frozenset({("gpu", "7"), ("uuid", uuid)}))] == 45
        assert samples[("phoenix_job_state", frozenset({("state", "running")}))] == 1
        assert samples[("phoenix_repairs_total", frozenset({("category", "code_bug"), ("outcome", "verify_failed")}))] == 1
        assert ("phoenix_heartbeat_last_output_timestamp_seconds", frozenset({("stream", "stdout")})) in samples
        assert samples[("phoenix_gpu_xid_errors_total", frozenset({("gpu", "7"), ("uuid", uuid)}))] == 0
        assert get(obs, "/healthz")[0] == 200
    finally:
        obs.stop()
    assert obs.metrics_address is None
    assert nv.initialised == 0, "every NVML reference is shut down"


def test_the_llm_triage_of_a_failure_is_allowed_for_between_two_ticks(fakenvml):
    # The triage runs on the supervisor thread after the stop: /healthz must not fail during it.
    plain, _, _ = make(fakenvml.eight_gpus())
    triaging, _, _ = make(fakenvml.eight_gpus(), llm_triage=True, llm_triage_timeout_seconds=45)
    assert triaging.tick_timeout == plain.tick_timeout + 45


def test_healthz_fails_when_the_supervisor_stops_ticking(fakenvml):
    now = [1000.0]
    obs, _, _ = make(fakenvml.eight_gpus(), clock=lambda: now[0])
    obs.start()
    try:
        assert obs.tick_timeout == 3 * 0.1 + 10 + 5
        now[0] += 10
        obs.loop_tick()
        now[0] += 15
        status, body = get(obs, "/healthz")
        assert status == 200 and "ticked 15.0 s ago" in body
        now[0] += 1
        status, body = get(obs, "/healthz")
        assert status == 503 and "silent for 16 s (limit 15 s)" in body
        assert obs.registry.get_sample_value("phoenix_supervisor_last_tick_timestamp_seconds") == 1010.0
        obs.loop_tick(expect_next_within=600)
        now[0] += 300
        assert get(obs, "/healthz")[0] == 200, "a tick may announce a longer pause"
        now[0] += 301
        assert get(obs, "/healthz")[0] == 503
    finally:
        obs.stop()


def test_a_repair_on_the_supervisor_thread_gets_its_configured_time(fakenvml):
    now = [1000.0]
    obs, bus, _ = make(fakenvml.FakeNvml([]), clock=lambda: now[0], llm_timeout_seconds=100, fallback=["openai"],
                       test_timeout_seconds=300)
    obs.start()
    try:
        assert obs.repair_allowance == 100 * 2 + 300 + 60
        bus.emit(ev.StateChanged(JobState.REPAIRING))
        now[0] += obs.tick_timeout + obs.repair_allowance - 1
        assert get(obs, "/healthz")[0] == 200
        now[0] += 2
        assert get(obs, "/healthz")[0] == 503, "a repair stuck past every timeout is a stuck supervisor"
        bus.emit(ev.StateChanged(JobState.STARTING))
        obs.loop_tick()
        now[0] += obs.tick_timeout + 1
        assert get(obs, "/healthz")[0] == 503, "outside a repair the normal limit applies"
    finally:
        obs.stop()


def test_healthz_with_real_time_turns_503_when_ticks_stop(fakenvml):
    obs, _, _ = make(fakenvml.eight_gpus(), kill_grace_seconds=0, stack_dump_timeout_seconds=0)
    obs.start()

    def tick_then_healthy() -> bool:
        # Healthy means "ticked within 0.3 s": a loaded machine may take longer than that to
        # answer, so a 503 right after a tick is retried with a new tick, not failed.
        obs.loop_tick()
        return get(obs, "/healthz")[0] == 200

    try:
        for _ in range(3):
            wait_for(tick_then_healthy, "200 right after a tick")
        wait_for(lambda: get(obs, "/healthz")[0] == 503, "503 once ticks stop")
        wait_for(tick_then_healthy, "200 again after a tick")
    finally:
        obs.stop()


def test_empty_metrics_addr_serves_nothing(fakenvml):
    obs, _, _ = make(fakenvml.eight_gpus(), metrics_addr="")
    obs.start()
    try:
        assert obs.metrics_address is None
        assert not [t for t in threading.enumerate() if t.name.startswith("phoenix-metrics")]
        wait_for(lambda: obs.registry.get_sample_value("phoenix_gpu_devices") == 8)
    finally:
        obs.stop()


def test_a_busy_address_fails_start_and_leaves_nothing_running(fakenvml):
    first, _, _ = make(fakenvml.eight_gpus())
    first.start()
    try:
        host, port = first.metrics_address
        second, _, _ = make(fakenvml.eight_gpus(), metrics_addr=f"{host}:{port}")
        with pytest.raises(ConfigError, match="cannot serve metrics"):
            second.start()
        second.stop()
    finally:
        first.stop()


def test_hot_gpu_trips_the_gate_then_clears(fakenvml):
    nv = fakenvml.eight_gpus()
    obs, _, _ = make(nv, gpu_max_temp_c=85)
    obs.start()
    try:
        wait_for(lambda: obs.registry.get_sample_value("phoenix_gpu_up") == 1)
        assert obs.safety_trip() is None
        nv.gpus[3].temperature = 92
        trip = wait_for(obs.safety_trip)
        assert trip == SafetyTrip("gpu_temperature", "GPU 3 at 92 °C (limit 85 °C)", recoverable=True)
        assert obs.registry.get_sample_value("phoenix_safety_gate_tripped", {"gate": "gpu_temperature"}) == 1
        assert obs.registry.get_sample_value("phoenix_safety_trips_total", {"gate": "gpu_temperature"}) == 1
        nv.gpus[3].temperature = 60
        wait_for(lambda: obs.safety_trip() is None)
        assert obs.registry.get_sample_value("phoenix_safety_gate_tripped", {"gate": "gpu_temperature"}) == 0
    finally:
        obs.stop()


def test_fatal_xid_trips_gpu_errors_for_good(fakenvml):
    nv = fakenvml.eight_gpus()
    obs, _, _ = make(nv)
    obs.start()
    try:
        wait_for(lambda: obs._xid.state().watching)
        nv.emit_xid(5, 79)
        trip = wait_for(obs.safety_trip)
        assert trip.gate == "gpu_errors" and not trip.recoverable and "Xid 79" in trip.detail
        samples = scrape(obs)
        assert samples[("phoenix_gpu_xid_last_code", frozenset({("gpu", "5"), ("uuid", nv.gpus[5].uuid)}))] == 79
        assert samples[("phoenix_safety_trips_total", frozenset({("gate", "gpu_errors")}))] == 1
    finally:
        obs.stop()


def test_low_disk_trips_with_a_real_statvfs(tmp_path, fakenvml):
    obs, _, _ = make(fakenvml.FakeNvml([]), disk_paths=[str(tmp_path), str(tmp_path / "missing")],
                     min_free_disk_gb=10**9)
    obs.start()
    try:
        trip = wait_for(obs.safety_trip)
        assert trip.gate == "disk_space" and trip.recoverable and str(tmp_path) in trip.detail
        assert obs.registry.get_sample_value("phoenix_disk_free_bytes", {"path": str(tmp_path)}) > 0
    finally:
        obs.stop()


def test_a_wedged_driver_never_slows_a_scrape(fakenvml):
    nv = fakenvml.eight_gpus()
    obs, _, _ = make(nv)
    obs.start()
    try:
        wait_for(lambda: obs.registry.get_sample_value("phoenix_gpu_up") == 1)
        nv.gpus[4].temperature = 99
        nv.gpus[4].blocking.add("nvmlDeviceGetMemoryInfo")  # blocks forever, until released below
        wait_for(nv.blocked.is_set)
        wait_for(lambda: obs._gpu.health().stalled, "the poll past its 1 s deadline")  # noqa: SLF001
        # The scrape answers while the driver call is still stuck (it is released only below): a
        # scrape that waited for it would hang. How fast it answers is bench/bench_metrics.py's.
        samples = scrape(obs)
        assert nv.blocked.is_set() and not nv.release.is_set()
        assert samples[("phoenix_gpu_collect_success", frozenset())] == 0
        assert samples[("phoenix_gpu_collect_stalled", frozenset())] == 1
        assert samples[("phoenix_gpu_collect_errors_total", frozenset({("call", "nvmlDeviceGetMemoryInfo")}))] == 1
        uuid = nv.gpus[4].uuid
        assert samples[("phoenix_gpu_temperature_celsius", frozenset({("gpu", "4"), ("uuid", uuid)}))] == 45, \
            "the cached values of the last complete poll"
        assert obs.safety_trip() is None, "stale data neither trips nor clears a gate"
        assert get(obs, "/healthz")[0] == 200, "the driver is stuck, not the supervisor"
    finally:
        nv.gpus[4].blocking.clear()
        nv.release.set()
        obs.stop()


def test_no_driver_on_this_machine_means_no_gpu_and_no_crash():
    obs, _, _ = make(None)  # imports the real pynvml
    obs.start()
    try:
        wait_for(lambda: obs._gpu.health().samples >= 1)
        samples = scrape(obs)
        assert samples[("phoenix_gpu_up", frozenset())] == 0
        assert not [n for n, _ in samples if n.startswith("phoenix_gpu_") and n not in {
            "phoenix_gpu_up", "phoenix_gpu_collect_success", "phoenix_gpu_collect_stalled",
            "phoenix_gpu_collect_duration_seconds", "phoenix_gpu_last_collect_success_timestamp_seconds"}]
        assert obs.safety_trip() is None
    finally:
        obs.stop()


def test_webhook_receives_events_and_counts_deliveries(fakenvml):
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=hook.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        obs, bus, _ = make(fakenvml.FakeNvml([]), webhook_url=f"http://127.0.0.1:{hook.server_address[1]}/hook",
                           webhook_format="generic")
        obs.start()
        bus.emit(ev.SafetyTripped("gpu_temperature", "GPU 0 at 91 °C (limit 85 °C)"))
        bus.emit(ev.StateChanged(JobState.SAFETY_STOP))
        bus.emit(ev.GaveUp("gpu_hardware", "safety"))
        obs.stop()  # drains the queue
        assert [b["event"] for b in received] == ["safety_tripped", "gave_up"]
        assert obs.registry.get_sample_value("phoenix_webhook_notifications_total", {"result": "sent"}) == 2
    finally:
        hook.shutdown()
        hook.server_close()
        thread.join()


def test_stop_is_idempotent_and_safe_before_start(fakenvml):
    obs, _, _ = make(fakenvml.eight_gpus())
    obs.stop()
    obs.start()
    obs.stop()
    obs.stop()


@pytest.mark.needs_gpu
def test_real_gpus_through_the_real_driver():
    """Where an NVIDIA driver is present: every GPU is read, polls succeed, Xid events are watched."""
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        pytest.skip(f"no NVIDIA driver here: {exc}")
    try:
        count = pynvml.nvmlDeviceGetCount()
    finally:
        pynvml.nvmlShutdown()
    obs, _, _ = make(None, gpu_poll_seconds=0.5)
    obs.start()
    try:
        wait_for(lambda: obs.registry.get_sample_value("phoenix_gpu_devices") == count)
        samples = scrape(obs)
        assert samples[("phoenix_gpu_up", frozenset())] == 1
        assert samples[("phoenix_gpu_collect_success", frozenset())] == 1, obs._gpu.latest.errors  # noqa: SLF001
        temps = [v for (name, _), v in samples.items() if name == "phoenix_gpu_temperature_celsius"]
        assert len(temps) == count and all(0 < t < 120 for t in temps)
        memory = [v for (name, _), v in samples.items() if name == "phoenix_gpu_memory_total_bytes"]
        assert len(memory) == count and all(m > 2**30 for m in memory)
        models = [dict(labels)["model"] for (name, labels), _ in samples.items() if name == "phoenix_gpu_info"]
        assert len(models) == count and all(m and m != "unknown" for m in models)
        assert obs.safety_trip() is None or obs.safety_trip().gate != "gpu_errors"
    finally:
        obs.stop()


def test_gpu_metrics_off_leaves_per_gpu_series_to_dcgm_but_keeps_the_gates(fakenvml):
    # A host whose dcgm-exporter already exports the GPUs: Phoenix exports none of its own per-GPU
    # series, yet still reads NVML, so a GPU over the temperature limit still stops the job.
    nv = fakenvml.eight_gpus()
    obs, _, _ = make(nv, gpu_metrics=False, gpu_max_temp_c=80)
    obs.start()
    try:
        wait_for(lambda: obs.registry.get_sample_value("phoenix_gpu_up") == 1)
        samples = scrape(obs)
        assert samples[("phoenix_gpu_devices", frozenset())] == 8
        assert not [name for name, labels in samples if dict(labels).get("gpu") is not None]
        assert obs.safety_trip() is None
        nv.gpus[3].temperature = 95
        trip = wait_for(obs.safety_trip, "the temperature gate")
        assert trip.gate == "gpu_temperature"
        assert scrape(obs)[("phoenix_safety_gate_tripped", frozenset({("gate", "gpu_temperature")}))] == 1
    finally:
        obs.stop()
