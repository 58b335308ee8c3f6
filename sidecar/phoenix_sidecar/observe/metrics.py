"""Phoenix's Prometheus metrics: definitions, the event listener, and the scrape-time collectors.

Everything lives on a `CollectorRegistry` passed in (never the global one). Event-driven metrics
(`PhoenixMetrics`) change when the supervisor emits an event; collectors (`GpuCollector`,
`HeartbeatCollector`, `DiskCollector`) read cached state at scrape time and never do I/O, so a
scrape is fast even when the driver is wedged.

Label rules: every label value comes from a bounded set (categories, outcomes, reasons, GPU
indexes, configured volumes). Free-form values from events are mapped onto known values or, past
a small cap, onto "other"; signatures, file paths and messages never become labels. Known label
combinations are created at 0 up front, so ``increase()`` sees the first event.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from phoenix_sidecar import __version__
from phoenix_sidecar import events as ev
from phoenix_sidecar.observe.gates import GATES, GateChange
from phoenix_sidecar.config.schema import CATEGORIES, Settings
from phoenix_sidecar.supervise.state import JobState
from phoenix_watchdog.probes.disk import DiskSnapshot
from phoenix_watchdog.probes.gpu import GpuReading, GpuSnapshot
from phoenix_watchdog.probes.gpu_poller import SamplerHealth
from phoenix_watchdog.probes.gpu_xid import XidState
from phoenix_watchdog.heartbeat import Heartbeat

INCIDENT_KINDS = ("crash", "hang", "safety")
DECISIONS = ("repair", "restart", "stop", "wait", "rollback")
GIVE_UP_REASONS = ("budget_signature", "budget_total", "category_stop", "repair_failed", "safety", "repair_disabled")
REPAIR_OUTCOMES = ("promoted", "dry_run", "rejected", "verify_failed", "llm_failed", "no_target", "error")
LLM_ERRORS = ("timeout", "http", "rate_limited", "process", "parse", "config", "other")
PATCH_REJECTIONS = ("allowlist", "denylist", "outside_workspace", "not_found", "ambiguous")
VERIFY_STAGES = ("py_compile", "test_cmd")
WEBHOOK_RESULTS = ("sent", "failed", "dropped")
LLM_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 180, 300, 600)
VERIFY_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1200)
_LABEL_VALUE = re.compile(r"^[a-z0-9_]{1,40}$")


class BoundedLabel:
    """Maps free-form values onto a bounded label set: known values, a few extra ones, then "other"."""

    def __init__(self, known: Iterable[str], extra: int = 8) -> None:
        self._known = set(known)
        self._extra = extra
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        value = (value or "").strip().lower()
        if value in self._known or value in self._seen:
            return value
        if _LABEL_VALUE.match(value) and len(self._seen) < self._extra:
            self._seen.add(value)
            return value
        return "other"


class PhoenixMetrics:
    """The event-driven metrics, and the listener that turns `events` into them (``handle``)."""

    def __init__(self, registry: CollectorRegistry, settings: Settings, *, target: str) -> None:
        r = registry
        self.run_started_at: float | None = None
        self._safety_incidents: set[int] = set()  # their decisions say nothing about the retry budget
        Gauge("phoenix_build_info", "Phoenix version (always 1)", ["version"], registry=r).labels(__version__).set(1)
        Gauge("phoenix_target_info", "What this Phoenix supervises (always 1)", ["target"],
              registry=r).labels(target[:80]).set(1)
        # -- the job -------------------------------------------------------------------------
        self.state = Gauge("phoenix_job_state", "1 for the job's current state, 0 for the others", ["state"], registry=r)
        self._set_state(JobState.STARTING)
        self.runs = Counter("phoenix_job_runs", "Runs of the job started (the first start and every restart)", registry=r)
        self.last_start = Gauge("phoenix_job_last_start_timestamp_seconds", "When the current run started (Unix time)", registry=r)
        self.incidents = Counter("phoenix_incidents", "Runs that ended badly, by kind", ["kind"], registry=r)
        self.hangs = Counter("phoenix_hangs", "Runs stopped because the job was silent past the heartbeat timeout", registry=r)
        self.crashes = Counter("phoenix_crashes", "Runs that crashed, by diagnosed category", ["category"], registry=r)
        self.decisions = Counter("phoenix_decisions", "Decisions taken on incidents, by action", ["action"], registry=r)
        self.restarts = Counter("phoenix_job_restarts", "Restarts of the job, by reason", ["reason"], registry=r)
        self.budget = Gauge("phoenix_budget_remaining", "Attempts left for the current error signature, as of the last decision", registry=r)
        self.budget.set(settings.max_retries)
        self.gave_up = Counter("phoenix_gave_up", "Times Phoenix stopped the job for good, by reason", ["reason"], registry=r)
        self._categories = BoundedLabel(CATEGORIES)
        self._restart_reasons = BoundedLabel((*CATEGORIES, "repair", "safety"))
        self._give_up_reasons = BoundedLabel(GIVE_UP_REASONS)
        _precreate(self.incidents, INCIDENT_KINDS)
        _precreate(self.crashes, CATEGORIES)
        _precreate(self.decisions, DECISIONS)
        _precreate(self.restarts, (*CATEGORIES, "repair", "safety"))
        _precreate(self.gave_up, GIVE_UP_REASONS)
        # -- repair --------------------------------------------------------------------------
        self.repairs = Counter("phoenix_repairs", "Repair attempts, by failure category and outcome", ["category", "outcome"], registry=r)
        self._outcomes = BoundedLabel(REPAIR_OUTCOMES)
        for category in CATEGORIES:
            if settings.action_for(category) == "repair":
                for outcome in REPAIR_OUTCOMES:
                    self.repairs.labels(category, outcome)
        self.llm_seconds = Histogram("phoenix_llm_request_duration_seconds", "Duration of LLM calls, by client",
                                     ["client"], buckets=LLM_BUCKETS, registry=r)
        self.llm_requests = Counter("phoenix_llm_requests", "LLM calls, by client and result", ["client", "result"], registry=r)
        self.llm_errors = Counter("phoenix_llm_errors", "Failed LLM calls, by client and kind of error", ["client", "error"], registry=r)
        clients = list(dict.fromkeys([settings.primary, *settings.fallback]))
        self._clients = BoundedLabel(clients, extra=4)
        self._llm_errors = BoundedLabel(LLM_ERRORS, extra=0)
        for client in clients:
            self.llm_seconds.labels(client)
            _precreate(self.llm_requests, [(client, "ok"), (client, "error")])
            _precreate(self.llm_errors, [(client, e) for e in LLM_ERRORS])
        self.rejected = Counter("phoenix_patches_rejected", "LLM patches refused before applying, by reason", ["reason"], registry=r)
        self._rejections = BoundedLabel(PATCH_REJECTIONS)
        _precreate(self.rejected, PATCH_REJECTIONS)
        self.verify_seconds = Histogram("phoenix_verification_duration_seconds", "Duration of patch verification, by stage",
                                        ["stage"], buckets=VERIFY_BUCKETS, registry=r)
        self.verifications = Counter("phoenix_verifications", "Patch verifications, by stage and result", ["stage", "result"], registry=r)
        self._stages = BoundedLabel(VERIFY_STAGES, extra=2)
        for stage in VERIFY_STAGES:
            self.verify_seconds.labels(stage)
            _precreate(self.verifications, [(stage, "passed"), (stage, "failed")])
        self.promotions = Counter("phoenix_repair_promotions", "Verified repairs promoted into the workspace", registry=r)
        self.promoted_files = Counter("phoenix_repair_promoted_files", "Files changed by promoted repairs", registry=r)
        self.rollbacks = Counter("phoenix_repair_rollbacks", "Repairs rolled back, by trigger", ["trigger"], registry=r)
        _precreate(self.rollbacks, ("automatic", "manual"))
        # -- safety and notifications ---------------------------------------------------------
        self.gate_tripped = Gauge("phoenix_safety_gate_tripped", "1 while a hardware safety gate holds the job stopped", ["gate"], registry=r)
        self.trips = Counter("phoenix_safety_trips", "Times a hardware safety gate tripped", ["gate"], registry=r)
        _precreate(self.gate_tripped, GATES)
        _precreate(self.trips, GATES)
        if settings.gpu_max_temp_c > 0:
            Gauge("phoenix_safety_gpu_temperature_limit_celsius", "GPU temperature that stops the job",
                  registry=r).set(settings.gpu_max_temp_c)
        if settings.gpu_max_power_ratio > 0:
            Gauge("phoenix_safety_gpu_power_limit_ratio", "GPU power, as a fraction of its enforced limit, that stops the job",
                  registry=r).set(settings.gpu_max_power_ratio)
        if settings.min_free_disk_gb > 0:
            Gauge("phoenix_safety_disk_min_free_bytes", "Free space below which the job stops",
                  registry=r).set(settings.min_free_disk_gb * 2**30)
        self.webhook = Counter("phoenix_webhook_notifications", "Webhook notifications, by result", ["result"], registry=r)
        _precreate(self.webhook, WEBHOOK_RESULTS)
        # -- the supervisor's own liveness ----------------------------------------------------
        self.last_tick = Gauge("phoenix_supervisor_last_tick_timestamp_seconds", "Last iteration of the supervisor loop (Unix time)", registry=r)
        self.tick_timeout = Gauge("phoenix_supervisor_tick_timeout_seconds", "Silence of the supervisor loop after which /healthz fails", registry=r)

    # -- the listener --------------------------------------------------------------------------

    def handle(self, event: ev.Event) -> None:
        """Update the metrics for one event (an `events.Listener`)."""
        handler = self._HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _set_state(self, state: JobState) -> None:
        for s in JobState:
            self.state.labels(s.value).set(1 if s is state else 0)

    def _on_state(self, e: ev.StateChanged) -> None:
        self._set_state(JobState(e.state))

    def _on_started(self, e: ev.JobStarted) -> None:
        self.runs.inc()
        self.run_started_at = e.at
        self.last_start.set(e.at)

    def _on_hang(self, e: ev.HangDetected) -> None:
        self.hangs.inc()

    def _on_incident(self, e: ev.IncidentOpened) -> None:
        kind = e.kind if e.kind in INCIDENT_KINDS else "crash"
        self.incidents.labels(kind).inc()
        if kind == "crash":
            self.crashes.labels(self._categories(e.category)).inc()
        elif kind == "safety":
            if len(self._safety_incidents) > 100:
                self._safety_incidents.clear()
            self._safety_incidents.add(e.incident)

    def _on_decision(self, e: ev.DecisionMade) -> None:
        self.decisions.labels(e.action if e.action in DECISIONS else "other").inc()
        if e.incident not in self._safety_incidents:
            self.budget.set(e.budget_remaining)

    def _on_restart(self, e: ev.JobRestarted) -> None:
        self.restarts.labels(self._restart_reasons(e.reason)).inc()

    def _on_gave_up(self, e: ev.GaveUp) -> None:
        self.gave_up.labels(self._give_up_reasons(e.reason)).inc()

    def _on_repair(self, e: ev.RepairFinished) -> None:
        self.repairs.labels(self._categories(e.category), self._outcomes(e.outcome)).inc()

    def _on_llm(self, e: ev.LlmCalled) -> None:
        client = self._clients(e.client)
        self.llm_seconds.labels(client).observe(max(0.0, e.seconds))
        self.llm_requests.labels(client, "ok" if e.ok else "error").inc()
        if not e.ok:
            self.llm_errors.labels(client, self._llm_errors(e.error or "other")).inc()

    def _on_rejected(self, e: ev.PatchRejected) -> None:
        self.rejected.labels(self._rejections(e.reason)).inc()

    def _on_verified(self, e: ev.VerificationFinished) -> None:
        stage = self._stages(e.stage)
        self.verify_seconds.labels(stage).observe(max(0.0, e.seconds))
        self.verifications.labels(stage, "passed" if e.ok else "failed").inc()

    def _on_promoted(self, e: ev.RepairPromoted) -> None:
        self.promotions.inc()
        self.promoted_files.inc(max(0, e.files))

    def _on_rolled_back(self, e: ev.RepairRolledBack) -> None:
        self.rollbacks.labels("automatic" if e.automatic else "manual").inc()

    _HANDLERS: dict[type, Callable[[Any, Any], None]] = {
        ev.StateChanged: _on_state, ev.JobStarted: _on_started, ev.HangDetected: _on_hang, ev.IncidentOpened: _on_incident,
        ev.DecisionMade: _on_decision, ev.JobRestarted: _on_restart, ev.GaveUp: _on_gave_up,
        ev.RepairFinished: _on_repair, ev.LlmCalled: _on_llm, ev.PatchRejected: _on_rejected,
        ev.VerificationFinished: _on_verified, ev.RepairPromoted: _on_promoted,
        ev.RepairRolledBack: _on_rolled_back,
    }

    # -- safety and notifications ----------------------------------------------------------------

    def gate_changed(self, change: GateChange) -> None:
        self.gate_tripped.labels(change.gate).set(1 if change.tripped else 0)
        if change.tripped:
            self.trips.labels(change.gate).inc()

    def webhook_result(self, result: str) -> None:
        self.webhook.labels(result if result in WEBHOOK_RESULTS else "failed").inc()


def _precreate(metric: Counter | Gauge, combos: Iterable[str | tuple[str, ...]]) -> None:
    for combo in combos:
        metric.labels(*((combo,) if isinstance(combo, str) else combo))


class _ScrapeCollector(Collector):
    """A collector that reads cached state at scrape time; describe() is empty so registration never collects."""

    def describe(self) -> Iterable[Metric]:
        return []


class HeartbeatCollector(_ScrapeCollector):
    """The job's pulse, read from the `Heartbeat` at scrape time."""

    def __init__(self, heartbeat: Heartbeat, run_started_at: Callable[[], float | None]) -> None:
        self._hb = heartbeat
        self._run_started_at = run_started_at

    def collect(self) -> Iterator[Metric]:
        outputs = dict(self._hb.last_output_wall)  # a C-level copy: safe against the runtime's writes
        per_stream = GaugeMetricFamily("phoenix_heartbeat_last_output_timestamp_seconds",
                                       "Last output of the job on each stream (Unix time)", labels=["stream"])
        for stream in ("stdout", "stderr", *sorted(set(outputs) - {"stdout", "stderr"})):
            if stream in outputs:
                per_stream.add_metric([stream], outputs[stream])
        yield per_stream
        last = max([*outputs.values(), self._run_started_at() or 0.0])
        if last > 0:
            yield GaugeMetricFamily("phoenix_heartbeat_last_timestamp_seconds",
                                    "Last sign of life of the job: its last output or the start of the current run (Unix time)",
                                    value=last)
        timeout = self._hb.current_timeout()
        yield GaugeMetricFamily("phoenix_heartbeat_timeout_seconds",
                                "Silence that counts as a hang right now (+Inf when hang detection is off)",
                                value=timeout if timeout is not None else math.inf)
        yield GaugeMetricFamily("phoenix_heartbeat_paused", "1 while Phoenix cannot observe the job's output",
                                value=1 if self._hb.paused else 0)


