"""Benchmarks of `phoenix run` (issue #3), each as a ratio against a baseline measured in the same run.

    python bench/bench_run.py            # all four
    python bench/bench_run.py throughput # one of: decision, hang, throughput, idle

- decision:   from the child's exit to Phoenix's decision (state.json ``decided_at``); target median < 50 ms.
              Baseline: a bare parent that only waits for the child and reads the clock.
- hang:       from the job's last output to the SIGTERM it receives; target < heartbeat + 1 s.
- throughput: a child writing 200 MB of lines through `phoenix run` vs the same child piped into
              `cat`; target >= 0.5x, with Phoenix's peak resident memory < 100 MB.
- idle:       Phoenix's CPU while it supervises a quiet job; target < 1% of one core.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHOENIX = [sys.executable, "-m", "phoenix_sidecar"]
QUIET = ["--set", "metrics_addr=", "--no-repair"]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "GEMINI_", "OPENAI_"))}
    e["PYTHONPATH"] = os.pathsep.join([str(REPO / "sidecar"), str(REPO / "watchdog")])
    return e


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source))
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_decision(workdir: Path, runs: int = 30) -> dict:
    stamps = workdir / "exits"
    write(workdir, "crash.py", f"""
        import os, time
        with open({str(stamps)!r}, "a") as fh:
            fh.write(f"{{time.time():.6f}}\\n")
        os._exit(1)
    """)
    subprocess.run([*PHOENIX, "run", *QUIET, "--set", f"max_retries={runs}", "--set", f"max_total_restarts={runs}",
                    "--set", "backoff_initial_seconds=0.01", "--set", "backoff_max_seconds=0.01", "--",
                    sys.executable, "crash.py"], cwd=workdir, env=env(), capture_output=True, check=False)
    exits = [float(x) for x in stamps.read_text().split()]
    incidents = json.loads((workdir / ".phoenix_cli" / "state.json").read_text())["incidents"]
    latencies = [(i["decided_at"] - t) * 1000 for i, t in zip(incidents, exits)]

    baseline = []
    for _ in range(runs):  # a parent that does nothing but wait: the floor of exit notification
        stamps.unlink()
        proc = subprocess.Popen([sys.executable, "crash.py"], cwd=workdir)
        proc.wait()
        baseline.append((time.time() - float(stamps.read_text())) * 1000)
    med, base = statistics.median(latencies), statistics.median(baseline)
    return {"decision_median_ms": round(med, 2), "decision_p95_ms": round(sorted(latencies)[int(0.95 * len(latencies)) - 1], 2),
            "bare_wait_median_ms": round(base, 2), "ratio_to_bare_wait": round(med / base, 1),
            "samples": len(latencies), "target": "median < 50 ms", "ok": med < 50}


def bench_hang(base: Path, heartbeat_s: float = 2.0, runs: int = 4) -> dict:
    results = {}
    for mode in ("py-spy", "off"):
        workdir = base / mode
        workdir.mkdir()
        log = workdir / "kills"
        write(workdir, "hang.py", f"""
            import signal, sys, time
            def on_term(*_):
                with open({str(log)!r}, "a") as fh:
                    fh.write(f"{{last:.6f}} {{time.time():.6f}}\\n")
                sys.exit(1)
            signal.signal(signal.SIGTERM, on_term)
            print("step", flush=True)
            last = time.time()
            while True:
                time.sleep(0.05)
        """)
        subprocess.run([*PHOENIX, "run", *QUIET, "--set", f"heartbeat_min={heartbeat_s / 60}",
                        "--set", f"stack_dump={mode}", "--set", f"max_retries={runs - 1}",
                        "--set", "backoff_initial_seconds=0.01", "--", sys.executable, "hang.py"],
                       cwd=workdir, env=env(), capture_output=True, check=False)
        pairs = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
        kills = [term - last for last, term in pairs]
        results[mode] = {"median_s": round(statistics.median(kills), 3), "max_s": round(max(kills), 3),
                         "samples": len(kills)}
    worst = max(r["max_s"] for r in results.values())
    return {"heartbeat_s": heartbeat_s, "kill_after_silence": results,
            "ratio_worst_to_heartbeat": round(worst / heartbeat_s, 3),
            "target": f"kill lands before heartbeat + 1 s = {heartbeat_s + 1} s", "ok": worst < heartbeat_s + 1}


def bench_throughput(workdir: Path, megabytes: int = 200) -> dict:
    write(workdir, "spew.py", f"""
        import sys
        line = ("x" * 99 + "\\n")
        out = sys.stdout
        for _ in range({megabytes} * 10 ** 6 // 100):
            out.write(line)
    """)
    child = [sys.executable, "spew.py"]

    def timed(cmd: list[str], **kw) -> float:
        start = time.perf_counter()
        subprocess.run(cmd, cwd=workdir, env=env(), stdout=subprocess.DEVNULL, check=True, **kw)
        return time.perf_counter() - start

    cat_s = timed(["sh", "-c", f"{sys.executable} spew.py | cat"])
    peak = {"kb": 0}
    start = time.perf_counter()
    proc = subprocess.Popen([*PHOENIX, "run", *QUIET, "--", *child], cwd=workdir, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def sample() -> None:
        while proc.poll() is None:
            try:
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak["kb"] = max(peak["kb"], int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    proc.wait()
    phoenix_s = time.perf_counter() - start
    sampler.join()
    ratio = cat_s / phoenix_s
    return {"megabytes": megabytes, "cat_s": round(cat_s, 2), "phoenix_s": round(phoenix_s, 2),
            "cat_MBps": round(megabytes / cat_s), "phoenix_MBps": round(megabytes / phoenix_s),
            "rate_ratio_phoenix_to_cat": round(ratio, 2), "phoenix_peak_rss_MB": round(peak["kb"] / 1024, 1),
            "target": "ratio >= 0.5 and peak RSS < 100 MB", "ok": ratio >= 0.5 and peak["kb"] < 100 * 1024}


def bench_idle(workdir: Path, window: float = 20.0) -> dict:
    write(workdir, "quiet.py", "import time\nprint('started', flush=True)\ntime.sleep(600)\n")
    proc = subprocess.Popen([*PHOENIX, "run", "--no-repair", "--set", "metrics_addr=127.0.0.1:0", "--",
                             sys.executable, "quiet.py"], cwd=workdir, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"started\n"
        time.sleep(2.0)  # let start-up settle
        before, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(window)
        used, elapsed = cpu_seconds(proc.pid) - before, time.monotonic() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    percent = 100 * used / elapsed
    return {"window_s": round(elapsed, 1), "cpu_s": round(used, 3), "percent_of_one_core": round(percent, 3),
            "ratio_to_1_percent_budget": round(percent / 1.0, 3), "target": "< 1% of one core",
            "ok": percent < 1.0}


BENCHES = {"decision": bench_decision, "hang": bench_hang, "throughput": bench_throughput, "idle": bench_idle}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    ok = True
    for name in names:
        workdir = Path(tempfile.mkdtemp(prefix=f"phoenix-bench-{name}-"))
        try:
            result = BENCHES[name](workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        ok &= bool(result.get("ok"))
        print(json.dumps({name: result}), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
