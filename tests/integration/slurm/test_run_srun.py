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
from collections.abc import Callable
from pathlib import Path

import pytest

from kits.repairkit import make_repo
from kits.slurmcluster import SlurmCluster
from kits.slurmjobs import job_field, phoenix_env, state, wait_for
from testkit import PHOENIX, clean_env

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PROG = '''\
import faulthandler, os, signal, sys, time
faulthandler.register(signal.SIGUSR1, all_threads=True)
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
    if mode == "hang" and rank == 0:
        time.sleep(3600)
    if mode == "nodefail":
        open(f"{node}.running", "w").close()
        time.sleep(3600)
    if mode == "gloo" and rank == 0:
        raise RuntimeError("[../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting "
                           "30000ms for recv operation to complete")
print(f"rank {rank} finished", flush=True)
'''


def run_in_allocation(slurm: SlurmCluster, tmp: Path, srun: str, mode: str, *phoenix: str,
                      salloc: tuple[str, ...] | None = None, during: Callable[[Path], None] | None = None,
                      ) -> tuple[str, Path, str]:
    """``sbatch -N2`` a script that runs ``phoenix run -- <srun> python prog.py <mode>`` (or, with
    ``salloc``, run it under ``salloc -N2 <salloc...>`` here), calling ``during`` with the workspace
    while it runs; wait for its end. Returns the job id, the workspace and the job's output."""
    ws = make_repo(tmp / "ws", {"prog.py": PROG, ".gitignore": ".phoenix_cli/\n*.done\n*.running\nslurm-*.out\njob.sh\n"})
    script = ws / "job.sh"
    command = " ".join([*PHOENIX, "run", "-w", str(ws), "--no-repair", *phoenix, "--", srun, sys.executable, "-u",
                        "prog.py", mode])
    script.write_text(f"#!/bin/bash\ncd {ws}\necho \"in job $SLURM_JOB_ID\"\n{command}\necho \"phoenix exited $?\"\n")
    env = clean_env(phoenix_env(slurm))
    if salloc is not None:  # Phoenix runs here, outside the nodes: a node's crash does not take it along
        out_path = ws / "salloc.out"
        with out_path.open("wb") as out:
            proc = subprocess.Popen(["salloc", "-N2", "-n2", *salloc, "bash", str(script)], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ws)
            try:
                if during is not None:
                    during(ws)
                proc.wait(timeout=300)
            finally:
                if proc.poll() is None:
                    proc.kill()
        output = out_path.read_text()
        return re.search(r"in job (\d+)", output).group(1), ws, output  # type: ignore[union-attr]
    out = subprocess.run(["sbatch", "--parsable", "-N2", "-n2", f"--output={ws}/slurm-%j.out", str(script)],
                         env=env, capture_output=True, text=True, check=True)
    job = out.stdout.strip().split(";")[0]
    if during is not None:
        during(ws)
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
    engine = s["job"]["engine"]  # what `phoenix status` and the phoenix_slurm_* metrics show
    assert (engine["job_id"], engine["excluded"], sorted(engine["nodes"])) == (job, [first_node], ["n1", "n2"])
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


def test_a_hung_step_is_dumped_through_srun_stopped_and_run_again(slurm: SlurmCluster, tmp_path: Path) -> None:
    job, ws, output = run_in_allocation(slurm, tmp_path, "srun -N2 -n2 --label", "hang", "--heartbeat-min", "0.05")
    assert "phoenix exited 0" in output, output[-3000:]
    incident = state(ws)["incidents"][0]
    assert (incident["kind"], incident["action"]) == ("hang", "restart"), incident
    stack = (ws / incident["details"]).read_text().split("stack dump", 1)[1]
    assert "prog.py" in stack, stack  # srun passed SIGUSR1 on to the ranks, which printed their stacks
    assert "0: rank 0 finished" in output and job_field(slurm, job, "JobState") == "COMPLETED"


def test_a_node_failure_restarts_the_step_without_that_node_and_without_a_budget(slurm: SlurmCluster,
                                                                                 tmp_path: Path) -> None:
    def crash_n1(ws: Path) -> None:
        wait_for(lambda: (ws / "n1.running").exists(), "the step to run on n1")
        slurm.kill_node("n1")

    # --no-kill: the allocation outlives a failed node, as a job with a spare node should.
    job, ws, output = run_in_allocation(slurm, tmp_path, "srun -N1 -n1 --label", "nodefail", salloc=("--no-kill",),
                                        during=crash_n1)
    assert "srun: error: Node failure on n1" in output and "phoenix exited 0" in output, output[-3000:]
    s = state(ws)
    incident = s["incidents"][0]
    assert (incident["kind"], incident["category"], incident["action"]) == ("engine", "node_fail", "restart")
    assert incident["summary"].startswith("node_fail:n1") and s["budgets"]["total_restarts"] == 0
    assert f"0: rank 0 on n2 in job {job} step 1" in output and "0: rank 0 finished" in output
    assert "excluding n1" in s["job"]["target"]