class DiskCollector(_ScrapeCollector):
    """Free space of the watched volumes, from the latest disk poll. ``path`` is a configured mount, a bounded set."""

    def __init__(self, latest: Callable[[], DiskSnapshot | None]) -> None:
        self._latest = latest

    def collect(self) -> Iterator[Metric]:
        snap = self._latest()
        free = GaugeMetricFamily("phoenix_disk_free_bytes", "Free space usable by the job on a watched volume", labels=["path"])
        size = GaugeMetricFamily("phoenix_disk_size_bytes", "Size of a watched volume", labels=["path"])
        for v in snap.volumes if snap else ():
            if v.ok:
                free.add_metric([v.path], v.free_bytes)
                size.add_metric([v.path], v.total_bytes)
        yield free
        yield size


# name, help, how to read it off a GpuReading (None: the GPU does not report it)
_GPU_GAUGES: tuple[tuple[str, str, Callable[[GpuReading], float | None]], ...] = (
    ("phoenix_gpu_temperature_celsius", "GPU core temperature", lambda g: g.temperature_c),
    ("phoenix_gpu_power_usage_watts", "Power draw of the GPU", lambda g: g.power_w),
    ("phoenix_gpu_power_limit_watts", "Enforced power limit of the GPU", lambda g: g.power_limit_w),
    ("phoenix_gpu_utilization_ratio", "Fraction of time a kernel ran on the GPU over the last sample period", lambda g: g.utilization),
    ("phoenix_gpu_memory_utilization_ratio", "Fraction of time device memory was read or written", lambda g: g.memory_utilization),
    ("phoenix_gpu_memory_used_bytes", "Device memory in use", lambda g: g.memory_used_bytes),
    ("phoenix_gpu_memory_total_bytes", "Device memory in all", lambda g: g.memory_total_bytes),
    ("phoenix_gpu_sm_clock_hertz", "SM clock", lambda g: g.sm_clock_hz),
    ("phoenix_gpu_row_remap_pending", "1 when a memory row remap waits for a GPU reset", lambda g: g.row_remap_pending),
    ("phoenix_gpu_row_remap_failure", "1 when a memory row remap failed (the GPU needs service)", lambda g: g.row_remap_failure),
    ("phoenix_gpu_retired_pages_pending", "1 when retired pages wait for a GPU reset (pre-Ampere)", lambda g: g.retired_pages_pending),
)


