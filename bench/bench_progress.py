"""Benchmark of progress-aware hang detection (issue #13): a job that steps, then hangs while a thread keeps printing.

    python bench/bench_progress.py

The job prints ``step N loss X`` every ``interval`` seconds, then its main thread blocks while a
logging thread goes on printing every 0.1 s (a loop stuck in a collective while NCCL warnings
flow). The figure is the time from its last step to the SIGTERM Phoenix sends, as a multiple of
the job's measured step interval; the target is at most ``progress_safety_factor + 1``.
The baseline, measured in the same run: the same job with ``progress: false`` is not stopped at
all within ten times that target (any output is a heartbeat; the default heartbeat is 15 minutes).
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
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHOENIX = [sys.executable, "-m", "phoenix_sidecar"]
QUIET = ["--set", "metrics_addr=", "--no-repair", "--set", "stack_dump=off", "--set", "backoff_initial_seconds=0.01"]
SAFETY = 5.0


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "GEMINI_", "OPENAI_"))}
    e["PYTHONPATH"] = os.pathsep.join([str(REPO / "sidecar"), str(REPO / "watchdog")])
    return e


JOB = """
import signal, sys, threading, time
steps = []
def on_term(*_):
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    with open({log!r}, "a") as fh:
        fh.write(f"{{steps[-1]:.6f}} {{time.time():.6f}} {{sorted(gaps)[len(gaps) // 2]:.6f}}\\n")
    sys.exit(1)
signal.signal(signal.SIGTERM, on_term)
for n in range(1, {steps} + 1):
    time.sleep({interval})
    steps.append(time.time())
    print(f"step {{n}} loss={{1.0 / n:.4f}}", flush=True)
def chatter():
    while True:
        print("[W ProcessGroupNCCL] waiting for the collective", file=sys.stderr, flush=True)
        time.sleep(0.1)
threading.Thread(target=chatter, daemon=True).start()
time.sleep(3600)
"""


def bench(workdir: Path, interval: float = 0.5, steps: int = 20, runs: int = 3) -> dict:
    log = workdir / "kills"
    (workdir / "job.py").write_text(textwrap.dedent(JOB.format(log=str(log), steps=steps, interval=interval)))
    subprocess.run([*PHOENIX, "run", *QUIET, "--set", f"progress_safety_factor={SAFETY}", "--set",
                    "progress_timeout_min_seconds=1", "--set", "progress_warmup_steps=3", "--set",
                    f"max_retries={runs - 1}", "--", sys.executable, "job.py"],
                   cwd=workdir, env=env(), capture_output=True, check=False, timeout=600)
    rows = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    ratios = [(term - last) / gap for last, term, gap in rows]
    worst = max(ratios)

    # Baseline: progress off, the same job is never stopped (watched for ten times the target).
    base = workdir / "baseline"
    base.mkdir()
    (base / "job.py").write_text(textwrap.dedent(JOB.format(log=str(base / "kills"), steps=steps, interval=interval)))
    watch = steps * interval + 10 * (SAFETY + 1) * interval
    proc = subprocess.Popen([*PHOENIX, "run", *QUIET, "--set", "progress=false", "--", sys.executable, "job.py"],
                            cwd=base, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(watch)
    stopped_without_progress = (base / "kills").exists()
    proc.terminate()
    proc.wait(timeout=60)
    return {"step_interval_s": interval, "safety_factor": SAFETY,
            "detection_in_step_intervals": {"median": round(statistics.median(ratios), 2), "max": round(worst, 2),
                                            "samples": len(ratios)},
            "baseline_progress_off": f"{'stopped' if stopped_without_progress else 'not stopped'} within {watch:.0f} s",
            "target": f"<= safety factor + 1 = {SAFETY + 1} intervals",
            "ok": worst <= SAFETY + 1 and not stopped_without_progress}


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="phoenix-bench-progress-"))
    try:
        result = bench(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"progress_hang": result}), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
