"""The compose stack (its CPU variant) comes up for real: the trainer (the example PyTorch job, in
the stand-in for the NVIDIA image), the socket proxy, the sidecar in its container built from the
project's Dockerfile, and Prometheus scraping it. A crash in the trainer is handled end to end.
Grafana cannot be built here (it is in neither Debian nor PyPI), so the test starts the stack
without it; its files are checked structurally by the metrics tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import dockerkit
from testkit import REPO

CPU_FILE = REPO / "deploy" / "compose.cpu.yaml"
SIDECAR_UID = 10001  # the image's own user; the workspace is made theirs, as WORKSPACE_UID says


def test_cpu_variant_is_compose_yaml_without_gpus() -> None:
    result = subprocess.run([sys.executable, str(REPO / "deploy" / "compose_cpu.py"), "--check"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    gpu = yaml.safe_load((REPO / "compose.yaml").read_text())
    cpu = yaml.safe_load(CPU_FILE.read_text())
    devices = gpu["services"]["trainer"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert all("deploy" not in service for service in cpu["services"].values())
    assert gpu["services"]["trainer"]["restart"] == "no" and gpu["services"]["trainer"]["labels"] == {
        "phoenix.role": "trainer"}
    env = {k: v for k, v in os.environ.items() if k != "WORKSPACE"}
    for config in (["-f", "compose.yaml"], ["-f", str(CPU_FILE), "--project-directory", "."]):
        check = subprocess.run(["docker-compose", *config, "config", "-q"], cwd=REPO, capture_output=True, text=True,
                               timeout=60, env={**env, "WORKSPACE": "/srv/train"})
        assert check.returncode == 0, check.stderr
        # No default workspace: a folder inside this clone is no git repository of its own.
        check = subprocess.run(["docker-compose", *config, "config", "-q"], cwd=REPO, capture_output=True, text=True,
                               timeout=60, env=env)
        assert check.returncode != 0 and "set WORKSPACE in .env" in check.stderr


def test_phoenix_variables_in_dot_env_reach_the_sidecar_and_unset_ones_are_not_passed(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WORKSPACE=/srv/train\nPHOENIX_HEARTBEAT_MIN=7\nPHOENIX_METRICS_LINGER_SECONDS=90\n"
                                   "DOCKER_SOCKET=/run/user/1000/docker.sock\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PHOENIX_", "GEMINI_", "OPENAI_", "DOCKER_", "WORKSPACE"))}
    for compose_file in ("compose.yaml", str(CPU_FILE)):
        result = subprocess.run(["docker-compose", "-f", str(REPO / compose_file), "--project-directory", str(tmp_path),
                                 "config"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        services = yaml.safe_load(result.stdout)["services"]
        sidecar = services["sidecar"]["environment"]
        assert sidecar["PHOENIX_HEARTBEAT_MIN"] == "7" and sidecar["PHOENIX_METRICS_LINGER_SECONDS"] == "90"
        assert sidecar["PHOENIX_TAIL"] is None  # not set: not passed (the file or the default decides)
        assert "/run/user/1000/docker.sock:/var/run/docker.sock" in str(services["socket-proxy"]["volumes"])
        assert services["trainer"]["init"] is True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


JOB = """
    # The example trainer, behind a first run that dies like a flaky driver (a segfault).
    import ctypes, faulthandler, os, runpy, sys, time
    log = open("/logs/train.log", "a", buffering=1)
    faulthandler.enable(file=log)
    if not os.path.exists("crashed-once"):
        open("crashed-once", "w").close()
        print("epoch 1 step 10: simulated driver crash", file=log)
        ctypes.string_at(0)
    deadline = time.time() + 120
    while not os.path.exists("release") and time.time() < deadline:  # the test releases it
        print("waiting for the test", file=log)
        time.sleep(1)
    sys.argv = ["train.py", "--epochs", "2", "--steps-per-epoch", "20", "--log-every", "10",
                "--log-file", "/logs/train.log", "--checkpoint-dir", "checkpoints"]
    runpy.run_path("train.py", run_name="__main__")
