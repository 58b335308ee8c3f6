"""`phoenix watch --slurm-job` against a real two-node Slurm cluster and a real torch.distributed job.

The LLM is a command stand-in that answers with the fix; everything else is real: munge,
slurmctld, two slurmd, sbatch and srun, gloo over 127.0.0.1, the diagnosis, git, the repair and
Slurm's requeue. Tests wait for events (state changes, job states), never for wall-clock bounds.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kits.slurmcluster import SlurmCluster
from kits.slurmjobs import job_field, phoenix_env, state, submit, wait_for, workspace
from testkit import PHOENIX, clean_env, run_phoenix

pytest.importorskip("torch", reason="the Slurm jobs train with torch.distributed")
pytestmark = [pytest.mark.slurm, pytest.mark.torch, pytest.mark.slow]

FIX = {"patches": [{"file_path": "train.py", "mode": "search_replace", "search": 'return cfg["scale"] * factor',
                    "replace": 'return cfg["scale"]'}]}


def llm_standin(tmp: Path) -> str:
    standin = tmp / "llm.py"
    standin.write_text(f"import json, sys\nsys.stdin.read()\nprint('```json\\n' + json.dumps({FIX!r}) + '\\n```')\n")
    return f"{sys.executable} {standin}"


def test_rank_1_code_bug_is_named_repaired_in_the_shared_workspace_and_the_job_requeued(
        slurm: SlurmCluster, tmp_path: Path) -> None:
    ws = workspace(tmp_path, "ws")
    job = submit(slurm, ws, "bugjob", mode="bug")
    result = run_phoenix(["watch", "--slurm-job", "bugjob", "-w", str(ws), "--set", "primary=command",
                          "--set", f"llm_cmd={llm_standin(tmp_path)}"], cwd=ws, env=phoenix_env(slurm), timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    s = state(ws)
    first = s["incidents"][0]
    assert (first["category"], first["action"]) == ("code_bug", "repair"), first
    assert "NameError" in first["summary"] and "rank 1 on node n2" in first["summary"], first["summary"]
    assert first["repair"]["outcome"] == "promoted"
    assert '* factor' not in (ws / "train.py").read_text()
    assert job_field(slurm, job, "JobState") == "COMPLETED"
    assert int(job_field(slurm, job, "Restarts")) >= 1
    assert "training finished" in (ws / f"slurm-{job}.out").read_text()
    assert s["job"]["state"] == "succeeded"


@contextmanager
def watching(slurm: SlurmCluster, ws: Path, job: str, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """`phoenix watch --slurm-job` in the background; its output in ws/../phoenix.{out,err}."""
    out, err = (ws.parent / "phoenix.out").open("wb"), (ws.parent / "phoenix.err").open("wb")
    proc = subprocess.Popen([*PHOENIX, "watch", "--slurm-job", job, "-w", str(ws), "--no-repair", *extra], cwd=ws,
                            env=clean_env(phoenix_env(slurm)), stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        out.close()
        err.close()


def finished(proc: subprocess.Popen[bytes], ws: Path) -> int:
    """Phoenix's exit code, once the job it watches is done."""
    wait_for(lambda: proc.poll() is not None, "phoenix watch to end", timeout=300)
    if proc.returncode != 0:
        raise AssertionError((ws.parent / "phoenix.err").read_text()[-3000:])
    return proc.returncode


def running_on(slurm: SlurmCluster, job: str) -> str:
    wait_for(lambda: job_field(slurm, job, "JobState") == "RUNNING", f"job {job} to run")
    return job_field(slurm, job, "NodeList")


def incidents(ws: Path) -> list[dict]:
    return state(ws).get("incidents", [])


def test_a_hang_in_a_collective_is_dumped_stopped_and_requeued(slurm: SlurmCluster, tmp_path: Path) -> None:
    ws = workspace(tmp_path, "ws")
    job = submit(slurm, ws, "hangjob", mode="hang", steps=6)
    with watching(slurm, ws, job, "--heartbeat-min", "0.1", "--set", "dump_signal=SIGUSR1") as proc:
        assert finished(proc, ws) == 0
    first = incidents(ws)[0]
    assert (first["kind"], first["category"], first["action"]) == ("hang", "hang", "restart"), first
    details = (ws / first["details"]).read_text()
    assert "stack dump" in details and "train.py" in details.split("stack dump", 1)[1]  # the ranks' stacks
    assert job_field(slurm, job, "JobState") == "COMPLETED"
    assert "training finished" in (ws / f"slurm-{job}.out").read_text()


def test_a_node_crash_requeues_on_the_other_node_without_spending_a_budget(slurm: SlurmCluster,
                                                                         tmp_path: Path) -> None:
    ws = workspace(tmp_path, "ws")
    job = submit(slurm, ws, "crashjob", nodes=1, steps=60, step_seconds=0.5)
    with watching(slurm, ws, job) as proc:
        node = running_on(slurm, job)
        wait_for(lambda: state(ws).get("job", {}).get("state") == "running", "phoenix to watch the run")
        slurm.kill_node(node)
        wait_for(lambda: len(incidents(ws)) >= 1, "the node failure to be recorded")
        assert finished(proc, ws) == 0
    first = incidents(ws)[0]
    assert (first["kind"], first["category"], first["action"]) == ("engine", "node_fail", "restart"), first
    assert node in first["summary"]
    assert state(ws)["budgets"]["total_restarts"] == 0
    other = job_field(slurm, job, "NodeList")
    assert job_field(slurm, job, "JobState") == "COMPLETED" and other != node
    assert node in job_field(slurm, job, "ExcNodeList")


