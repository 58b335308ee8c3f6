"""Benchmarks of the metrics exporter (issue #5), each against a baseline measured in the same run.

    python bench/bench_metrics.py            # both
    python bench/bench_metrics.py scrape     # one of: scrape, poll

- scrape: a real HTTP GET of /metrics from a running Observability with 8 fake GPUs (NVML faked at
          the pynvml function boundary), every event type seen and an Xid recorded, over one
          keep-alive connection as Prometheus scrapes. Target: median < 10 ms. Baseline: a bare
          HTTP round trip to /healthz on the same server (the ratio is the cost of the exposition).
          Then the same with a wedged driver (one NVML call blocked past the poll deadline): the
          scrape serves cached values, so it stays as fast (the tests check only that it answers).
- poll:   CPU of the background NVML poller with 8 fake GPUs: CPU time per poll measured with
          time.thread_time inside the poller thread, scaled to the default 5 s interval; then the
          whole Observability's CPU (poller, Xid watcher, disk poller, HTTP server) over an idle
          window at the default interval. Target: poller < 0.5 % of one core.
          Baseline: an idle process over the same window.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "sidecar"), str(REPO / "watchdog")]

from prometheus_client import CollectorRegistry  # noqa: E402

from phoenix_sidecar import events as ev  # noqa: E402
from phoenix_sidecar.supervise.state import JobState  # noqa: E402
from phoenix_sidecar.observe.observability import Observability  # noqa: E402
from phoenix_sidecar.config.schema import Settings  # noqa: E402
from phoenix_watchdog.heartbeat import Heartbeat  # noqa: E402

OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"


def fakenvml():
    spec = importlib.util.spec_from_file_location("bench_fakenvml", REPO / "tests" / "kits" / "fakenvml.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def running_phoenix(poll_seconds: float) -> tuple[Observability, object]:
    nv = fakenvml().eight_gpus(clock_reasons=0x4, ecc_corrected=2)
    bus, hb = ev.EventBus(), Heartbeat(900.0)
    obs = Observability(Settings(metrics_addr="127.0.0.1:0", gpu_poll_seconds=poll_seconds, gpu_max_power_ratio=0.95),
                        bus, hb, target="container trainer", disk_paths=[str(REPO)], nvml=nv, registry=CollectorRegistry())
    obs.start()
    hb.beat("stdout")
    hb.beat("stderr")
    for event in (ev.JobStarted(1, "pid 1"), ev.StateChanged(JobState.RUNNING), ev.HangDetected(900.0),
                  ev.IncidentOpened(1, "hang", "hang", "s", "silent"), ev.DecisionMade(1, "restart", "hang", 5, 2),
                  ev.JobRestarted("hang"), ev.LlmCalled("gemini_cli", 12.0, True),
                  ev.VerificationFinished(3.0, True, "test_cmd"), ev.RepairFinished("code_bug", "promoted"),
                  ev.RepairPromoted(2), ev.PatchRejected("allowlist")):
        bus.emit(event)
    deadline = time.monotonic() + 10
    while obs.registry.get_sample_value("phoenix_gpu_devices") != 8 or not obs._xid.state().watching:  # noqa: SLF001
        assert time.monotonic() < deadline, "the fake GPUs never showed up"
        time.sleep(0.01)
    nv.emit_xid(3, 79)
    time.sleep(0.3)
    return obs, nv


def timed_gets(conn: http.client.HTTPConnection, path: str, n: int, headers: dict[str, str]) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        times.append(time.perf_counter() - t0)
        assert resp.status == 200, resp.status
        size = len(body)
    return times, size


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def bench_scrape(n: int = 400) -> dict:
    obs, nv = running_phoenix(poll_seconds=5.0)
    try:
        host, port = obs.metrics_address
        conn = http.client.HTTPConnection(host, port, timeout=10)
        timed_gets(conn, "/metrics", 20, {})  # warm-up
        base, _ = timed_gets(conn, "/healthz", n, {})
        text, size = timed_gets(conn, "/metrics", n, {})
        om, om_size = timed_gets(conn, "/metrics", n, {"Accept": OPENMETRICS})
        gz, gz_size = timed_gets(conn, "/metrics", n, {"Accept": OPENMETRICS, "Accept-Encoding": "gzip"})
        nv.gpus[4].blocking.add("nvmlDeviceGetMemoryInfo")  # the next poll blocks; stalled 10 s later
        deadline = time.monotonic() + 60
        while not obs._gpu.health().stalled:  # noqa: SLF001
            assert time.monotonic() < deadline, "the poll never stalled"
            time.sleep(0.05)
        wedged, _ = timed_gets(conn, "/metrics", n, {})
        conn.close()
    finally:
        nv.gpus[4].blocking.clear()
        nv.release.set()
        obs.stop()
    result = {"requests": n, "baseline_healthz_median_ms": statistics.median(base) * 1e3}
    for name, times, nbytes in (("text", text, size), ("openmetrics", om, om_size), ("openmetrics_gzip", gz, gz_size)):
        result[f"{name}_median_ms"] = statistics.median(times) * 1e3
        result[f"{name}_p95_ms"] = p95(times) * 1e3
        result[f"{name}_bytes"] = nbytes
        result[f"{name}_ratio_vs_healthz"] = statistics.median(times) / statistics.median(base)
    result["wedged_driver_text_median_ms"] = statistics.median(wedged) * 1e3
    result["wedged_driver_ratio_vs_text"] = statistics.median(wedged) / statistics.median(text)
    result["target_median_ms"] = 10.0
    result["pass"] = max(result["text_median_ms"], result["openmetrics_median_ms"], result["openmetrics_gzip_median_ms"],
                         result["wedged_driver_text_median_ms"]) < 10
    return result


def bench_poll(window: float = 30.0) -> dict:
    # 1. CPU per poll, polling back to back, measured inside the poller thread.
    obs, _ = running_phoenix(poll_seconds=0.1)
    try:
        h0 = obs._gpu.health()  # noqa: SLF001 (benchmark reads the sampler's own accounting)
        time.sleep(3.0)
        h1 = obs._gpu.health()  # noqa: SLF001
    finally:
        obs.stop()
    polls = h1.samples - h0.samples
    per_poll = (h1.cpu_seconds - h0.cpu_seconds) / polls
    poller_pct = per_poll / 5.0 * 100

    # 2. The whole Observability at the default interval, everything else idle, against an idle baseline.
    t0 = time.process_time()
    time.sleep(window / 3)
    idle_pct = (time.process_time() - t0) / (window / 3) * 100
    obs, _ = running_phoenix(poll_seconds=5.0)
    try:
        time.sleep(1.0)
        h0, c0, w0 = obs._gpu.health(), time.process_time(), time.monotonic()  # noqa: SLF001
        time.sleep(window)
        h1, c1, w1 = obs._gpu.health(), time.process_time(), time.monotonic()  # noqa: SLF001
    finally:
        obs.stop()
    whole_pct = (c1 - c0) / (w1 - w0) * 100
    return {"polls_measured": polls, "cpu_ms_per_poll_8_gpus": per_poll * 1e3,
            "poller_pct_of_one_core_at_5s": poller_pct,
            "window_seconds": window, "polls_in_window": h1.samples - h0.samples,
            "observability_pct_of_one_core_at_5s": whole_pct, "baseline_idle_process_pct": idle_pct,
            "target_pct": 0.5, "pass": poller_pct < 0.5}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="*", help="scrape and/or poll (default: both)")
    parser.add_argument("--window", type=float, default=30.0, help="seconds of the idle CPU window (poll)")
    args = parser.parse_args()
    if set(args.which) - {"scrape", "poll"}:
        parser.error(f"unknown benchmark(s): {' '.join(sorted(set(args.which) - {'scrape', 'poll'}))}")
    ok = True
    for name in args.which or ["scrape", "poll"]:
        result = bench_scrape() if name == "scrape" else bench_poll(args.window)
        ok &= bool(result["pass"])
        print(f"{name}:")
        for key, value in result.items():
            print(f"  {key:40s} {value:.3f}" if isinstance(value, float) else f"  {key:40s} {value}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
