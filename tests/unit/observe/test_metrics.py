"""Metric definitions, the event listener and the scrape-time collectors, read through a fresh registry."""

from __future__ import annotations

import math

import pynvml
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from phoenix_sidecar import events as ev
from phoenix_sidecar.observe.collectors import DiskCollector, GpuCollector, HeartbeatCollector
from phoenix_sidecar.observe.metrics import PRECREATED_REJECTIONS, PhoenixMetrics
from phoenix_sidecar.repair import RejectReason
from phoenix_sidecar.supervise.state import JobState
from phoenix_sidecar.observe.gates import GateChange, SafetyTrip
from phoenix_sidecar.config.schema import CATEGORIES, Settings
from phoenix_watchdog.probes.disk import DiskSnapshot, DiskUsage
from phoenix_watchdog.probes.gpu import NvmlReader
from phoenix_watchdog.probes.gpu_poller import SamplerHealth
from phoenix_watchdog.probes.gpu_xid import XidGpu, XidState
from phoenix_watchdog.heartbeat import Heartbeat

HEALTHY = SamplerHealth(samples=1, stalled=False, stalled_call=None, in_flight_seconds=None, cpu_seconds=0.0)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def metrics_for(registry: CollectorRegistry, **settings) -> PhoenixMetrics:
    return PhoenixMetrics(registry, Settings(**settings), target="container trainer")


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def sample_names(registry: CollectorRegistry) -> set[str]:
    text = generate_latest(registry).decode()
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


# -- events ---------------------------------------------------------------------------------------


def test_known_label_combinations_exist_at_zero_before_any_event(registry):
    metrics_for(registry)
    for category in CATEGORIES:
        assert value(registry, "phoenix_crashes_total", category=category) == 0
        assert value(registry, "phoenix_job_restarts_total", reason=category) == 0
    for kind in ("crash", "hang", "safety"):
        assert value(registry, "phoenix_incidents_total", kind=kind) == 0
    assert value(registry, "phoenix_repairs_total", category="code_bug", outcome="promoted") == 0
    assert value(registry, "phoenix_repairs_total", category="gpu_hardware", outcome="promoted") is None, \
        "only categories configured for repair are pre-created"
    assert value(registry, "phoenix_llm_errors_total", client="gemini_cli", error="timeout") == 0
    assert value(registry, "phoenix_llm_request_duration_seconds_count", client="gemini_cli") == 0
    assert value(registry, "phoenix_safety_trips_total", gate="disk_space") == 0
    assert value(registry, "phoenix_gave_up_total", reason="budget_total") == 0
    assert value(registry, "phoenix_hangs_total") == 0
    assert value(registry, "phoenix_job_state", state="starting") == 1
    assert value(registry, "phoenix_budget_remaining") == 3
    assert value(registry, "phoenix_build_info", version="0.1.0") == 1
    assert value(registry, "phoenix_target_info", target="container trainer") == 1


def test_configured_llm_clients_and_repair_categories_are_pre_created(registry):
    metrics_for(registry, primary="openai", fallback=["command"], actions={"segfault": "repair"})
    assert value(registry, "phoenix_llm_requests_total", client="command", result="error") == 0
    assert value(registry, "phoenix_repairs_total", category="segfault", outcome="verify_failed") == 0


