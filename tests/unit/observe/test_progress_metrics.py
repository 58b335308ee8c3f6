"""The progress series, read from the heartbeat's tracker at scrape time, and the NVML snapshot seam."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry

from phoenix_sidecar.events import EventBus
from phoenix_sidecar.observe.collectors import ProgressCollector
from phoenix_sidecar.observe.observability import Observability
from phoenix_sidecar.config.schema import Settings
from phoenix_watchdog.heartbeat import Heartbeat
from phoenix_watchdog.progress import ProgressTracker


def test_progress_series_appear_once_the_job_reports_steps() -> None:
    now = [100.0]
    tracker = ProgressTracker(warmup_steps=0, timeout_min=1.0, clock=lambda: now[0], wall=lambda: 1_700_000_000 + now[0])
    hb = Heartbeat(900.0, progress=tracker)
    registry = CollectorRegistry()
    registry.register(ProgressCollector(hb))
    assert registry.get_sample_value("phoenix_progress_step") is None
    assert math.isinf(registry.get_sample_value("phoenix_progress_timeout_seconds"))
    for n in range(1, 6):
        now[0] += 2.0
        hb.beat("stdout", f"iter {n}: loss {3.0 / n:.3f}, time 2000.00ms, mfu 1.0%\n".encode())
    assert registry.get_sample_value("phoenix_progress_step") == 5
    assert registry.get_sample_value("phoenix_progress_best_step") == 5
    assert registry.get_sample_value("phoenix_progress_steps_per_second") == 0.5
    assert registry.get_sample_value("phoenix_progress_last_timestamp_seconds") == 1_700_000_110
    assert registry.get_sample_value("phoenix_progress_timeout_seconds") == 10.0
    assert registry.get_sample_value("phoenix_progress_loss") == 0.6
    assert registry.get_sample_value("phoenix_progress_slowdown") == 0
    hb.beat("stdout", b"iter 6: loss nan, time 2000.00ms, mfu 1.0%\n")
    assert math.isnan(registry.get_sample_value("phoenix_progress_loss"))
    assert registry.get_sample_value("phoenix_progress_diverged") == 1


def test_without_a_tracker_there_are_no_progress_series() -> None:
    registry = CollectorRegistry()
    registry.register(ProgressCollector(Heartbeat(900.0)))
    assert registry.get_sample_value("phoenix_progress_timeout_seconds") is None


def test_observability_hands_the_supervisor_the_latest_nvml_snapshot(fakenvml) -> None:
    obs = Observability(Settings(metrics_addr="", gpu_poll_seconds=0.1), EventBus(), Heartbeat(None), target="t",
                        disk_paths=(), nvml=fakenvml.eight_gpus())
    assert obs.gpu_snapshot() is None  # nothing polled yet: the supervisor never waits on the driver
    obs.start()
    try:
        import time
        snap = None
        for _ in range(2000):  # a hang guard, not a time bound: the first poll comes within 0.1 s
            snap = obs.gpu_snapshot()
            if snap is not None:
                break
            time.sleep(0.05)
        assert snap is not None and len(snap.gpus) == 8 and snap.gpus[0].utilization is not None
    finally:
        obs.stop()
