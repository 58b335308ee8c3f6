"""`DockerRuntime` against a real Docker engine: attach, exits, restarts, hangs, log sources."""

from __future__ import annotations

import logging
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import dockerkit
from phoenix_sidecar.runtime.docker.guard import DockerGate
from phoenix_sidecar.runtime.docker.runtime import DockerRuntime
from phoenix_sidecar.errors import ConfigError, ContainerGone, DockerUnreachable
from phoenix_sidecar.config.schema import Settings
from phoenix_watchdog.sources.dockerlogs import parse_rfc3339_ns
from phoenix_watchdog.diagnosis.failure import HangInfo
from phoenix_watchdog.heartbeat import Heartbeat


def job(tmp_path: Path, source: str) -> dict[str, str]:
    """Writes a job script into a folder the container mounts at /job; returns the binds."""
    folder = tmp_path / "job"
    folder.mkdir(exist_ok=True)
    (folder / "job.py").write_text(textwrap.dedent(source))
    return {str(folder): "/job"}


class Runtime:
    """A DockerRuntime for one test, closed afterwards, with its output collected."""

    def __init__(self, **settings: Any) -> None:
        self.settings = Settings(**{"docker_timeout_seconds": 20.0, "kill_grace_seconds": 2.0, **settings})
        self.heartbeat = Heartbeat(None)
        self.output: list[tuple[str, bytes]] = []
        self.runtime = DockerRuntime(self.settings, self.heartbeat,
                                     listeners=[lambda s, d: self.output.append((s, d))])

    def wait_end(self, timeout: float = 30.0):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            end = self.runtime.wait(deadline - time.monotonic())
            if end is not None:
                return end
        raise AssertionError(f"no run end within {timeout}s")

    def text(self, stream: str | None = None) -> str:
        return b"".join(d for s, d in self.output if stream in (None, s)).decode()


@pytest.fixture
def runtimes():  # type: ignore[no-untyped-def]
    made: list[Runtime] = []

    def make(**settings: Any) -> Runtime:
        rt = Runtime(**settings)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.runtime.close()