def test_job_events(registry):
    m = metrics_for(registry)
    m.handle(ev.StateChanged(JobState.RUNNING))
    m.handle(ev.JobStarted(run=1, target="pid 10", at=1000.0))
    m.handle(ev.HangDetected(silent_seconds=900.0))
    m.handle(ev.IncidentOpened(1, "hang", "hang", "sig-abc", "silent for 15 min"))
    m.handle(ev.DecisionMade(1, "restart", "hang", 5.0, budget_remaining=2))
    m.handle(ev.JobRestarted("hang"))
    m.handle(ev.IncidentOpened(2, "crash", "cuda_oom", "sig-def", "CUDA out of memory"))
    m.handle(ev.IncidentOpened(3, "safety", "gpu_temperature", "safety-gpu_temperature", "too hot"))
    m.handle(ev.DecisionMade(3, "wait", "too hot: waiting", 0.0, budget_remaining=0))
    m.handle(ev.GaveUp("cuda_oom", "budget_signature"))
    m.handle(ev.StateChanged(JobState.GAVE_UP))
    assert value(registry, "phoenix_job_state", state="gave_up") == 1
    assert value(registry, "phoenix_job_state", state="running") == 0
    assert sum(value(registry, "phoenix_job_state", state=s.value) for s in JobState) == 1
    assert value(registry, "phoenix_job_runs_total") == 1
    assert value(registry, "phoenix_job_last_start_timestamp_seconds") == 1000.0
    assert value(registry, "phoenix_hangs_total") == 1
    assert value(registry, "phoenix_incidents_total", kind="hang") == 1
    assert value(registry, "phoenix_incidents_total", kind="safety") == 1
    assert value(registry, "phoenix_crashes_total", category="cuda_oom") == 1
    assert value(registry, "phoenix_crashes_total", category="hang") == 0, "a hang is not a crash"
    assert value(registry, "phoenix_decisions_total", action="restart") == 1
    assert value(registry, "phoenix_decisions_total", action="wait") == 1
    assert value(registry, "phoenix_budget_remaining") == 2, "a safety wait says nothing about the retry budget"
    assert value(registry, "phoenix_job_restarts_total", reason="hang") == 1
    assert value(registry, "phoenix_gave_up_total", reason="budget_signature") == 1


def test_repair_events(registry):
    m = metrics_for(registry)
    m.handle(ev.LlmCalled("gemini_cli", 12.5, ok=True))
    m.handle(ev.LlmCalled("gemini_cli", 180.0, ok=False, error="timeout"))
    m.handle(ev.PatchRejected("allowlist"))
    m.handle(ev.VerificationFinished(3.2, ok=True, stage="test_cmd"))
    m.handle(ev.VerificationFinished(0.1, ok=False, stage="py_compile"))
    m.handle(ev.RepairFinished("code_bug", "promoted"))
    m.handle(ev.RepairPromoted(files=2))
    m.handle(ev.RepairRolledBack(automatic=True))
    assert value(registry, "phoenix_llm_request_duration_seconds_count", client="gemini_cli") == 2
    assert value(registry, "phoenix_llm_request_duration_seconds_sum", client="gemini_cli") == 192.5
    assert value(registry, "phoenix_llm_request_duration_seconds_bucket", client="gemini_cli", le="20.0") == 1
    assert value(registry, "phoenix_llm_requests_total", client="gemini_cli", result="ok") == 1
    assert value(registry, "phoenix_llm_errors_total", client="gemini_cli", error="timeout") == 1
    assert value(registry, "phoenix_patches_rejected_total", reason="allowlist") == 1
    assert value(registry, "phoenix_verifications_total", stage="test_cmd", result="passed") == 1
    assert value(registry, "phoenix_verifications_total", stage="py_compile", result="failed") == 1
    assert value(registry, "phoenix_verification_duration_seconds_sum", stage="test_cmd") == pytest.approx(3.2)
    assert value(registry, "phoenix_repairs_total", category="code_bug", outcome="promoted") == 1
    assert value(registry, "phoenix_repair_promotions_total") == 1
    assert value(registry, "phoenix_repair_promoted_files_total") == 2
    assert value(registry, "phoenix_repair_rollbacks_total", trigger="automatic") == 1


def test_triage_events_count_each_asking_by_result_not_a_reused_answer(registry):
    m = metrics_for(registry)
    for result in ("named", "declined", "rejected", "failed"):
        assert value(registry, "phoenix_triage_total", result=result) == 0
    m.handle(ev.FailureTriaged(1, "named", "cuda_oom", "the allocator ran out", "openai", 2.0))
    m.handle(ev.FailureTriaged(2, "named", "cuda_oom", "the allocator ran out", "openai", 0.0, cached=True))
    m.handle(ev.FailureTriaged(3, "failed", None, "openai: timeout", None, 30.0))
    m.handle(ev.FailureTriaged(4, "no such result", None, "x"))
    assert value(registry, "phoenix_triage_total", result="named") == 1
    assert value(registry, "phoenix_triage_total", result="failed") == 2
    assert value(registry, "phoenix_triage_total", result="no such result") is None


