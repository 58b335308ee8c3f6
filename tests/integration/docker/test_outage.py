"""The Docker daemon goes away while Phoenix watches (dockerd stopped and started for real, with
live-restore on, as scripts/docker-env.sh runs it): silence then is not a hang, and nothing that
happened meanwhile is missed."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import dockerkit
from phoenix_sidecar.runtime.docker.runtime import DockerRuntime
from phoenix_sidecar.config.schema import Settings
from phoenix_watchdog.heartbeat import Heartbeat

TICKER = ["python3", "-u", "-c", "import time\nfor i in range(100000):\n print('tick', i); time.sleep(0.05)"]


@pytest.fixture
def daemon(engine) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """The managed daemon, started again after the test whatever happened."""
    engine._require_managed()
    try:
        yield engine
    finally:
        engine.start_daemon()


class PauseWatch:
    """Samples ``heartbeat.paused`` in the background: did the runtime pause it, and resume it?"""

    def __init__(self, heartbeat: Heartbeat) -> None:
        self.heartbeat = heartbeat
        self.seen: list[bool] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            value = self.heartbeat.paused
            if not self.seen or self.seen[-1] != value:
                self.seen.append(value)

    def stop(self) -> list[bool]:
        self._stop.set()
        self._thread.join(2)
        return self.seen


def make_runtime(**settings: object) -> tuple[DockerRuntime, Heartbeat, list[bytes]]:
    heartbeat = Heartbeat(30.0)
    output: list[bytes] = []
    runtime = DockerRuntime(Settings(**{"docker_timeout_seconds": 20.0, **settings}), heartbeat,  # type: ignore[arg-type]
                            listeners=[lambda s, d: output.append(d)])
    return runtime, heartbeat, output


def ticks(output: list[bytes]) -> list[int]:
    return [int(n) for n in re.findall(rb"tick (\d+)", b"".join(output))]


def test_daemon_restart_while_the_job_runs_pauses_the_heartbeat_and_loses_no_line(daemon, containers) -> None:
    c = containers(TICKER)
    runtime, heartbeat, output = make_runtime(container=c["name"])
    try:
        runtime.start()
        dockerkit.wait_for(lambda: len(ticks(output)) > 5, 20, "the first ticks")
        watch = PauseWatch(heartbeat)
        daemon.restart_daemon()  # type: ignore[attr-defined]
        before = len(ticks(output))
        dockerkit.wait_for(lambda: len(ticks(output)) > before + 10, 30, "ticks after the restart")
        dockerkit.wait_for(lambda: not heartbeat.paused, 30, "the heartbeat to resume")
        assert runtime.wait(0.2) is None  # no incident: the job kept running
        assert watch.stop() == [False, True, False]  # paused during the outage, resumed after
        seen = ticks(output)
        assert seen == list(range(seen[0], seen[0] + len(seen))), "a line was lost or repeated"
    finally:
        runtime.close()


def test_job_that_died_while_the_daemon_was_away_is_reported(daemon, containers) -> None:
    c = containers(TICKER)
    runtime, heartbeat, output = make_runtime(container=c["name"])
    try:
        runtime.start()
        dockerkit.wait_for(lambda: len(ticks(output)) > 5, 20, "the first ticks")
        api = daemon.api()  # type: ignore[attr-defined]
        pid = api.inspect_container(c["Id"])["State"]["Pid"]
        daemon.stop_daemon()  # type: ignore[attr-defined]
        assert runtime.wait(3.0) is None  # the outage itself ends nothing
        assert heartbeat.paused
        os.kill(pid, 9)  # the job dies while nobody can see it
        daemon.start_daemon()  # type: ignore[attr-defined]
        end = None
        deadline = time.monotonic() + 30
        while end is None and time.monotonic() < deadline:
            end = runtime.wait(1.0)
        assert end is not None, "the exit during the outage was missed"
        assert end.exit.code == 137
        assert end.ended_at > end.started_at
    finally:
        runtime.close()


def test_log_file_source_keeps_flowing_through_a_daemon_restart(daemon, containers, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    c = containers(["python3", "-u", "-c",
                    "import time\nlog = open('/logs/train.log', 'a', buffering=1)\n"
                    "for i in range(100000):\n print('tick', i, file=log); time.sleep(0.05)"],
                   binds={str(logs): "/logs"})
    runtime, heartbeat, output = make_runtime(container=c["name"], log_file=str(logs / "train.log"))
    try:
        runtime.start()
        dockerkit.wait_for(lambda: len(ticks(output)) > 5, 20, "the first ticks")
        daemon.restart_daemon()  # type: ignore[attr-defined]
        before = len(ticks(output))
        dockerkit.wait_for(lambda: len(ticks(output)) > before + 10, 30, "ticks after the restart")
        dockerkit.wait_for(lambda: not heartbeat.paused, 30, "the heartbeat to resume")
        assert runtime.wait(0.2) is None
        seen = ticks(output)
        assert seen == list(range(seen[0], seen[0] + len(seen)))
    finally:
        runtime.close()