def test_a_hardware_failure_excludes_and_drains_the_node(slurm: SlurmCluster, tmp_path: Path) -> None:
    ws = workspace(tmp_path, "ws")
    job = submit(slurm, ws, "xidjob", nodes=1, mode="hardware")
    with watching(slurm, ws, job) as proc:
        assert finished(proc, ws) == 0
    first = incidents(ws)[0]
    assert (first["kind"], first["category"], first["action"]) == ("engine", "hardware", "restart"), first
    bad = first["summary"].split(":", 1)[1].split(";")[0]
    assert "Xid" in first["summary"] or "xid" in first["summary"].lower()
    assert bad in job_field(slurm, job, "ExcNodeList")
    assert job_field(slurm, job, "NodeList") != bad and job_field(slurm, job, "JobState") == "COMPLETED"
    node = slurm.run("scontrol", "-o", "show", "node", bad).stdout
    assert "DRAIN" in node and "phoenix" in node  # drained, with the reason
    assert state(ws)["budgets"]["total_restarts"] == 0


def test_preemption_is_not_a_failure(slurm: SlurmCluster, tmp_path: Path) -> None:
    ws = workspace(tmp_path, "ws")
    job = submit(slurm, ws, "lowjob", steps=30, step_seconds=0.3, extra=("--partition=low", "--exclusive"))
    with watching(slurm, ws, job) as proc:
        running_on(slurm, job)
        wait_for(lambda: state(ws).get("job", {}).get("state") == "running", "phoenix to watch the run")
        slurm.run("sbatch", "--partition=high", "--exclusive", "--nodes=2", "--output=/dev/null", "--wrap", "sleep 2")
        wait_for(lambda: len(incidents(ws)) >= 1, "the preemption to be recorded")
        assert finished(proc, ws) == 0
    first = incidents(ws)[0]
    assert (first["kind"], first["category"], first["action"]) == ("engine", "preempted", "restart"), first
    assert state(ws)["budgets"]["total_restarts"] == 0
    assert job_field(slurm, job, "JobState") == "COMPLETED"


def test_a_second_watcher_on_the_same_job_is_refused(slurm: SlurmCluster, tmp_path: Path) -> None:
    ws = workspace(tmp_path, "ws")
    job = submit(slurm, ws, "lockjob", steps=200, step_seconds=0.5)
    with watching(slurm, ws, job) as proc:
        running_on(slurm, job)
        wait_for(lambda: state(ws).get("job", {}).get("state") == "running", "the first watcher to watch the run")
        second = run_phoenix(["watch", "--slurm-job", job, "-w", str(ws)], cwd=ws, env=phoenix_env(slurm))
        assert second.returncode == 3, second.stderr.decode()
        assert b"refusing to start a second supervisor" in second.stderr
        assert proc.poll() is None
    # The first watcher's shutdown left the job running: the job is the user's, not Phoenix's child.
    assert job_field(slurm, job, "JobState") == "RUNNING", slurm.run("scontrol", "-o", "show", "job", job).stdout


def test_a_job_cancelled_outside_phoenix_is_not_requeued(slurm: SlurmCluster, tmp_path: Path) -> None:
    ws = workspace(tmp_path, "ws")
    job = submit(slurm, ws, "canceljob", steps=200, step_seconds=0.5)
    with watching(slurm, ws, job) as proc:
        running_on(slurm, job)
        wait_for(lambda: state(ws).get("job", {}).get("state") == "running", "phoenix to watch the run")
        slurm.run("scancel", job)
        wait_for(lambda: proc.poll() is not None, "phoenix watch to end")
    assert proc.returncode == 5
    assert "cancelled outside Phoenix" in (tmp_path / "phoenix.err").read_text()
    assert job_field(slurm, job, "JobState") == "CANCELLED" and job_field(slurm, job, "Restarts") == "0"


def test_a_time_limit_after_a_checkpoint_signal_is_not_a_failure(slurm: SlurmCluster, tmp_path: Path) -> None:
    ws = workspace(tmp_path, "ws")
    script = ws / "limit.sh"
    # Slurm's shortest time limit is a minute: USR1 comes 50 s before it, then the job runs out of time.
    script.write_text(f"""#!/bin/bash
#SBATCH --job-name=limitjob --nodes=1 --time=1 --signal=B:USR1@50 --requeue --output={ws}/slurm-%j.out
trap 'echo "checkpoint saved"' USR1
if [ "${{SLURM_RESTART_COUNT:-0}}" = 0 ]; then
    while true; do echo "step"; sleep 1; done
fi
echo "resumed from the checkpoint; training finished"
""")
    job = slurm.run("sbatch", "--parsable", str(script)).stdout.strip()
    with watching(slurm, ws, job) as proc:
        assert finished(proc, ws) == 0
    first = incidents(ws)[0]
    assert (first["kind"], first["category"], first["action"]) == ("engine", "time_limit", "restart"), first
    assert state(ws)["budgets"]["total_restarts"] == 0
    assert job_field(slurm, job, "JobState") == "COMPLETED"
    output = (ws / f"slurm-{job}.out").read_text()
    assert "resumed from the checkpoint" in output