def test_free_form_label_values_stay_bounded(registry):
    m = metrics_for(registry)
    for i in range(50):
        m.handle(ev.PatchRejected(f"reason_{i}"))
        m.handle(ev.PatchRejected(f"/home/user/secret path {i}.py"))
        m.handle(ev.LlmCalled(f"client{i}", 1.0, ok=False, error=f"weird {i}"))
    reasons = {s.labels["reason"] for fam in registry.collect() if fam.name == "phoenix_patches_rejected"
               for s in fam.samples if s.name.endswith("_total")}
    assert reasons == {*PRECREATED_REJECTIONS, "other"}  # the reasons are an enum: no room for strays
    m.handle(ev.PatchRejected(RejectReason.BIDI))
    assert value(registry, "phoenix_patches_rejected_total", reason="bidi") == 1
    assert "other" in reasons and not any("/" in r or " " in r for r in reasons)
    clients = {s.labels["client"] for fam in registry.collect() if fam.name == "phoenix_llm_requests" for s in fam.samples}
    assert len(clients) <= 1 + 4 + 1
    assert value(registry, "phoenix_llm_errors_total", client="other", error="other") > 0


def test_safety_gate_changes(registry):
    m = metrics_for(registry)
    m.gate_changed(GateChange("gpu_temperature", SafetyTrip("gpu_temperature", "GPU 0 at 91 °C", True)))
    assert value(registry, "phoenix_safety_gate_tripped", gate="gpu_temperature") == 1
    assert value(registry, "phoenix_safety_trips_total", gate="gpu_temperature") == 1
    m.gate_changed(GateChange("gpu_temperature", None))
    assert value(registry, "phoenix_safety_gate_tripped", gate="gpu_temperature") == 0
    assert value(registry, "phoenix_safety_trips_total", gate="gpu_temperature") == 1


def test_safety_limits_are_exported_only_when_their_gate_is_on(registry):
    metrics_for(registry, gpu_max_temp_c=80, gpu_max_power_ratio=0, min_free_disk_gb=0)
    assert value(registry, "phoenix_safety_gpu_temperature_limit_celsius") == 80
    assert value(registry, "phoenix_safety_gpu_power_limit_ratio") is None
    assert value(registry, "phoenix_safety_disk_min_free_bytes") is None


def test_every_name_follows_the_conventions(registry, fakenvml):
    m = metrics_for(registry)
    m.handle(ev.LlmCalled("gemini_cli", 1.0, ok=True))
    snap = NvmlReader(fakenvml.eight_gpus()).read()
    registry.register(GpuCollector(lambda: snap, lambda: HEALTHY, dict, lambda: None))
    text = generate_latest(registry).decode()
    for fam in text_string_to_metric_families(text):
        assert fam.name.startswith("phoenix_"), fam.name
        if fam.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in fam.samples), fam.name
        else:
            assert not fam.name.endswith("_total"), f"{fam.name}: only counters end in _total"
        for bad in ("_percent", "_ms", "_milliwatts", "_mib", "_celcius"):
            assert bad not in fam.name


# -- heartbeat ------------------------------------------------------------------------------------


def test_heartbeat_collector_reads_the_heartbeat_at_scrape_time(registry):
    wall = [5000.0]
    hb = Heartbeat(900.0, 1800.0, wall=lambda: wall[0])
    started = [None]
    registry.register(HeartbeatCollector(hb, lambda: started[0]))
    assert value(registry, "phoenix_heartbeat_last_timestamp_seconds") is None
    assert value(registry, "phoenix_heartbeat_timeout_seconds") == 1800, "before the first output: the initial timeout"
    started[0] = 4990.0
    assert value(registry, "phoenix_heartbeat_last_timestamp_seconds") == 4990.0
    hb.beat("stdout")
    wall[0] = 5010.0
    hb.beat("stderr")
    assert value(registry, "phoenix_heartbeat_last_output_timestamp_seconds", stream="stdout") == 5000.0
    assert value(registry, "phoenix_heartbeat_last_output_timestamp_seconds", stream="stderr") == 5010.0
    assert value(registry, "phoenix_heartbeat_last_timestamp_seconds") == 5010.0
    assert value(registry, "phoenix_heartbeat_timeout_seconds") == 900
    hb.pause()
    assert value(registry, "phoenix_heartbeat_paused") == 1