class GpuCollector(_ScrapeCollector):
    """GPU series from the cached NVML poll, plus the collector's own health and the Xid counts.

    Per-GPU series carry ``gpu`` (index) and ``uuid``; the model, PCI bus id and driver version
    sit on ``phoenix_gpu_info`` (join with ``* on(gpu, uuid) group_left(model) phoenix_gpu_info``).
    """

    def __init__(self, latest: Callable[[], GpuSnapshot | None], health: Callable[[], SamplerHealth],
                 errors: Callable[[], dict[str, int]], xid: Callable[[], XidState | None]) -> None:
        self._latest = latest
        self._health = health
        self._errors = errors  # live, so a call that is stuck right now is already counted
        self._xid = xid

    def collect(self) -> Iterator[Metric]:
        health = self._health()
        snap = self._latest()
        up = snap is not None and snap.available and len(snap.gpus) > 0
        yield GaugeMetricFamily("phoenix_gpu_up", "1 when NVML answers and sees at least one GPU", value=1 if up else 0)
        yield from self._health_metrics(snap, health)
        if snap is None or not snap.available:
            return
        yield GaugeMetricFamily("phoenix_gpu_devices", "GPUs NVML sees", value=len(snap.gpus))
        info = GaugeMetricFamily("phoenix_gpu_info", "GPU identity (always 1)",
                                 labels=["gpu", "uuid", "model", "pci_bus_id", "driver_version"])
        lost = GaugeMetricFamily("phoenix_gpu_lost", "1 when the GPU fell off the bus (NVML: GPU is lost)", labels=["gpu", "uuid"])
        for g in snap.gpus:
            info.add_metric([str(g.identity.index), g.identity.uuid, g.identity.model, g.identity.pci_bus_id,
                             snap.driver_version], 1)
            lost.add_metric(_ids(g), 1 if g.lost else 0)
        yield info
        yield lost
        live = [g for g in snap.gpus if not g.lost]
        for name, doc, read in _GPU_GAUGES:
            family = GaugeMetricFamily(name, doc, labels=["gpu", "uuid"])
            for g in live:
                value = read(g)
                if value is not None:
                    family.add_metric(_ids(g), float(value))
            yield family
        yield from self._counters(live)

    def _counters(self, live: list[GpuReading]) -> Iterator[Metric]:
        energy = CounterMetricFamily("phoenix_gpu_energy_joules", "Energy used by the GPU since the driver loaded", labels=["gpu", "uuid"])
        reasons = GaugeMetricFamily("phoenix_gpu_clocks_event_reason",
                                    "1 while this reason holds the GPU clocks down (throttling)", labels=["gpu", "uuid", "reason"])
        ecc = CounterMetricFamily("phoenix_gpu_ecc_errors", "ECC errors since the driver loaded (volatile)", labels=["gpu", "uuid", "type"])
        remapped = GaugeMetricFamily("phoenix_gpu_remapped_rows", "Memory rows remapped", labels=["gpu", "uuid", "type"])
        retired = GaugeMetricFamily("phoenix_gpu_retired_pages", "Memory pages retired (pre-Ampere)", labels=["gpu", "uuid", "cause"])
        for g in live:
            ids = _ids(g)
            if g.energy_j is not None:
                energy.add_metric(ids, g.energy_j)
            for reason, active in g.clock_event_reasons or ():
                reasons.add_metric([*ids, reason], 1 if active else 0)
            for kind, value in (("corrected", g.ecc_corrected), ("uncorrected", g.ecc_uncorrected)):
                if value is not None:
                    ecc.add_metric([*ids, kind], value)
            for kind, value in (("correctable", g.remapped_rows_correctable), ("uncorrectable", g.remapped_rows_uncorrectable)):
                if value is not None:
                    remapped.add_metric([*ids, kind], value)
            for cause, value in (("single_bit_ecc", g.retired_pages_single_bit), ("double_bit_ecc", g.retired_pages_double_bit)):
                if value is not None:
                    retired.add_metric([*ids, cause], value)
        yield from (energy, reasons, ecc, remapped, retired)

    def _health_metrics(self, snap: GpuSnapshot | None, health: SamplerHealth) -> Iterator[Metric]:
        ok = snap is not None and snap.ok and not health.stalled
        yield GaugeMetricFamily("phoenix_gpu_collect_success",
                                "1 when the last NVML poll succeeded and none is stuck", value=1 if ok else 0)
        yield GaugeMetricFamily("phoenix_gpu_collect_stalled", "1 while an NVML call has been stuck past its deadline",
                                value=1 if health.stalled else 0)
        if snap is not None:
            yield GaugeMetricFamily("phoenix_gpu_collect_duration_seconds", "Duration of the last NVML poll",
                                    value=snap.duration_seconds)
        if snap is not None and snap.last_success_at is not None:
            yield GaugeMetricFamily("phoenix_gpu_last_collect_success_timestamp_seconds",
                                    "When an NVML poll last succeeded (Unix time)", value=snap.last_success_at)
        errors = CounterMetricFamily("phoenix_gpu_collect_errors", "Failed or stuck NVML calls, by call", labels=["call"])
        counts = dict(self._errors())
        xid = self._xid()
        for call, n in (xid.error_counts if xid else {}).items():
            counts[call] = counts.get(call, 0) + n
        for call, n in sorted(counts.items()):
            errors.add_metric([call], n)
        yield errors
        yield from self._xid_metrics(xid)

    def _xid_metrics(self, xid: XidState | None) -> Iterator[Metric]:
        if xid is None or not xid.gpus:
            return
        total = CounterMetricFamily("phoenix_gpu_xid_errors", "Xid events since Phoenix started watching", labels=["gpu", "uuid"])
        last = GaugeMetricFamily("phoenix_gpu_xid_last_code", "Code of the last Xid event (0: none yet)", labels=["gpu", "uuid"])
        when = GaugeMetricFamily("phoenix_gpu_xid_last_timestamp_seconds", "When each Xid code was last seen (Unix time)",
                                 labels=["gpu", "uuid", "xid"])
        for g in xid.gpus:
            ids = [str(g.index), g.uuid]
            total.add_metric(ids, g.count)
            last.add_metric(ids, g.last_code)
            for code, at in g.last_seen:
                when.add_metric([*ids, str(code)], at)
        yield from (total, last, when)


def _ids(g: GpuReading) -> list[str]:
    return [str(g.identity.index), g.identity.uuid]
