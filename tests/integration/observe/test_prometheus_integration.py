"""A real Prometheus scraping a real `phoenix run`, with the real alert rules, checked through its HTTP API.

The job prints one line and then sleeps: with ``heartbeat_min=0.05`` (3 s) Phoenix declares it hung,
stops it and restarts it. Prometheus (1 s scrape and evaluation intervals, the shipped rules file
unchanged: the alerts checked here have no ``for:``) must see the target up, the series arrive,
and PhoenixJobHung fire. The dashboard's queries are then run against it, so each one is known
to parse and evaluate.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kits.prometheus import api, eventually, free_port, query, running_prometheus
from kits.waiting import HANG_GUARD
from testkit import PHOENIX, clean_env

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "phoenix.json"
JOB = "import time; print('step 1', flush=True); time.sleep(600)"


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(HANG_GUARD)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def phoenix(tmp_path: Path) -> Iterator[str]:
    """`phoenix run` supervising a job that hangs; yields its metrics address."""
    address = f"127.0.0.1:{free_port()}"
    workspace = tmp_path / "ws"
    workspace.mkdir()
    args = ["run", "--no-repair", "--set", "heartbeat_min=0.05", "--set", f"metrics_addr={address}",
            "--set", "gpu_poll_seconds=1", "--set", "kill_grace_seconds=1", "--set", "stack_dump=off",
            "--set", "max_retries=100", "--set", "max_total_restarts=100", "--set", "backoff_initial_seconds=0.5",
            "--set", "backoff_max_seconds=0.5", "--", sys.executable, "-c", JOB]
    proc = subprocess.Popen([*PHOENIX, *args], cwd=workspace, env=clean_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "phoenix.err").open("wb"))
    try:
        eventually(lambda: urllib.request.urlopen(f"http://{address}/healthz", timeout=1).status == 200,
                   "phoenix /healthz")
        yield address
        assert proc.poll() is None, "phoenix exited early: " + (tmp_path / "phoenix.err").read_text()[-2000:]
    finally:
        stop(proc)
    assert proc.returncode in (143, 128 + signal.SIGTERM), (tmp_path / "phoenix.err").read_text()[-2000:]


@pytest.fixture
def prometheus(tmp_path: Path, phoenix: str) -> Iterator[str]:
    with running_prometheus(tmp_path, phoenix) as base:
        yield base


def test_prometheus_scrapes_phoenix_run_and_alerts_on_a_hang(prometheus: str, phoenix: str):
    target = eventually(lambda: [t for t in api(prometheus, "/api/v1/targets")["activeTargets"]
                                 if t["labels"]["job"] == "phoenix" and t["health"] == "up"], "target up")[0]
    assert target["scrapeUrl"] == f"http://{phoenix}/metrics"

    eventually(lambda: query(prometheus, 'phoenix_job_state{state="running"} == 1'), "job running")
    [build] = eventually(lambda: query(prometheus, "phoenix_build_info"), "build info")
    assert build["metric"]["instance"] == phoenix
    [gpu_up] = query(prometheus, "phoenix_gpu_up")
    assert gpu_up["value"][1] == "0", "this machine has no GPU driver"
    assert not query(prometheus, "phoenix_gpu_temperature_celsius"), "no GPU series without a GPU"
    eventually(lambda: query(prometheus, 'phoenix_heartbeat_last_output_timestamp_seconds{stream="stdout"} > 0'),
               "heartbeat series")
    [timeout] = query(prometheus, "phoenix_heartbeat_timeout_seconds")
    assert float(timeout["value"][1]) == pytest.approx(3.0)

    def hung_alert() -> list[dict]:
        return [a for a in api(prometheus, "/api/v1/alerts")["alerts"]
                if a["labels"]["alertname"] == "PhoenixJobHung" and a["state"] == "firing"]

    [alert] = eventually(hung_alert, "PhoenixJobHung firing")
    assert alert["labels"]["severity"] == "warning" and alert["labels"]["instance"] == phoenix
    assert alert["annotations"]["summary"] == f"The job on {phoenix} hung and was stopped"
    assert float(query(prometheus, "phoenix_hangs_total")[0]["value"][1]) >= 1
    eventually(lambda: query(prometheus, 'phoenix_job_restarts_total{reason="hang"} > 0'), "the restart after the hang")
    watchdog = [a for a in api(prometheus, "/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == "PhoenixWatchdog"]
    assert watchdog and watchdog[0]["state"] == "firing"

    quiet = {"PhoenixDown", "PhoenixAbsent", "PhoenixSupervisorStalled", "PhoenixJobSilent", "PhoenixGpuCollectorFailing"}
    firing = {a["labels"]["alertname"] for a in api(prometheus, "/api/v1/alerts")["alerts"]}
    assert not firing & quiet, f"a healthy Phoenix must not page: {firing & quiet}"

    groups = api(prometheus, "/api/v1/rules")["groups"]
    broken = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert not broken, f"rules that fail to evaluate on real data: {broken}"

    for where, expr in dashboard_queries():
        api(prometheus, "/api/v1/query", query=expr)  # raises on a query Prometheus rejects


def dashboard_queries() -> Iterator[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    grafana_vars = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s", "$instance": ".*", "$gpu": ".*"}

    def concrete(expr: str) -> str:
        for var, value in grafana_vars.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        return expr

    def panels(items: list[dict]) -> Iterator[dict]:
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], concrete(target["expr"])
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            yield annotation["name"], concrete(annotation["expr"])
