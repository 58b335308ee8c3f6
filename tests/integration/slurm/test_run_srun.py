"""`phoenix run -- srun ...` inside a real two-node allocation: each run is a job step.

The batch job (``sbatch -N2``) runs Phoenix from this checkout's sources on its batch host, and
Phoenix runs ``srun`` steps: everything is real (munge, slurmctld, two slurmd, srun, the
diagnosis). The program fails the way a test plants, once (a marker file in the workspace tells
the first run), so the step after it completes. Tests wait for events, never for time bounds.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from kits.repairkit import make_repo
from kits.slurmcluster import SlurmCluster
from kits.slurmjobs import job_field, phoenix_env, state, wait_for
from testkit import PHOENIX, clean_env

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PROG = '''\
import os, sys
rank, node = int(os.environ.get("SLURM_PROCID", "0")), os.environ.get("SLURMD_NODENAME")
first = not os.path.exists(f"first-{rank}.done")
print(f"rank {rank} on {node} in job {os.environ.get('SLURM_JOB_ID')} step {os.environ.get('SLURM_STEP_ID')}",
      flush=True)
if first:
    open(f"first-{rank}.done", "w").close()
    mode = sys.argv[1]
    if mode == "hardware":
        print("NVRM: Xid (PCI:0000:3b:00): 79, pid=4242, GPU has fallen off the bus.", flush=True)
        sys.exit(1)
    if mode == "bug" and rank == 1:
        factor = scale * 2
    if mode == "gloo" and rank == 0:
        raise RuntimeError("[../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting "
                           "30000ms for recv operation to complete")
print(f"rank {rank} finished", flush=True)
'''


def run_in_allocation(slurm: SlurmCluster, tmp: Path, srun: str, mode: str) -> tuple[str, Path, str]:
    """Submit ``sbatch -N2`` whose script is ``phoenix run -- <srun> python prog.py <mode>``; wait for its end.
    Returns the job id, the workspace and the job's output."""
    ws = make_repo(tmp / "ws", {"prog.py": PROG, ".gitignore": ".phoenix_cli/\n*.done\nslurm-*.out\njob.sh\n"})
    script = ws / "job.sh"
    command = " ".join([*PHOENIX, "run", "-w", str(ws), "--no-repair", "--", srun, sys.executable, "-u",
                        "prog.py", mode])
    script.write_text(f"#!/bin/bash\ncd {ws}\n{command}\necho \"phoenix exited $?\"\n")
    env = clean_env(phoenix_env(slurm))
    out = subprocess.run(["sbatch", "--parsable", "-N2", "-n2", f"--output={ws}/slurm-%j.out", str(script)], env=env,
                         capture_output=True, text=True, check=True)
    job = out.stdout.strip().split(";")[0]
    wait_for(lambda: job_field(slurm, job, "JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"),
             f"job {job} to end", timeout=300)
    return job, ws, (ws / f"slurm-{job}.out").read_text()


def test_a_hardware_failure_excludes_its_node_from_the_next_step(slurm: SlurmCluster, tmp_path: Path) -> None:
    job, ws, output = run_in_allocation(slurm, tmp_path, "srun -N1 -n1", "hardware")
    assert "phoenix exited 0" in output, output[-3000:]
    first_node = re.search(r"rank 0 on (\w+)", output).group(1)  # type: ignore[union-attr]
    other = "n2" if first_node == "n1" else "n1"
    assert f"rank 0 on {other} in job {job} step 1" in output and "rank 0 finished" in output
    assert job_field(slurm, job, "JobState") == "COMPLETED" and job_field(slurm, job, "Restarts") == "0"
    s = state(ws)
    incident = s["incidents"][0]
    assert (incident["kind"], incident["category"], incident["action"]) == ("engine", "hardware", "restart")
    assert incident["summary"].startswith(f"hardware:{first_node}")
    assert s["budgets"]["total_restarts"] == 0
    assert f"excluding {first_node}" in s["job"]["target"]
    assert f"excluding {first_node} from the next step" in (ws / incident["details"]).read_text()


def test_a_rank_1_code_bug_in_a_two_task_step_names_rank_1_and_its_node(slurm: SlurmCluster,
                                                                        tmp_path: Path) -> None:
    job, ws, output = run_in_allocation(slurm, tmp_path, "srun -N2 -n2 --label", "bug")
    assert "1: NameError" in output, output[-3000:]
    incident = state(ws)["incidents"][0]
    assert incident["category"] == "code_bug", incident
    assert "NameError" in incident["summary"] and "(rank 1 on node n2)" in incident["summary"], incident["summary"]
    assert "phoenix exited 4" in output  # --no-repair: a code bug gives up, with the rank and node named


def test_a_transient_gloo_timeout_restarts_the_step_in_the_same_allocation(slurm: SlurmCluster,
                                                                           tmp_path: Path) -> None:
    job, ws, output = run_in_allocation(slurm, tmp_path, "srun -N2 -n2 --label --kill-on-bad-exit=1", "gloo")
    assert "phoenix exited 0" in output, output[-3000:]
    assert f"0: rank 0 on n1 in job {job} step 0" in output and f"0: rank 0 on n1 in job {job} step 1" in output
    assert "0: rank 0 finished" in output and "1: rank 1 finished" in output
    assert job_field(slurm, job, "JobState") == "COMPLETED" and job_field(slurm, job, "Restarts") == "0"
    s = state(ws)
    incident = s["incidents"][0]
    assert (incident["kind"], incident["category"], incident["action"]) == ("crash", "nccl_timeout", "restart")
    assert "(rank 0 on node n1)" in incident["summary"], incident["summary"]
    assert s["budgets"]["total_restarts"] == 1 and s["job"]["state"] == "succeeded"
