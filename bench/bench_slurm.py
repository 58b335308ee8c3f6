"""Benchmark of `phoenix watch --slurm-job` (issue #15) against a real two-node Slurm cluster, with a
baseline measured in the same run.

    python bench/bench_slurm.py [ROUNDS]     # default 5 rounds of each

- recovery: from a job's failure to its requeued run starting, under Phoenix (it reads the job every
            ``slurm_poll_seconds``, diagnoses, decides, then ``requeuehold``, ``release`` and
            ``StartTime=now``), next to a bare client that polls the job at the same pace and issues a
            plain ``scontrol requeue`` plus ``StartTime=now`` (no diagnosis, no decision, no state).
            Both instants come from the job itself (its own clock: the last line before ``exit 1``
            and the first line of the next run), so Slurm's one-second timestamps play no part.
            Also shown once: a plain ``scontrol requeue`` without ``StartTime=now`` (the job waits
            out its credential's lifetime: ``cred_expire=10`` here, 125 s by default).

It starts its own cluster (tests/kits/slurmcluster.py) under a temporary directory: it needs
root, ``slurm-wlm`` and ``munge``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]

from kits.slurmcluster import SlurmCluster, missing_binaries  # noqa: E402

PHOENIX = [sys.executable, "-m", "phoenix_sidecar"]
POLL = 0.5
JOB = """#!/bin/bash
#SBATCH --nodes=1 --ntasks=1 --requeue --output={dir}/job-%j.out
times={dir}/times-$SLURM_JOB_ID
echo "start $(date +%s.%N) ${{SLURM_RESTART_COUNT:-0}}" >> $times
if [ "${{SLURM_RESTART_COUNT:-0}}" = 0 ]; then
    while [ ! -e {dir}/go-$SLURM_JOB_ID ]; do sleep 0.05; done
    echo "fail $(date +%s.%N)" >> $times
    exit 1
fi
"""


def submit(cluster: SlurmCluster, work: Path) -> str:
    script = work / "job.sh"
    script.write_text(JOB.format(dir=work))
    return cluster.run("sbatch", "--parsable", str(script)).stdout.strip()


def state_of(cluster: SlurmCluster, job: str) -> str:
    for word in cluster.run("scontrol", "-o", "show", "job", job).stdout.split():
        if word.startswith("JobState="):
            return word.split("=", 1)[1]
    return ""


def wait(predicate, what: str, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def gap(work: Path, job: str) -> float:
    """Seconds from the failure of run 0 to the start of run 1, by the job's own clock."""
    times = work / f"times-{job}"
    wait(lambda: times.exists() and times.read_text().count("start") >= 2, f"job {job} to run again")
    lines = [ln.split() for ln in times.read_text().splitlines()]
    fail = next(float(x[1]) for x in lines if x[0] == "fail")
    again = next(float(x[1]) for x in lines if x[0] == "start" and x[2] != "0")
    return again - fail


def phoenix_round(cluster: SlurmCluster, work: Path) -> float:
    job = submit(cluster, work)
    wait(lambda: state_of(cluster, job) == "RUNNING", "the job to run")
    ws = work / f"ws-{job}"
    ws.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "GEMINI_", "OPENAI_"))}
    env.update(cluster.env, PYTHONPATH=os.pathsep.join([str(REPO / "sidecar"), str(REPO / "watchdog")]))
    proc = subprocess.Popen([*PHOENIX, "watch", "--slurm-job", job, "-w", str(ws), "--no-repair", "--no-echo",
                             "--set", "metrics_addr=", "--set", "min_free_disk_gb=0", "--set", f"slurm_poll_seconds={POLL}",
                             "--set", "backoff_initial_seconds=0", "--set", "backoff_max_seconds=0"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        state = ws / ".phoenix_cli" / "state.json"
        wait(lambda: state.exists() and json.loads(state.read_text())["job"]["state"] == "running", "phoenix to watch")
        (work / f"go-{job}").touch()
        proc.wait(120)
        return gap(work, job)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)


def baseline_round(cluster: SlurmCluster, work: Path, *, start_now: bool = True) -> float:
    job = submit(cluster, work)
    wait(lambda: state_of(cluster, job) == "RUNNING", "the job to run")
    (work / f"go-{job}").touch()
    while state_of(cluster, job) != "FAILED":  # a bare watcher, at Phoenix's pace
        time.sleep(POLL)
    cluster.run("scontrol", "requeue", job)
    if start_now:
        cluster.run("scontrol", "update", f"jobid={job}", "StartTime=now")
    return gap(work, job)


def main(argv: list[str]) -> int:
    rounds = int(argv[1]) if len(argv) > 1 else 5
    if missing_binaries():
        print(f"needs Slurm and munge: missing {', '.join(missing_binaries())}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="phoenix-bench-slurm-"))
    work = root / "work"
    work.mkdir()
    cluster = SlurmCluster(root / "cluster")
    try:
        cluster.start()
        phoenix, plain = [], []
        for _ in range(rounds):  # interleaved: both see the same machine load
            phoenix.append(phoenix_round(cluster, work))
            plain.append(baseline_round(cluster, work))
        slow = baseline_round(cluster, work, start_now=False)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)

    def show(name: str, xs: list[float]) -> None:
        print(f"  {name:<46} median {statistics.median(xs):6.2f} s   min {min(xs):6.2f}   max {max(xs):6.2f}")

    print(f"failure -> requeued run started ({rounds} rounds, poll {POLL} s):")
    show("phoenix watch --slurm-job", phoenix)
    show("bare poller: scontrol requeue + StartTime=now", plain)
    print(f"  {'plain scontrol requeue alone (one round)':<46} {slow:6.2f} s")
    print(f"  ratio phoenix / bare: {statistics.median(phoenix) / statistics.median(plain):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
