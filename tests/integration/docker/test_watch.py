"""`phoenix watch` end to end: the real CLI as a host process supervising real containers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dockerkit
from phoenix_watchdog.sources.dockerlogs import parse_rfc3339_ns
from testkit import PHOENIX, clean_env

HANG_GUARD = 180  # seconds: generous bounds that only keep a broken test from hanging the suite
FAST = ["--set", "backoff_initial_seconds=0.2", "--set", "backoff_max_seconds=0.5", "--set", "kill_grace_seconds=2",
        "--set", "docker_timeout_seconds=20", "--no-repair"]


class Sidecar:
    """`phoenix watch` running as a subprocess; its output goes to files in the test's folder."""

    def __init__(self, workspace: Path, args: list[str], name: str = "sidecar") -> None:
        self.workspace = workspace
        self.out_path = workspace.parent / f"{name}.out"
        self.err_path = workspace.parent / f"{name}.err"
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([*PHOENIX, "watch", "--workspace", str(workspace), *args], env=clean_env(),
                                     stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"phoenix watch still running after {timeout}s; stderr:\n{self.stderr()}") from None

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def state(self) -> dict[str, Any]:
        path = self.workspace / ".phoenix_cli" / "state.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()
        self._err.close()


@pytest.fixture
def sidecars() -> Iterator[Any]:
    made: list[Sidecar] = []

    def make(workspace: Path, args: list[str], name: str = "sidecar") -> Sidecar:
        s = Sidecar(workspace, args, name)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def workspace_with(tmp_path: Path, source: str) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "train.py").write_text(textwrap.dedent(source))
    return ws


