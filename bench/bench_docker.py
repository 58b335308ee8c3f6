"""Benchmarks of `phoenix watch` (issue #4) against a real Docker engine, each with a baseline measured
in the same run.

    python bench/bench_docker.py             # all three
    python bench/bench_docker.py recovery    # one of: decision, recovery, idle

- decision: from a container's exit (its ``FinishedAt``, read by the bench right after each ``die``)
            to Phoenix's decision (state.json ``decided_at``); target median < 50 ms. Baseline: a bare
            client that only follows the event stream and reads the clock on ``die`` (the daemon
            emits it some 20 ms after ``FinishedAt``: that much no Docker client can beat).
- recovery: from a transient crash (``FinishedAt``) to the container running again (the next
            ``StartedAt``), with no backoff configured, vs a plain ``docker restart`` of the same
            exited container (request to ``StartedAt``); target ratio <= 1.3.
- idle:     the sidecar's CPU (target < 1% of one core) and resident memory (target < 100 MB) while
            it watches a quiet trainer, with the log-file source and with the Docker log stream.

It starts dockerd and builds the Python stand-in image when needed (scripts/docker-env.sh).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "sidecar"), str(REPO / "watchdog")]

import docker  # noqa: E402

from phoenix_watchdog.sources.dockerlogs import parse_rfc3339_ns  # noqa: E402

PHOENIX = [sys.executable, "-m", "phoenix_sidecar"]
IMAGE = "python:3.11-slim"
LABEL = "phoenix.bench"
QUIET = ["--no-repair", "--no-echo", "--set", "metrics_addr=", "--set", "backoff_initial_seconds=0",
         "--set", "backoff_max_seconds=0", "--set", "docker_timeout_seconds=20"]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "GEMINI_", "OPENAI_"))}
    e["PYTHONPATH"] = os.pathsep.join([str(REPO / "sidecar"), str(REPO / "watchdog")])
    return e


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values["VmRSS"], values["VmHWM"]


class Events:
    """Records the bench container's exits (``FinishedAt``) and starts (``start`` event times) in a
    background thread."""

    def __init__(self, api: docker.APIClient, cid: str) -> None:
        self._api, self._cid = api, cid
        self.dies: list[int] = []  # FinishedAt of each run, nanoseconds
        self.starts: list[int] = []
        self.received: list[float] = []  # our wall clock when each die arrived (the bare-client baseline)
        self._stream = api.events(filters={"container": [cid], "type": ["container"]}, decode=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for event in self._stream:
            if event.get("Action") == "die":
                self.received.append(time.time())
                finished = self._api.inspect_container(self._cid)["State"]["FinishedAt"]
                self.dies.append(parse_rfc3339_ns(finished) or 0)
            elif event.get("Action") == "start":
                self.starts.append(int(event["timeNano"]))

    def close(self) -> None:
        self._stream.close()


def container(api: docker.APIClient, workdir: Path, command: list[str]) -> str:
    host = api.create_host_config(network_mode="none", binds={str(workdir): {"bind": "/job", "mode": "rw"}})
    return api.create_container(IMAGE, command, labels={LABEL: "1"}, host_config=host, working_dir="/job")["Id"]


def watch(workdir: Path, cid: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*PHOENIX, "watch", "-w", str(workdir), "--container", cid, *QUIET, *extra], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def crash_loop(api: docker.APIClient, workdir: Path, runs: int) -> tuple[list[dict[str, Any]], Events, str]:
    """A job that exits 3 at once, supervised until its budget of ``runs`` restarts is spent."""
    cid = container(api, workdir, ["python3", "-c", "import sys; print('failing', flush=True); sys.exit(3)"])
    events = Events(api, cid)
    time.sleep(0.3)
    proc = watch(workdir, cid, "--set", f"max_retries={runs}", "--set", f"max_total_restarts={runs}")
    proc.wait(timeout=300)
    time.sleep(0.5)
    incidents = json.loads((workdir / ".phoenix_cli" / "state.json").read_text())["incidents"]
    return incidents, events, cid


def bench_decision(api: docker.APIClient, workdir: Path, runs: int = 30) -> dict[str, Any]:
    incidents, events, cid = crash_loop(api, workdir, runs)
    latencies = [(i["decided_at"] - d / 1e9) * 1000 for i, d in zip(incidents, events.dies)]
    bare = [(r - d / 1e9) * 1000 for r, d in zip(events.received, events.dies)]
    events.close()
    api.remove_container(cid, force=True)
    med, base = statistics.median(latencies), statistics.median(bare)
    return {"decision_median_ms": round(med, 2), "decision_p95_ms": round(sorted(latencies)[int(0.95 * len(latencies)) - 1], 2),
            "bare_event_client_median_ms": round(base, 2), "phoenix_after_the_event_ms": round(med - base, 2), "ratio_to_bare_client": round(med / max(base, 0.01), 1),
            "samples": len(latencies), "target": "median < 50 ms", "ok": med < 50}


def bench_recovery(api: docker.APIClient, workdir: Path, runs: int = 15) -> dict[str, Any]:
    incidents, events, cid = crash_loop(api, workdir, runs)
    # exit i is followed by start i+1: the time the container was down.
    phoenix = [(s - d) / 1e6 for d, s in zip(events.dies, events.starts[1:])]
    plain = []
    for _ in range(runs):  # the same exited container, restarted by hand
        api.wait(cid, timeout=60)
        t0 = time.time_ns()
        api.restart(cid, timeout=0)
        plain.append((parse_rfc3339_ns(api.inspect_container(cid)["State"]["StartedAt"]) - t0) / 1e6)
    events.close()
    api.remove_container(cid, force=True)
    med, base = statistics.median(phoenix), statistics.median(plain)
    ratio = med / base
    return {"phoenix_down_median_ms": round(med, 1), "docker_restart_median_ms": round(base, 1),
            "ratio_phoenix_to_docker_restart": round(ratio, 2), "samples": min(len(phoenix), len(plain)),
            "target": "ratio <= 1.3", "ok": ratio <= 1.3}


def bench_idle(api: docker.APIClient, workdir: Path, window: float = 30.0) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for source in ("log_file", "docker_logs"):
        folder = workdir / source
        folder.mkdir()
        (folder / "logs").mkdir()
        cid = container(api, folder, ["python3", "-u", "-c", "import time\nlog = open('/job/logs/train.log', 'a', "
                                      "buffering=1)\nprint('started', flush=True); print('started', file=log)\n"
                                      "time.sleep(3600)"])
        extra = ["--log-file", str(folder / "logs" / "train.log")] if source == "log_file" else []
        proc = watch(folder, cid, "--heartbeat-min", "60", *extra)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                state = folder / ".phoenix_cli" / "state.json"
                if state.exists() and json.loads(state.read_text())["job"]["state"] == "running":
                    break
                time.sleep(0.2)
            time.sleep(3.0)  # let start-up settle
            before, t0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(window)
            used, elapsed = cpu_seconds(proc.pid) - before, time.monotonic() - t0
            rss, peak = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            api.remove_container(cid, force=True)
        percent = 100 * used / elapsed
        results[source] = {"cpu_percent_of_one_core": round(percent, 3), "rss_MB": round(rss, 1),
                           "peak_rss_MB": round(peak, 1), "window_s": round(elapsed, 1)}
    worst_cpu = max(r["cpu_percent_of_one_core"] for r in results.values())
    worst_rss = max(r["peak_rss_MB"] for r in results.values())
    return {**results, "ratio_cpu_to_1_percent": round(worst_cpu / 1.0, 3), "ratio_rss_to_100_MB": round(worst_rss / 100, 2),
            "target": "< 1% of one core and < 100 MB resident", "ok": worst_cpu < 1.0 and worst_rss < 100}


BENCHES = {"decision": bench_decision, "recovery": bench_recovery, "idle": bench_idle}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    script = REPO / "scripts" / "docker-env.sh"
    started = subprocess.run(["bash", str(script), "start"], check=True, capture_output=True, text=True)
    we_started = "started" in started.stdout  # "reused" when a daemon was already there: leave it running
    subprocess.run(["bash", str(script), "images"], check=True, env={**os.environ, "PHX_DOCKER_IMAGES": "python"})
    api = docker.APIClient(version="auto", timeout=60)
    ok = True
    try:
        for name in names:
            workdir = Path(tempfile.mkdtemp(prefix=f"phoenix-bench-docker-{name}-"))
            try:
                result = BENCHES[name](api, workdir)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            ok &= bool(result.get("ok"))
            print(json.dumps({name: result}), flush=True)
    finally:
        for c in api.containers(all=True, filters={"label": LABEL}):
            api.remove_container(c["Id"], force=True)
        api.close()
        if we_started:
            subprocess.run(["bash", str(script), "stop"], check=False, stdout=subprocess.DEVNULL)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
