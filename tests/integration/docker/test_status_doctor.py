"""`phoenix status` and `phoenix doctor` on real deployments: a watched container, a broken socket,
a container with its own restart policy, a held lock."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

import dockerkit
from phoenix_sidecar.commands import doctor
from phoenix_sidecar.config.schema import Settings
from testkit import PHOENIX, clean_env, run_phoenix


HANG_GUARD = 180  # seconds: generous bounds that only keep a broken test from hanging the suite


def phoenix(args: list[str], ws: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return run_phoenix(args, cwd=ws, env=env, timeout=60)


def test_status_of_a_workspace_never_supervised(tmp_path: Path) -> None:
    result = phoenix(["status", "-w", str(tmp_path)], tmp_path)
    assert result.returncode == 0
    assert b"not running" in result.stdout and b"no state yet" in result.stdout
    check = phoenix(["status", "-w", str(tmp_path), "--check"], tmp_path)
    assert check.returncode == 1 and b"no Phoenix holds this workspace" in check.stdout


def test_status_while_watching_and_after_giving_up(engine, containers, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "train.py").write_text(textwrap.dedent("""
        import os, sys, time
        print("training", flush=True)
        time.sleep(0 if os.path.exists("stop") else 600)
        sys.exit(2)
    """))
    c = containers(["python3", "-u", "train.py"], binds={str(ws): str(ws)}, working_dir=str(ws))
    args = ["--container", c["name"], "--max-retries", "0", "--no-repair", "--set", "docker_timeout_seconds=20",
            "--set", "metrics_addr=127.0.0.1:0"]  # so --check asks /healthz too
    sidecar = subprocess.Popen([*PHOENIX, "watch", "-w", str(ws), *args], env=clean_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        dockerkit.wait_for(lambda: (ws / ".phoenix_cli" / "state.json").exists()
                           and json.loads((ws / ".phoenix_cli" / "state.json").read_text())["job"]["state"] == "running",
                           HANG_GUARD, "the sidecar to supervise")
        result = phoenix(["status", "-w", str(ws), "--set", f"container={c['name']}"], ws)
        text = result.stdout.decode()
        assert result.returncode == 0, result.stderr
        assert f"watch running (pid {sidecar.pid}" in text
        assert f"container {c['name']}: running, run 1" in text
        assert f"container:  {c['name']} ({c['Id'][:12]}): running; restart policy no" in text
        report = json.loads(phoenix(["status", "-w", str(ws), "--json", "--set", f"container={c['name']}"], ws).stdout)
        assert report["lock"]["held"] is True and report["lock"]["holder"]["pid"] == sidecar.pid
        assert report["job"]["state"] == "running" and report["container"]["status"] == "running"
        assert report["supervisor"]["metrics"].startswith("127.0.0.1:")  # so --check asks its /healthz
        check = phoenix(["status", "-w", str(ws), "--check"], ws)
        assert check.returncode == 0 and b"running" in check.stdout
        # Make the job fail with no attempts left: Phoenix gives up and says why.
        (ws / "stop").write_text("")
        engine.api().restart(c["Id"], timeout=0)  # an operator restart: followed; this run exits 2
        assert sidecar.wait(HANG_GUARD) == 4
    finally:
        if sidecar.poll() is None:
            sidecar.kill()
        sidecar.wait(10)
    report = json.loads(phoenix(["status", "-w", str(ws), "--json"], ws).stdout)
    assert report["job"]["state"] == "gave_up" and report["incident"]["action"] == "stop"
    assert report["lock"]["held"] is False and report["budgets"]["max_retries"] == 3
    text = phoenix(["status", "-w", str(ws)], ws).stdout.decode()
    assert "incident:   #1 crash" in text and "decision: stop" in text
    check = phoenix(["status", "-w", str(ws), "--check"], ws)
    assert check.returncode == 1


def test_doctor_on_a_sound_deployment_passes(engine, containers, tmp_path: Path) -> None:
    c = containers(["sleep", "60"], binds={str(tmp_path): str(tmp_path)})  # the workspace at the same path
    engine.api().start(c["Id"])
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    stand_in = tmp_path / "llm.sh"
    stand_in.write_text("#!/bin/sh\ncat >/dev/null\necho no-op\n")
    stand_in.chmod(0o755)
    result = phoenix(["doctor", "-w", str(tmp_path), "--set", f"container={c['name']}", "--set", "primary=command",
                      "--set", f"llm_cmd={stand_in}", "--skip", "gpu"], tmp_path)
    out = result.stdout.decode()
    assert result.returncode == 0, out
    for line in ("[  ok] docker", f"[  ok] container  {c['name']}", "[  ok] volumes", "[  ok] lock",
                 "[  ok] llm        ready: command", "[  ok] git", "[skip] gpu", "all checks passed"):
        assert line in out, out


def test_doctor_names_each_problem_and_its_fix(engine, containers, tmp_path: Path) -> None:
    c = containers(["sleep", "60"], restart_policy="always")
    result = phoenix(["doctor", "-w", str(tmp_path), "--set", f"container={c['name']}"], tmp_path)
    out = result.stdout.decode()
    assert result.returncode == 1
    assert "[FAIL] container" in out and "restart policy 'always'" in out and "restart: \"no\"" in out
    assert "[FAIL] llm" in out and "'gemini' is not on PATH" in out
    assert "[FAIL] gpu" in out and "--skip gpu" in out
    assert "[warn] git" in out and "git init" in out
    elsewhere = containers(["sleep", "60"], binds={str(tmp_path): "/workspace"})
    result = phoenix(["doctor", "-w", str(tmp_path), "--set", f"container={elsewhere['name']}", "--skip", "gpu"],
                     tmp_path)
    assert "[warn] container" in result.stdout.decode() and f"does not mount the workspace at {tmp_path}" in \
        result.stdout.decode()
    gone = phoenix(["doctor", "-w", str(tmp_path), "--set", "container=trainer", "--skip", "gpu"], tmp_path,
                   env={"DOCKER_HOST": f"unix://{tmp_path}/missing.sock"})
    out = gone.stdout.decode()
    assert gone.returncode == 1 and "[FAIL] docker" in out and "missing.sock does not exist" in out
    assert "[skip] container  skipped: Docker does not answer" in out


def test_doctor_reads_the_gpus_through_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML faked at the pynvml function boundary (no GPU here): what doctor reports from it."""
    import pynvml

    calls = []
    monkeypatch.setattr(pynvml, "nvmlInit", lambda: calls.append("init"))
    monkeypatch.setattr(pynvml, "nvmlShutdown", lambda: calls.append("shutdown"))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: 2)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", lambda i: i)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetName", lambda h: b"NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(pynvml, "nvmlSystemGetDriverVersion", lambda: "550.54.15")
    result = doctor.check_gpu(Settings())
    assert result.status == doctor.OK and result.detail == "2 GPU(s), driver 550.54.15: NVIDIA H100 80GB HBM3, NVIDIA H100 80GB HBM3"
    assert calls == ["init", "shutdown"]
