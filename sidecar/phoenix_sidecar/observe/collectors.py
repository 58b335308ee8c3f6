"""Scrape-time collectors: the job's pulse, the volumes' free space and the GPUs, read from cached state.

`HeartbeatCollector`, `DiskCollector`, `GpuCollector` and `EngineCollector` read what the pollers and the
runtime already keep (the `Heartbeat`, the latest `DiskSnapshot` and `GpuSnapshot`, the Slurm job as
last read) when Prometheus scrapes,
and never do I/O, so a scrape is fast even when the driver is wedged. Label values are bounded:
stream names, configured volumes, GPU indexes, the one watched job's id and its state word.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from phoenix_sidecar.runtime.base import EngineJob
from phoenix_watchdog.heartbeat import Heartbeat
from phoenix_watchdog.probes.disk import DiskSnapshot
from phoenix_watchdog.probes.gpu import GpuReading, GpuSnapshot
from phoenix_watchdog.probes.gpu_poller import SamplerHealth
from phoenix_watchdog.probes.gpu_xid import XidState

__all__ = ["DiskCollector", "EngineCollector", "GpuCollector", "HeartbeatCollector", "ProgressCollector"]


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


class ProgressCollector(_ScrapeCollector):
    """The job's progress (step, pace, loss, learned timeout), from the heartbeat's tracker at scrape time.

    The tracker is looked up at each scrape: the supervisor attaches it after observability starts.
    Series the job never reported (no step yet, no loss printed) are absent, not 0.
    """

    def __init__(self, heartbeat: Heartbeat) -> None:
        self._hb = heartbeat

    def collect(self) -> Iterator[Metric]:
        tracker = self._hb.progress
        if tracker is None:
            return
        snap = tracker.snapshot()
        values = [
            ("phoenix_progress_step", "Last step the job reported (from its output)", snap.step),
            ("phoenix_progress_best_step", "Highest step of the current run", snap.best_step),
            ("phoenix_progress_steps_per_second", "Steps per second over the last reports", snap.steps_per_second),
            ("phoenix_progress_last_timestamp_seconds", "Last new step (Unix time)", snap.last_progress_wall),
            ("phoenix_progress_loss", "Last loss the job printed (NaN when it printed NaN)", snap.loss),
        ]
        for name, help_text, value in values:
            if value is not None:
                yield GaugeMetricFamily(name, help_text, value=value)
        timeout = snap.timeout_seconds
        yield GaugeMetricFamily("phoenix_progress_timeout_seconds",
                                "Learned time without a new step that counts as a hang (+Inf until learned)",
                                value=timeout if timeout is not None else math.inf)
        yield GaugeMetricFamily("phoenix_progress_slowdown",
                                "1 while steps per second are below slowdown_fraction of their median for slowdown_min",
                                value=1 if snap.slowdown else 0)
        yield GaugeMetricFamily("phoenix_progress_diverged", "1 once the run's loss turned NaN/inf or blew up",
                                value=1 if snap.divergence is not None else 0)


class EngineCollector(_ScrapeCollector):
    """The Slurm job as the runtime last read it: absent for the local and Docker runtimes.

    One job per Phoenix, so ``job_id`` is one value; ``state`` is the runtime's bounded state word
    (`runtime.slurm.client.JOB_STATES`, else OTHER). Node names are never labels: a count.
    """

    def __init__(self, latest: Callable[[], EngineJob | None]) -> None:
        self._latest = latest

    def collect(self) -> Iterator[Metric]:
        job = self._latest()
        if job is None or job.engine != "slurm":
            return
        info = GaugeMetricFamily("phoenix_slurm_job_info", "The watched Slurm job and its state (always 1)",
                                 labels=["job_id", "state"])
        info.add_metric([job.job_id, job.state], 1)
        yield info
        yield GaugeMetricFamily("phoenix_slurm_job_nodes", "Nodes of the job's current (or last) run",
                                value=len(job.nodes))
        yield GaugeMetricFamily("phoenix_slurm_job_restarts", "Slurm's restart count of the job (requeues by "
                                "Phoenix, the scheduler or an operator)", value=job.restarts)
        yield CounterMetricFamily("phoenix_slurm_requeues", "Requeues of the job made by Phoenix", value=job.requeues)
        yield GaugeMetricFamily("phoenix_slurm_excluded_nodes", "Nodes Phoenix excluded from the job "
                                "(hardware failure, node failure)", value=len(job.excluded))


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
    Without ``per_gpu`` (``gpu_metrics: false``, a host whose dcgm-exporter already exports them)
    only the collector's own health and the GPU count are exported; NVML is read all the same,
    for the safety gates.
    """

    def __init__(self, latest: Callable[[], GpuSnapshot | None], health: Callable[[], SamplerHealth],
                 errors: Callable[[], dict[str, int]], xid: Callable[[], XidState | None], *,
                 per_gpu: bool = True) -> None:
        self._per_gpu = per_gpu
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
        if not self._per_gpu:
            return
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
        if self._per_gpu:
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