"""


class Stack:
    def __init__(self, engine: Any, workspace: Path, folder: Path) -> None:
        self.project = f"phx{engine.run_id}"
        self.workspace = workspace
        self.port = free_port()
        label = f"trainer-{engine.run_id}"
        override = {
            "services": {
                "trainer": {"command": ["python", "-u", "job.py"], "network_mode": "none",
                            "labels": {"phoenix.role": label, "phoenix.test": engine.run_id}},
                "socket-proxy": {"entrypoint": ["python", "-m", "phoenix_sidecar.runtime.docker.proxy",
                                                "--label", f"phoenix.role={label}", "--listen",
                                                "/run/phoenix-proxy/docker.sock", "--owner", f"{SIDECAR_UID}:{SIDECAR_UID}"],
                                 "labels": {"phoenix.test": engine.run_id}},
                "sidecar": {"environment": {"PHOENIX_CONTAINER_LABEL": f"phoenix.role={label}",
                                            "PHOENIX_BACKOFF_INITIAL_SECONDS": "0.5", "PHOENIX_REPAIR": "false"},
                            "labels": {"phoenix.test": engine.run_id}},
                "volumes-init": {"labels": {"phoenix.test": engine.run_id}},
                "prometheus": {"labels": {"phoenix.test": engine.run_id}},
            },
            "volumes": {name: {"labels": {"phoenix.test": engine.run_id}}
                        for name in ("logs", "proxy", "prometheus", "grafana")},
            "networks": {"default": {"labels": {"phoenix.test": engine.run_id}}},
        }
        self.override = folder / "override.yaml"
        self.override.write_text(yaml.safe_dump(override))
        self.env = {**os.environ, "WORKSPACE": str(workspace), "WORKSPACE_UID": str(SIDECAR_UID),
                    "WORKSPACE_GID": str(SIDECAR_UID), "PROMETHEUS_PORT": str(self.port), "PHOENIX_TAG": "ci"}
        self.env = {k: v for k, v in self.env.items() if not k.startswith("PHOENIX_") or k == "PHOENIX_TAG"}

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker-compose", "-p", self.project, "-f", str(CPU_FILE), "-f", str(self.override),
                               "--project-directory", str(REPO), *args], cwd=REPO, env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def container(self, service: str) -> dict[str, Any]:
        ids = self.compose("ps", "-q", "-a", service, timeout=60).stdout.split()
        assert ids, f"no {service} container"
        out = subprocess.run(["docker", "inspect", ids[0]], capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout)[0]

    def prometheus(self, query: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?query={urllib.request.quote(query)}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())["data"]["result"]
        except OSError:
            return []


@pytest.fixture
def stack(engine, tmp_path: Path) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    engine.images()
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(REPO / "examples" / "trainer" / "train.py", ws / "train.py")
    (ws / "job.py").write_text(textwrap.dedent(JOB))
    subprocess.run(["chown", "-R", f"{SIDECAR_UID}:{SIDECAR_UID}", str(ws)], check=True)
    s = Stack(engine, ws, tmp_path)
    built = s.compose("build", "volumes-init", timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    try:
        yield s
    finally:
        logs = s.compose("logs", "--no-color", "--tail", "60", timeout=60).stdout
        down = s.compose("down", "-v", "--remove-orphans", "-t", "5", timeout=180)
        print(logs[-6000:])
        assert down.returncode == 0, down.stderr


PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"


def test_stack_comes_up_and_handles_a_trainer_crash(stack: Stack) -> None:
    # Prometheus's configuration comes with the metrics work; without it Docker would mount an empty
    # directory in its place, so Prometheus is left out until the file is there (and the test says so).
    with_prometheus = PROMETHEUS_CONFIG.is_file()
    up = stack.compose("up", "-d", "--no-build", "trainer", "sidecar", *(["prometheus"] if with_prometheus else []),
                       timeout=300)
    assert up.returncode == 0, up.stderr[-3000:]
    # The first run crashes; the sidecar restarts it; Prometheus scrapes the sidecar meanwhile.
    dockerkit.wait_for(lambda: (stack.workspace / "crashed-once").exists(), 60, "the trainer's first run")
    if with_prometheus:
        dockerkit.wait_for(lambda: any(r["value"][1] == "1" for r in stack.prometheus('up{job="phoenix"}')), 90,
                           "Prometheus to scrape the sidecar", interval=1.0)
        assert stack.prometheus('count({job="phoenix", __name__=~"phoenix_.+"})'), "no phoenix_* metrics scraped"
    sidecar = stack.container("sidecar")
    assert sidecar["State"]["Running"] and sidecar["Config"]["User"] == f"{SIDECAR_UID}:{SIDECAR_UID}"
    check = stack.compose("exec", "-T", "sidecar", "phoenix", "status", "--check", timeout=60)  # the HEALTHCHECK
    assert check.returncode == 0 and "running" in check.stdout, check.stdout + check.stderr
    # The image's settings are defaults: deploy/phoenix.yaml decides (and `phoenix config` says so).
    shown = stack.compose("exec", "-T", "sidecar", "phoenix", "config", timeout=60).stdout
    rows = {line.split("=")[0].strip(): line for line in shown.splitlines() if "=" in line}
    assert rows["metrics_addr"].endswith("# file /etc/phoenix/phoenix.yaml"), shown
    assert rows["workspace"].endswith("# file /etc/phoenix/phoenix.yaml"), shown
    (stack.workspace / "release").write_text("")
    dockerkit.wait_for(lambda: not stack.container("sidecar")["State"]["Running"], 180, "the sidecar to finish")
    sidecar = stack.container("sidecar")
    trainer = stack.container("trainer")
    logs = stack.compose("logs", "--no-color", "sidecar", timeout=60).stdout
    assert sidecar["State"]["ExitCode"] == 0, logs[-4000:]
    assert trainer["State"]["ExitCode"] == 0 and trainer["RestartCount"] == 0
    state = json.loads((stack.workspace / ".phoenix_cli" / "state.json").read_text())
    [incident] = state["incidents"]
    assert incident["exit"].startswith("exit code 139") and incident["action"] == "restart"
    assert state["job"]["state"] == "succeeded" and state["job"]["run"] == 2
    assert "training finished" in logs  # the job's output, through the log volume into the sidecar
    checkpoint = stack.workspace / "checkpoints" / "last.pt"
    assert checkpoint.exists() and checkpoint.stat().st_uid == SIDECAR_UID
    if not with_prometheus:
        pytest.skip(f"the stack ran without Prometheus: {PROMETHEUS_CONFIG.relative_to(REPO)} is not in this checkout")
    # The success reached Prometheus before the sidecar exited, so PhoenixDown stays quiet for it.
    [last] = stack.prometheus('last_over_time(phoenix_job_state{state="succeeded"}[1h])')
    assert last["value"][1] == "1"
    down = [r for g in yaml.safe_load((REPO / "deploy" / "prometheus" / "rules" / "phoenix.rules.yml").read_text())["groups"]
            for r in g["rules"] if r.get("alert") == "PhoenixDown"][0]["expr"]
    dockerkit.wait_for(lambda: stack.prometheus('up{job="phoenix"} == 0'), 90, "Prometheus to see the sidecar gone",
                       interval=1.0)
    assert stack.prometheus(down) == [], "PhoenixDown would page for a finished job"