def test_heartbeat_off_exports_an_infinite_timeout(registry):
    registry.register(HeartbeatCollector(Heartbeat(None), lambda: None))
    assert math.isinf(value(registry, "phoenix_heartbeat_timeout_seconds"))


# -- disk -----------------------------------------------------------------------------------------


def test_disk_collector(registry):
    snap = DiskSnapshot((DiskUsage("/workspace", 5 * 2**30, 100 * 2**30), DiskUsage("/gone", 0, 0, error="No such file")))
    registry.register(DiskCollector(lambda: snap))
    assert value(registry, "phoenix_disk_free_bytes", path="/workspace") == 5 * 2**30
    assert value(registry, "phoenix_disk_size_bytes", path="/workspace") == 100 * 2**30
    assert value(registry, "phoenix_disk_free_bytes", path="/gone") is None


# -- GPUs -----------------------------------------------------------------------------------------


def gpu_registry(snap, health=HEALTHY, errors=dict, xid=None) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(GpuCollector(lambda: snap, lambda: health, errors, lambda: xid))
    return registry


def test_eight_gpus_one_series_each_labelled_by_index_and_uuid(fakenvml):
    nv = fakenvml.eight_gpus(clock_reasons=0x40, ecc_corrected=3)
    r = gpu_registry(NvmlReader(nv).read())
    assert value(r, "phoenix_gpu_up") == 1 and value(r, "phoenix_gpu_devices") == 8
    for i, gpu in enumerate(nv.gpus):
        ids = {"gpu": str(i), "uuid": gpu.uuid}
        assert value(r, "phoenix_gpu_temperature_celsius", **ids) == 45
        assert value(r, "phoenix_gpu_power_usage_watts", **ids) == 300
        assert value(r, "phoenix_gpu_power_limit_watts", **ids) == 700
        assert value(r, "phoenix_gpu_energy_joules_total", **ids) == pytest.approx(123456.789)
        assert value(r, "phoenix_gpu_utilization_ratio", **ids) == 0.87
        assert value(r, "phoenix_gpu_memory_used_bytes", **ids) == 60 * 2**30
        assert value(r, "phoenix_gpu_memory_total_bytes", **ids) == 80 * 2**30
        assert value(r, "phoenix_gpu_clocks_event_reason", **ids, reason="hw_thermal_slowdown") == 1
        assert value(r, "phoenix_gpu_clocks_event_reason", **ids, reason="sw_power_cap") == 0
        assert value(r, "phoenix_gpu_ecc_errors_total", **ids, type="corrected") == 3
        assert value(r, "phoenix_gpu_ecc_errors_total", **ids, type="uncorrected") == 0
        assert value(r, "phoenix_gpu_remapped_rows", **ids, type="uncorrectable") == 0
        assert value(r, "phoenix_gpu_retired_pages", **ids, cause="double_bit_ecc") == 0
        assert value(r, "phoenix_gpu_lost", **ids) == 0
        assert value(r, "phoenix_gpu_info", **ids, model="NVIDIA H100 80GB HBM3",
                     pci_bus_id=f"00000000:{0x18 + i:02X}:00.0", driver_version="550.54.15") == 1
    temps = [s for fam in r.collect() if fam.name == "phoenix_gpu_temperature_celsius" for s in fam.samples]
    assert len(temps) == 8 and all(set(s.labels) == {"gpu", "uuid"} for s in temps)
    assert value(r, "phoenix_gpu_collect_success") == 1


def test_unsupported_features_leave_only_their_series_out(fakenvml):
    nv = fakenvml.FakeNvml([fakenvml.FakeGpu(0, unsupported={"nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetPowerUsage",
                                                             "nvmlDeviceGetCurrentClocksEventReasons",
                                                             "nvmlDeviceGetCurrentClocksThrottleReasons"}),
                            fakenvml.FakeGpu(1)])
    r = gpu_registry(NvmlReader(nv).read())
    gpu0 = {"gpu": "0", "uuid": nv.gpus[0].uuid}
    assert value(r, "phoenix_gpu_ecc_errors_total", **gpu0, type="uncorrected") is None
    assert value(r, "phoenix_gpu_power_usage_watts", **gpu0) is None
    assert value(r, "phoenix_gpu_clocks_event_reason", **gpu0, reason="gpu_idle") is None
    assert value(r, "phoenix_gpu_temperature_celsius", **gpu0) == 45
    assert value(r, "phoenix_gpu_power_usage_watts", gpu="1", uuid=nv.gpus[1].uuid) == 300
    assert value(r, "phoenix_gpu_collect_success") == 1


