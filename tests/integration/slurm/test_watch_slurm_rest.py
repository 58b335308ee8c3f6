"""`phoenix watch --slurm-job` reading Slurm through a real slurmrestd (as nobody, on a unix socket).

The same real cluster and torch.distributed jobs as test_watch_slurm.py; the job's state and its
nodes are read through the REST API (the daemon's log shows the requests), the actions go through
the commands. The failures to reach the daemon are real too: a socket nobody listens on, and a
daemon with ``rest_auth/jwt`` that refuses the token (this Debian's controller has no ``auth/jwt``).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kits.slurmcluster import REST_API, SlurmCluster, free_ports
from kits.slurmjobs import job_field, phoenix_env, state, submit, wait_for, workspace
from testkit import PHOENIX, clean_env, run_phoenix

pytest.importorskip("torch", reason="the Slurm jobs train with torch.distributed")
pytestmark = [pytest.mark.slurm, pytest.mark.torch, pytest.mark.slow]

FIX = {"patches": [{"file_path": "train.py", "mode": "search_replace", "search": 'return cfg["scale"] * factor',
                    "replace": 'return cfg["scale"]'}]}


def rest_env(slurm: SlurmCluster, url: str) -> dict[str, str]:
    return {**phoenix_env(slurm), "PHOENIX_SLURM_REST_URL": url}


def test_rank_1_code_bug_is_repaired_and_requeued_reading_slurm_through_rest(
        slurm: SlurmCluster, rest_url: str, tmp_path: Path) -> None:
    ws = workspace(tmp_path, "ws")
    standin = tmp_path / "llm.py"
    standin.write_text(f"import json, sys\nsys.stdin.read()\nprint('```json\\n' + json.dumps({FIX!r}) + '\\n```')\n")
    job = submit(slurm, ws, "restbug", mode="bug")
    result = run_phoenix(["watch", "--slurm-job", "restbug", "-w", str(ws), "--set", "primary=command",
                          "--set", f"llm_cmd={sys.executable} {standin}"], cwd=ws, env=rest_env(slurm, rest_url),
                         timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    # The code bug's incident (a gloo port taken by another test on this machine can come first).
    first = next(i for i in state(ws)["incidents"] if i["category"] == "code_bug")
    assert first["action"] == "repair", first
    assert "NameError" in first["summary"] and "rank 1 on node n2" in first["summary"], first["summary"]
    assert first["repair"]["outcome"] == "promoted"
    assert job_field(slurm, job, "JobState") == "COMPLETED" and int(job_field(slurm, job, "Restarts")) >= 1
    assert "training finished" in (ws / f"slurm-{job}.out").read_text()
    log = slurm.rest_log()
    assert f"GET /slurm/{REST_API}/jobs" in log and f"GET /slurm/{REST_API}/job/{job}" in log  # found and read by REST
    status = run_phoenix(["status", "-w", str(ws)], cwd=ws, env=rest_env(slurm, rest_url))
    line = re.search(rf"slurm: +job {job} COMPLETED on n1,n2; (\d+) requeues? by Phoenix, (\d+) restart\(s\) in all",
                     status.stdout.decode())
    assert line, status.stdout
    # Every requeue here is Phoenix's (the repair's, and a launch Slurm may fail right after one).
    assert int(line[1]) == int(line[2]) == int(job_field(slurm, job, "Restarts")) >= 1


def test_doctor_checks_slurm_through_rest(slurm: SlurmCluster, rest_url: str, tmp_path: Path) -> None:
    ws = workspace(tmp_path, "ws")
    job = submit(slurm, ws, "doctorjob", steps=200, step_seconds=0.5)
    result = run_phoenix(["doctor", "--skip", "gpu", "--skip", "llm", "--json", "-w", str(ws)], cwd=ws,
                         env={**rest_env(slurm, rest_url), "PHOENIX_SLURM_JOB": "doctorjob"})
    checks = {c["check"]: c for c in json.loads(result.stdout)["checks"]}
    for name in ("slurm commands", "slurm conf", "slurm controller", "slurm rest", "slurm job", "slurm drain"):
        assert checks[name]["status"] == "ok", checks[name]
    assert f"job {job} (doctorjob)" in checks["slurm job"]["detail"]
    assert checks["slurm lock"]["status"] in ("ok", "warn")  # the test's workspace is on a local file system
    down = run_phoenix(["doctor", "--skip", "gpu", "--skip", "llm", "--json", "-w", str(ws)], cwd=ws,
                       env={**rest_env(slurm, f"unix:{tmp_path}/none.sock"), "PHOENIX_SLURM_JOB": "doctorjob"})
    assert down.returncode == 1
    rest = {c["check"]: c for c in json.loads(down.stdout)["checks"]}["slurm rest"]
    assert rest["status"] == "fail" and f"unix:{tmp_path}/none.sock does not answer" in rest["detail"]


def test_preemption_read_through_rest_is_not_a_failure(slurm: SlurmCluster, rest_url: str, tmp_path: Path) -> None:
    ws = workspace(tmp_path, "ws")
    job = submit(slurm, ws, "restlow", steps=30, step_seconds=0.3, extra=("--partition=low", "--exclusive"))
    err = (tmp_path / "phoenix.err").open("wb")
    proc = subprocess.Popen([*PHOENIX, "watch", "--slurm-job", job, "-w", str(ws), "--no-repair"], cwd=ws,
                            env=clean_env(rest_env(slurm, rest_url)), stdout=subprocess.DEVNULL, stderr=err,
                            stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: job_field(slurm, job, "JobState") == "RUNNING", f"job {job} to run")
        wait_for(lambda: state(ws).get("job", {}).get("state") == "running", "phoenix to watch the run")
        slurm.run("sbatch", "--partition=high", "--exclusive", "--nodes=2", "--output=/dev/null", "--wrap", "sleep 2")
        wait_for(lambda: proc.poll() is not None, "phoenix watch to end", timeout=300)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        err.close()
    assert proc.returncode == 0, (tmp_path / "phoenix.err").read_text()[-3000:]
    first = state(ws)["incidents"][0]
    assert (first["kind"], first["category"], first["action"]) == ("engine", "preempted", "restart"), first
    assert state(ws)["budgets"]["total_restarts"] == 0
    assert job_field(slurm, job, "JobState") == "COMPLETED"
    assert f"GET /slurm/{REST_API}/job/{job}" in slurm.rest_log()


def test_a_daemon_that_does_not_answer_is_named(slurm: SlurmCluster, tmp_path: Path) -> None:
    ws = workspace(tmp_path, "ws")
    url = f"unix:{tmp_path}/nobody-listens.sock"
    result = run_phoenix(["watch", "--slurm-job", "123", "-w", str(ws)], cwd=ws, env=rest_env(slurm, url))
    assert result.returncode == 5, result.stderr.decode()
    assert f"slurmrestd at {url} does not answer" in result.stderr.decode()


def test_a_refused_token_is_named_and_never_shown(slurm: SlurmCluster, rest_url: str, tmp_path: Path) -> None:
    url = slurm.start_rest(f"127.0.0.1:{free_ports(1)[0]}", auth="rest_auth/jwt")
    try:
        ws = workspace(tmp_path, "ws")
        token = tmp_path / "jwt"
        token.write_text("SLURM_JWT=eyJhbGciOiJIUzI1NiJ9.not-a-valid-token.x\n")
        result = run_phoenix(["watch", "--slurm-job", "123", "-w", str(ws), "--set",
                              f"slurm_rest_token_file={token}"], cwd=ws, env=rest_env(slurm, url))
    finally:
        slurm.stop_rest(url)
    err = result.stderr.decode()
    assert result.returncode == 5, err
    assert f"slurmrestd at {url} refused Phoenix's credentials (401" in err
    assert "not-a-valid-token" not in err + result.stdout.decode()
    assert "not-a-valid-token" not in json.dumps(state(ws))