def inspect(engine, cid: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    api = engine.api()
    try:
        return api.inspect_container(cid)
    finally:
        api.close()


def test_attaches_to_a_running_container_without_restarting_it(engine, containers, runtimes, tmp_path) -> None:
    c = containers(["python3", "-u", "-c", "import time\nfor i in range(600):\n print('step', i); time.sleep(0.1)"])
    api = engine.api()
    api.start(c["Id"])
    before = api.inspect_container(c["Id"])["State"]["StartedAt"]
    rt = runtimes(container=c["name"])
    rt.runtime.start()
    assert rt.runtime.wait(1.0) is None
    assert api.inspect_container(c["Id"])["State"]["StartedAt"] == before  # attached, not restarted
    assert rt.runtime.starts == 0 and rt.runtime.target == f"container {c['name']}"
    assert rt.heartbeat.seen_output and "stdout" in rt.heartbeat.last_output_wall
    assert "step" in rt.text("stdout")


def test_exit_code_and_finish_time_come_from_inspect_and_streams_stay_apart(engine, containers, runtimes,
                                                                          tmp_path) -> None:
    c = containers(["python3", "/job/job.py"], binds=job(tmp_path, """
        import sys, time
        print("loading data", flush=True)
        time.sleep(0.5)
        def train_step(batch):
            return batch["missing"]
        train_step({})
    """))
    rt = runtimes(container=c["name"])
    rt.runtime.start()  # not running: Phoenix starts it
    end = rt.wait_end()
    state = inspect(engine, c["Id"])["State"]
    assert end.exit.code == 1 and not end.exit.oom_killed
    assert end.ended_at == parse_rfc3339_ns(state["FinishedAt"]) / 1e9
    assert end.started_at == parse_rfc3339_ns(state["StartedAt"]) / 1e9
    assert "KeyError: 'missing'" in end.tail and "loading data" in end.tail
    assert "loading data" in rt.text("stdout") and "KeyError" in rt.text("stderr")
    assert "KeyError" not in rt.text("stdout")
    assert rt.runtime.starts == 1


@pytest.mark.parametrize("code, command", [
    # a segfault in the job, PID 1 in its container as a training process usually is
    (139, ["python3", "-c", "import ctypes; print('x', flush=True); ctypes.string_at(0)"]),
    # a job under a shell killed by SIGKILL (PID 1 cannot be sent a signal it has no handler for)
    (137, ["sh", "-c", "python3 -c 'import os; print(1, flush=True); os.kill(os.getpid(), 9)'; exit $?"]),
])
def test_signal_deaths_report_shell_style_codes(containers, runtimes, code: int, command: list[str]) -> None:
    c = containers(command)
    rt = runtimes(container=c["name"])
    rt.runtime.start()
    end = rt.wait_end()
    assert end.exit.code == code and end.exit.effective_signal == code - 128 and not end.exit.oom_killed


def test_oom_killed_flag_comes_from_inspect(containers, runtimes) -> None:
    c = containers(["python3", "-c", "print('allocating', flush=True); x = bytearray(512 * 1024 * 1024); x[::4096] = b'1' * len(x[::4096])"],
                   host={"mem_limit": "64m", "memswap_limit": "64m"})
    rt = runtimes(container=c["name"])
    rt.runtime.start()
    end = rt.wait_end()
    assert end.exit.oom_killed and end.exit.code == 137


def test_restart_after_an_exit_is_a_new_run_counted_by_phoenix(engine, containers, runtimes) -> None:
    c = containers(["python3", "-c", "import time; print('run', time.time(), flush=True); time.sleep(0.3)"])
    rt = runtimes(container=c["name"])
    rt.runtime.start()
    first = rt.wait_end()
    rt.runtime.start()
    second = rt.wait_end()
    assert second.started_at > first.ended_at
    assert first.exit.succeeded and second.exit.succeeded
    assert second.tail.count("run ") == 1  # the previous run's output is not this run's
    assert rt.runtime.starts == 2
    assert inspect(engine, c["Id"])["RestartCount"] == 0  # Docker does not count API starts


def test_log_file_on_a_shared_folder_is_the_source(containers, runtimes, tmp_path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    binds = {**job(tmp_path, """
        import sys, time
        log = open("/logs/train.log", "a", buffering=1)
        for i in range(5):
            print(f"epoch {i}", file=log); time.sleep(0.1)
        print("Traceback (most recent call last):\\nValueError: loss is nan", file=log)
        print("this goes to the docker log only", flush=True)
        sys.exit(3)
    """), str(logs): "/logs"}
    c = containers(["python3", "/job/job.py"], binds=binds)
    rt = runtimes(container=c["name"], log_file=str(logs / "train.log"))
    rt.runtime.start()
    end = rt.wait_end()
    assert end.exit.code == 3
    assert "epoch 4" in end.tail and "ValueError: loss is nan" in end.tail
    assert "docker log only" not in end.tail
    assert rt.heartbeat.seen_output and list(rt.heartbeat.last_output_wall) == ["log"]


def test_a_crash_before_the_log_file_opens_is_read_from_the_container_log(containers, runtimes, tmp_path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "train.log").write_text("an earlier run's line\n")
    binds = {**job(tmp_path, """
        import torchvision_that_is_not_installed
        log = open("/logs/train.log", "a", buffering=1)
        print("never reached", file=log)
    """), str(logs): "/logs"}
    c = containers(["python3", "/job/job.py"], binds=binds)
    rt = runtimes(container=c["name"], log_file=str(logs / "train.log"))
    rt.runtime.start()
    end = rt.wait_end()
    assert end.exit.code == 1
    assert "ModuleNotFoundError: No module named 'torchvision_that_is_not_installed'" in end.tail
    assert "earlier run" not in end.tail


@pytest.mark.parametrize("init", [True, False])
def test_a_stop_reaches_a_job_without_a_handler_only_behind_an_init(containers, runtimes, init: bool) -> None:
    # The job as PID 1 ignores SIGTERM (no handler: the kernel drops it for PID 1) and is killed
    # after the grace; behind compose's `init: true` (docker-init) SIGTERM reaches it and ends it.
    c = containers(["python3", "-u", "-c", "import time; print('training', flush=True); time.sleep(600)"],
                   host={"init": init})
    rt = runtimes(container=c["name"], kill_grace_seconds=15.0)
    rt.runtime.start()
    dockerkit.wait_for(lambda: "training" in rt.text(), 30, "the job's first line")
    end = rt.runtime.stop(reason="test")
    assert end.exit.code == (143 if init else 137), end.exit.describe()


def test_hang_dump_by_signal_then_stop_with_grace_and_kill(containers, runtimes, tmp_path) -> None:
    c = containers(["python3", "-u", "/job/job.py"], binds=job(tmp_path, """
        import faulthandler, signal, sys, time
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
        def wait_for_peers():
            time.sleep(3600)
        print("step 1", flush=True)
        wait_for_peers()
    """))
    rt = runtimes(container=c["name"], dump_signal="SIGUSR1", kill_grace_seconds=2.0,
                  stack_dump_timeout_seconds=3.0)
    rt.runtime.start()
    dockerkit.wait_for(lambda: "step 1" in rt.text(), 20, "the job's first output")
    stack = rt.runtime.dump_stack()
    assert stack is not None and "wait_for_peers" in stack
    t0 = time.monotonic()
    end = rt.runtime.stop(hang=HangInfo(silent_seconds=600, stack=stack))
    assert time.monotonic() - t0 >= 1.5  # SIGTERM ignored: SIGKILL only after the grace
    assert end.exit.code == 137 and end.hang is not None and end.hang.stack == stack
    assert "ignoring SIGTERM" in end.tail


def test_wakeup_returns_a_blocked_wait_early(containers, runtimes) -> None:
    c = containers(["sleep", "60"])
    rt = runtimes(container=c["name"])
    rt.runtime.start()
    threading.Timer(0.3, rt.runtime.wakeup).start()
    # Without the wake-up, this wait would last until the job ends (60 s) and return its RunEnd.
    assert rt.runtime.wait(600) is None


def test_a_stop_or_restart_by_the_operator_is_not_a_failure(engine, containers, runtimes) -> None:
    c = containers(["python3", "-u", "-c", "import time\nprint('hello', time.time())\ntime.sleep(60)"])
    rt = runtimes(container=c["name"])
    rt.runtime.start()
    dockerkit.wait_for(lambda: "hello" in rt.text(), 20, "first output")
    api = engine.api()
    api.restart(c["Id"], timeout=0)  # docker restart: followed, no run end
    dockerkit.wait_for(lambda: rt.text().count("hello") == 2, 20, "the restarted run's output")
    assert rt.runtime.wait(0.5) is None
    api.stop(c["Id"], timeout=0)  # docker stop: held, heartbeat paused, no run end
    dockerkit.wait_for(lambda: rt.heartbeat.paused, 20, "the hold after the operator's stop")
    assert rt.runtime.wait(1.0) is None and rt.runtime.wait(0.5) is None
    assert not inspect(engine, c["Id"])["State"]["Running"]  # and Phoenix did not start it again
    api.start(c["Id"])  # docker start: supervision resumes with the new run
    dockerkit.wait_for(lambda: rt.text().count("hello") == 3, 20, "the operator's run's output")
    assert not rt.heartbeat.paused
    assert rt.runtime.starts == 1  # Phoenix's own first start only


def test_a_start_that_timed_out_is_inspected_not_repeated(engine, containers, runtimes,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The start request reached the daemon but its answer was lost: one start, not two."""
    c = containers(["python3", "-c", "import time; print('up', flush=True); time.sleep(30)"])
    rt = runtimes(container=c["name"])
    from phoenix_sidecar.runtime.docker.guard import TargetGuard

    real_start = TargetGuard.start
    calls = []

    def start_then_time_out(self, container=None):  # type: ignore[no-untyped-def]
        calls.append(1)
        real_start(self, container)
        raise DockerUnreachable("start: the Docker daemon did not answer in time", timed_out=True)

    monkeypatch.setattr(TargetGuard, "start", start_then_time_out)
    rt.runtime.start()
    assert len(calls) == 1 and rt.runtime.starts == 1
    assert inspect(engine, c["Id"])["State"]["Running"]


def test_guard_refuses_every_other_container(engine, containers, caplog: pytest.LogCaptureFixture) -> None:
    mine = containers(["sleep", "60"])
    other = containers(["sleep", "60"])
    api = engine.api()
    api.start(mine["Id"])
    api.start(other["Id"])
    gate = DockerGate(timeout=20)
    guard = gate.find(name=mine["name"])
    from phoenix_sidecar.errors import RefusedAction

    caplog.set_level(logging.ERROR)
    for ref in (other["Id"], other["name"], other["Id"][:12], mine["Id"][:8]):
        for call in (lambda r: guard.stop(0, container=r), lambda r: guard.kill("SIGKILL", container=r),
                     lambda r: guard.restart(0, container=r), lambda r: guard.start(container=r),
                     lambda r: guard.inspect(container=r), lambda r: guard.logs(since="0", container=r),
                     lambda r: guard.events(read_timeout=1, container=r)):
            with pytest.raises(RefusedAction):
                call(ref)
    assert api.inspect_container(other["Id"])["State"]["Running"]
    assert any("refused to stop container" in r.getMessage() and other["name"] in r.getMessage()
               for r in caplog.records)
    # The bound container itself, by id, short id or name, is fine.
    assert guard.inspect(container=mine["Id"][:12])["Id"] == mine["Id"]
    guard.kill("SIGKILL", container=mine["name"])
    gate.close()


def test_finding_the_target_by_label(engine, containers) -> None:
    label = f"phoenix.role=trainer-{engine.run_id}"
    gate = DockerGate(timeout=20)
    with pytest.raises(ContainerGone):
        gate.find(label=label)
    a = containers(["sleep", "1"], labels={"phoenix.role": f"trainer-{engine.run_id}"})
    assert gate.find(label=label).target_id == a["Id"]
    with pytest.raises(ConfigError, match="does not carry the label"):
        gate.find(name=a["name"], label="phoenix.role=other")
    containers(["sleep", "1"], labels={"phoenix.role": f"trainer-{engine.run_id}"})
    with pytest.raises(ConfigError, match="2 containers carry the label"):
        gate.find(label=label)
    gate.close()


def test_restart_policy_and_a_foreign_workspace_path_are_warned_about(containers, runtimes, tmp_path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    c = containers(["sleep", "30"], restart_policy="on-failure", binds={str(tmp_path): "/workspace"})
    rt = runtimes(container=c["name"], workspace=str(tmp_path))
    caplog.set_level(logging.WARNING)
    rt.runtime.start()
    messages = [r.getMessage() for r in caplog.records]
    assert any("restart policy 'on-failure'" in m and "fight" in m for m in messages)
    assert any(f"does not mount the workspace at {tmp_path}" in m for m in messages)
    caplog.clear()
    same = containers(["sleep", "30"], binds={str(tmp_path): str(tmp_path)})
    runtimes(container=same["name"], workspace=str(tmp_path)).runtime.start()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_unreachable_daemon_fails_fast_with_the_address(tmp_path) -> None:
    settings = Settings(container="trainer", docker_timeout_seconds=2.0)
    runtime = DockerRuntime(settings, Heartbeat(None), gate=DockerGate(timeout=2, base_url=f"unix://{tmp_path}/none.sock"))
    with pytest.raises(DockerUnreachable, match="none.sock") as failed:
        runtime.start()
    assert not failed.value.timed_out  # the refusal itself, not a call that waited out its time
    runtime.close()


def test_a_failure_before_phoenix_watched_is_handled_first(engine, containers, runtimes) -> None:
    c = containers(["python3", "-c", "print('bad config: lr=-1', flush=True); raise SystemExit(2)"])
    api = engine.api()
    api.start(c["Id"])
    assert api.wait(c["Id"], timeout=30)["StatusCode"] == 2
    finished = parse_rfc3339_ns(api.inspect_container(c["Id"])["State"]["FinishedAt"]) / 1e9
    # Phoenix last dealt with this workspace before that exit: the failure is the first run's end.
    rt = runtimes(container=c["name"])
    rt.runtime._handled_until = finished - 60
    rt.runtime.start()
    end = rt.wait_end(10)
    assert end.exit.code == 2 and "bad config" in end.tail and rt.runtime.starts == 0
    rt.runtime.start()  # and then it is started again, as the policy decides
    assert rt.wait_end().exit.code == 2 and rt.runtime.starts == 1
    # Already dealt with (Phoenix wrote its state after that exit): simply started again.
    again = runtimes(container=c["name"])
    again.runtime._handled_until = time.time()
    again.runtime.start()
    assert again.wait_end().exit.code == 2 and again.runtime.starts == 1


def test_a_recreated_container_is_followed_by_its_label(engine, containers, runtimes) -> None:
    role = {"phoenix.role": f"trainer-{engine.run_id}-recreate"}
    command = ["python3", "-u", "-c", "import time, socket\nprint('hello from', socket.gethostname())\ntime.sleep(60)"]
    old = containers(command, labels=role)
    api = engine.api()
    api.start(old["Id"])
    rt = runtimes(container_label=f"phoenix.role={role['phoenix.role']}", docker_timeout_seconds=20.0)
    rt.runtime.start()
    dockerkit.wait_for(lambda: "hello" in rt.text(), 20, "the first container's output")
    api.remove_container(old["Id"], force=True)  # docker compose up -d after an image change: rm, create, start
    new = containers(command, labels=role)
    api.start(new["Id"])
    # The supervisor keeps calling wait(): no run end is reported, the new container is followed.
    dockerkit.wait_for(lambda: rt.runtime.wait(0.2) is None and rt.text().count("hello") == 2, 30,
                       "the new container's output")
    assert rt.runtime.container_id == new["Id"]
    api.remove_container(new["Id"], force=True)  # and gone for good: Phoenix says so
    with pytest.raises(ContainerGone, match="was removed"):
        rt.runtime._settings = Settings(container_label=f"phoenix.role={role['phoenix.role']}",
                                        docker_timeout_seconds=2.0)
        rt.wait_end(30)
