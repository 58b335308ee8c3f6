"""`phoenix watch --slurm-job` against a real two-node Slurm cluster and a real torch.distributed job.

The LLM is a command stand-in that answers with the fix; everything else is real: munge,
slurmctld, two slurmd, sbatch and srun, gloo over 127.0.0.1, the diagnosis, git, the repair and
Slurm's requeue. Tests wait for events (state changes, job states), never for wall-clock bounds.
"""

from __future__ import annotations

import json
import subprocess
import sys
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