def test_real_pynvml_without_a_driver_means_gpu_up_0_and_no_gpu_series():
    r = gpu_registry(NvmlReader(pynvml).read())
    assert value(r, "phoenix_gpu_up") == 0
    assert not {n for n in sample_names(r) if n.startswith("phoenix_gpu_") and n not in {
        "phoenix_gpu_up", "phoenix_gpu_collect_success", "phoenix_gpu_collect_stalled",
        "phoenix_gpu_collect_duration_seconds", "phoenix_gpu_last_collect_success_timestamp_seconds"}}
    assert value(r, "phoenix_gpu_collect_success") == 1


def test_a_failing_driver_shows_in_the_health_metrics(fakenvml):
    nv = fakenvml.FakeNvml([fakenvml.FakeGpu(0, failing={"nvmlDeviceGetMemoryInfo": pynvml.NVMLError_Unknown})])
    reader = NvmlReader(nv)
    snap = reader.read()
    r = gpu_registry(snap, errors=reader.error_counts)
    assert value(r, "phoenix_gpu_collect_success") == 0
    assert value(r, "phoenix_gpu_collect_errors_total", call="nvmlDeviceGetMemoryInfo") == 1
    assert value(r, "phoenix_gpu_memory_used_bytes", gpu="0", uuid=nv.gpus[0].uuid) is None
    assert value(r, "phoenix_gpu_last_collect_success_timestamp_seconds") is None


def test_a_stalled_poll_serves_cached_values_and_says_so(fakenvml):
    snap = NvmlReader(fakenvml.eight_gpus()).read()
    stalled = SamplerHealth(samples=5, stalled=True, stalled_call="nvmlDeviceGetPowerUsage", in_flight_seconds=30,
                            cpu_seconds=0)
    r = gpu_registry(snap, health=stalled, errors=lambda: {"nvmlDeviceGetPowerUsage": 1})
    assert value(r, "phoenix_gpu_collect_success") == 0
    assert value(r, "phoenix_gpu_collect_stalled") == 1
    assert value(r, "phoenix_gpu_collect_errors_total", call="nvmlDeviceGetPowerUsage") == 1
    assert value(r, "phoenix_gpu_temperature_celsius", gpu="7", uuid=fakenvml.FakeGpu(7).uuid) == 45


def test_a_lost_gpu_keeps_only_its_identity_and_lost_flag(fakenvml):
    nv = fakenvml.eight_gpus()
    reader = NvmlReader(nv)
    reader.read()
    nv.gpus[2].lost = True
    r = gpu_registry(reader.read())
    ids = {"gpu": "2", "uuid": nv.gpus[2].uuid}
    assert value(r, "phoenix_gpu_lost", **ids) == 1
    assert value(r, "phoenix_gpu_temperature_celsius", **ids) is None
    assert value(r, "phoenix_gpu_up") == 1 and value(r, "phoenix_gpu_devices") == 8


def test_xid_series(fakenvml):
    snap = NvmlReader(fakenvml.eight_gpus()).read()
    uuid = fakenvml.FakeGpu(1).uuid
    xid = XidState(True, (XidGpu(0, fakenvml.FakeGpu(0).uuid), XidGpu(1, uuid, 3, 79, ((48, 1000.0), (79, 1200.0)))),
                   {"nvmlEventSetWait": 2})
    r = gpu_registry(snap, xid=xid)
    assert value(r, "phoenix_gpu_xid_errors_total", gpu="1", uuid=uuid) == 3
    assert value(r, "phoenix_gpu_xid_errors_total", gpu="0", uuid=fakenvml.FakeGpu(0).uuid) == 0
    assert value(r, "phoenix_gpu_xid_last_code", gpu="1", uuid=uuid) == 79
    assert value(r, "phoenix_gpu_xid_last_timestamp_seconds", gpu="1", uuid=uuid, xid="48") == 1000.0
    assert value(r, "phoenix_gpu_collect_errors_total", call="nvmlEventSetWait") == 2