def trainer(containers, ws: Path, **kwargs: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The job's container, seeing the workspace at the same path as Phoenix (as in the compose stack)."""
    return containers(["python3", "-u", "train.py"], binds={str(ws): str(ws)}, working_dir=str(ws), **kwargs)


def running(engine, cid: str) -> bool:  # type: ignore[no-untyped-def]
    api = engine.api()
    try:
        return bool(api.inspect_container(cid)["State"]["Running"])
    finally:
        api.close()


# A job that segfaults on its first run and finishes on the second: a transient failure.
FLAKY = """
    import ctypes, faulthandler, os, sys, time
    faulthandler.enable()
    runs = len(os.listdir("runs")) if os.path.isdir("runs") else 0
    os.makedirs("runs", exist_ok=True)
    open(f"runs/{runs + 1}", "w").close()
    print(f"run {runs + 1}: training", flush=True)
    time.sleep(0.5)
    if runs == 0:
        ctypes.string_at(0)
    print("done", flush=True)
"""


def test_transient_failure_is_restarted_without_a_repair(engine, containers, sidecars, tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, FLAKY)
    c = trainer(containers, ws)
    sidecar = sidecars(ws, ["--container", c["name"], *FAST])
    assert sidecar.wait(HANG_GUARD) == 0, sidecar.stderr()
    state = sidecar.state()
    [incident] = state["incidents"]
    assert incident["category"] == "segfault" and incident["action"] == "restart"
    assert incident["exit"].startswith("exit code 139") and incident["repair"] is None
    assert state["budgets"]["total_restarts"] == 1 and state["job"]["state"] == "succeeded"
    assert sorted(os.listdir(ws / "runs")) == ["1", "2"]
    assert "run 2: training" in sidecar.stdout() and "done" in sidecar.stdout()  # the job's output, echoed
    assert f"container {c['name']}" in state["job"]["target"]


def test_hung_trainer_is_dumped_stopped_and_restarted(engine, containers, sidecars, tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, """
        import faulthandler, os, signal, time
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        first = not os.path.exists("hung-once")
        open("hung-once", "w").close()
        print("step 1", flush=True)
        def all_reduce_that_never_returns():
            time.sleep(3600)
        if first:
            all_reduce_that_never_returns()
        print("done", flush=True)
    """)
    c = trainer(containers, ws)
    t0 = time.monotonic()
    sidecar = sidecars(ws, ["--container", c["name"], "--heartbeat-min", "0.05", "--set", "dump_signal=SIGUSR1",
                            "--set", "stack_dump_timeout_seconds=2", *FAST])
    assert sidecar.wait(HANG_GUARD) == 0, sidecar.stderr()
    assert time.monotonic() - t0 >= 3  # not before the 3 s of silence
    [incident] = sidecar.state()["incidents"]
    assert incident["kind"] == "hang" and incident["action"] == "restart"
    details = (ws / incident["details"]).read_text()
    assert "all_reduce_that_never_returns" in details  # the dump the job printed on SIGUSR1


def test_budget_exhausted_stops_and_leaves_the_container_down(engine, containers, sidecars, tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, """
        import ctypes, faulthandler, time
        faulthandler.enable()
        print("training", flush=True)
        time.sleep(0.3)
        ctypes.string_at(0)
    """)
    c = trainer(containers, ws)
    sidecar = sidecars(ws, ["--container", c["name"], "--max-retries", "1", *FAST])
    assert sidecar.wait(HANG_GUARD) == 4, sidecar.stderr()
    err = sidecar.stderr()
    assert "gave up" in err and "segfault" in err and "1 of 1" in err
    assert "phoenix watch --reset-budgets" in err  # the way back, for the sidecar
    assert "docker compose run --rm --use-aliases sidecar phoenix watch --reset-budgets" in err  # and in compose
    assert not running(engine, c["Id"])
    state = sidecar.state()
    assert state["job"]["state"] == "gave_up" and len(state["incidents"]) == 2
    assert state["incidents"][-1]["action"] == "stop"


def test_an_import_error_before_the_log_file_opens_stops_at_once(engine, containers, sidecars,
                                                                  tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, """
        import sys
        import a_module_that_is_not_installed
        sys.stdout = open("train.log", "a", buffering=1)
        print("training")
    """)
    c = trainer(containers, ws)
    sidecar = sidecars(ws, ["--container", c["name"], "--set", "log_file=train.log", *FAST])
    assert sidecar.wait(HANG_GUARD) == 4, sidecar.stderr()
    state = sidecar.state()
    [incident] = state["incidents"]  # stopped at once: no restarts
    assert incident["category"] == "missing_dependency" and incident["action"] == "stop"
    assert "a_module_that_is_not_installed" in (ws / incident["details"]).read_text()
    assert state["budgets"]["total_restarts"] == 0


def test_second_sidecar_on_the_same_workspace_is_refused(engine, containers, sidecars, tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, "import time\nprint('up', flush=True)\ntime.sleep(120)\n")
    c = trainer(containers, ws)
    first = sidecars(ws, ["--container", c["name"], *FAST], name="first")
    dockerkit.wait_for(lambda: first.state().get("job", {}).get("state") == "running", HANG_GUARD, "the first sidecar")
    second = sidecars(ws, ["--container", c["name"], *FAST], name="second")
    assert second.wait(HANG_GUARD) == 3
    assert "another Phoenix holds" in second.stderr() and str(first.proc.pid) in second.stderr()
    assert first.proc.poll() is None and running(engine, c["Id"])  # the first one is unaffected


def test_unreachable_docker_fails_fast(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    # With a 600 s Docker timeout, an answer within the hang guard is the refusal itself, not a wait.
    result = subprocess.run([*PHOENIX, "watch", "--workspace", str(ws), "--container", "trainer",
                             "--set", "docker_timeout_seconds=600"],
                            env=clean_env({"DOCKER_HOST": f"unix://{tmp_path}/missing.sock"}),
                            capture_output=True, text=True, timeout=HANG_GUARD)
    assert result.returncode == 5, result.stderr
    assert "missing.sock" in result.stderr


def test_watch_needs_a_container(tmp_path: Path) -> None:
    result = subprocess.run([*PHOENIX, "watch", "--workspace", str(tmp_path)], env=clean_env(),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--container" in result.stderr


def test_daemon_restart_while_watching_misses_nothing(engine, containers, sidecars, tmp_path: Path) -> None:
    """Both cases in one supervision: a restart the job survives (no incident), then an outage
    during which the job dies (handled once the daemon is back: restart, and the job completes)."""
    engine._require_managed()
    ws = workspace_with(tmp_path, """
        import os, time
        first = not os.path.exists("ran-once")
        open("ran-once", "w").close()
        for i in range(100000 if first else 5):
            print("tick", i, flush=True)
            time.sleep(0.1)
        print("done", flush=True)
    """)
    c = trainer(containers, ws)
    sidecar = sidecars(ws, ["--container", c["name"], "--heartbeat-min", "0.1", *FAST])
    try:
        dockerkit.wait_for(lambda: sidecar.state().get("job", {}).get("state") == "running", HANG_GUARD, "supervision")
        engine.restart_daemon()  # live-restore: the job runs on
        time.sleep(8)  # longer than the 6 s heartbeat: a paused heartbeat must not be mistaken for a hang
        assert running(engine, c["Id"]) and sidecar.proc.poll() is None
        assert sidecar.state().get("incidents") == []
        api = engine.api()
        pid = api.inspect_container(c["Id"])["State"]["Pid"]
        engine.stop_daemon()
        os.kill(pid, signal.SIGKILL)  # the job dies while the daemon is away
        time.sleep(1)
    finally:
        engine.start_daemon()
    assert sidecar.wait(HANG_GUARD) == 0, sidecar.stderr()
    [incident] = sidecar.state()["incidents"]
    assert incident["kind"] == "crash" and incident["exit"].startswith("exit code 137")
    assert incident["action"] == "restart"
    assert "done" in sidecar.stdout()


def test_stopping_the_sidecar_leaves_the_job_running_and_the_next_one_attaches(engine, containers, sidecars,
                                                                              tmp_path: Path) -> None:
    ws = workspace_with(tmp_path, """
        import os, time
        for i in range(600):
            if os.path.exists("finish"):
                break
            print("tick", i, flush=True)
            time.sleep(0.2)
        print("done", flush=True)
    """)
    c = trainer(containers, ws)
    first = sidecars(ws, ["--container", c["name"], *FAST], name="first")
    dockerkit.wait_for(lambda: first.state().get("job", {}).get("state") == "running", HANG_GUARD, "supervision")
    api = engine.api()
    started = api.inspect_container(c["Id"])["State"]["StartedAt"]
    first.proc.send_signal(signal.SIGTERM)  # docker compose restart sidecar, say
    assert first.wait(HANG_GUARD) == 143
    assert "leaving" in first.stderr() and running(engine, c["Id"])
    second = sidecars(ws, ["--container", c["name"], *FAST], name="second")
    dockerkit.wait_for(lambda: "tick" in second.stdout(), HANG_GUARD, "the second sidecar to follow the job")
    (ws / "finish").write_text("")
    assert second.wait(HANG_GUARD) == 0, second.stderr()
    assert api.inspect_container(c["Id"])["State"]["StartedAt"] == started  # attached, never restarted
    assert second.state()["incidents"] == [] and "done" in second.stdout()
    # Not a new run: the same run number, its clock the container's StartedAt, and said so.
    assert second.state()["job"]["run"] == 1 and "attached to the job" in second.stderr()
    assert "started run" not in second.stderr() and "started the job" not in second.stderr()
    assert abs(second.state()["job"]["started_at"] - parse_rfc3339_ns(started) / 1e9) < 1e-3
