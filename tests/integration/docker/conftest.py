"""A real Docker engine for the tests in this folder (all marked ``docker``).

The session uses a daemon that already answers, or starts one with ``scripts/docker-env.sh start``
(root only) and stops it at the end. Images come from ``scripts/docker-env.sh images``: local
stand-ins, built once and then found by name (there is no registry). Without an engine every test
here is skipped with the reason. Everything a test creates carries the label ``phoenix.test``
with the session's run id and is removed by label afterwards; trainer containers get no network.

Several test sessions may share one daemon (developers, CI jobs), so a session removes only its
own things, and at start what sessions that no longer run left behind: never the containers of a
session still running (removing them made that session's `phoenix status` report its watched,
running container as "No such container").
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `import dockerkit` from the tests here

from testkit import REPO, process_alive  # noqa: E402

ENV_SCRIPT = REPO / "scripts" / "docker-env.sh"
TEST_LABEL = "phoenix.test"
PYTHON_IMAGE = "python:3.11-slim"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.docker)


def _script(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ENV_SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PHX_PYTHON": sys.executable, **(env or {})})


@dataclass
class Engine:
    """The Docker engine of this test session.

    ``managed``: the daemon was started by scripts/docker-env.sh (this session or an earlier
    one), so the tests may stop and restart it; a daemon someone else runs is never touched.
    """

    started_here: bool
    managed: bool
    run_id: str = field(default_factory=lambda: new_run_id())

    def api(self) -> Any:
        import docker

        return docker.APIClient(version="auto", timeout=60)

    def restart_daemon(self) -> None:
        """Stop and start the daemon (only one this session started: never someone else's)."""
        self._require_managed()
        result = _script("restart", timeout=180)
        assert result.returncode == 0, result.stderr

    def stop_daemon(self) -> None:
        self._require_managed()
        result = _script("stop", timeout=120)
        assert result.returncode == 0, result.stderr

    def _require_managed(self) -> None:
        if not self.managed:
            pytest.skip("this Docker daemon was not started by scripts/docker-env.sh; the tests stop and "
                        "restart only a daemon they manage")

    def start_daemon(self) -> None:
        result = _script("start", timeout=120)
        assert result.returncode == 0, result.stderr

    def images(self, which: str = "python trainer prometheus") -> None:
        """Build the stand-in images that are missing (scripts/docker-env.sh images)."""
        result = _script("images", env={"PHX_DOCKER_IMAGES": which}, timeout=900)
        if result.returncode != 0:
            pytest.fail(f"building the stand-in images ({which}) failed:\n{result.stderr[-3000:]}")

    def cleanup(self, *, mine: bool) -> None:
        """Remove this session's containers, networks and volumes (``mine``), or those of sessions
        that are over (what an interrupted session left behind); never a running session's."""
        def ours(labels: dict[str, str] | None) -> bool:
            run = (labels or {}).get(TEST_LABEL, "")
            return run == self.run_id if mine else not session_alive(run)

        api = self.api()
        try:
            for c in api.containers(all=True, filters={"label": TEST_LABEL}):
                if ours(c.get("Labels")):
                    api.remove_container(c["Id"], force=True, v=True)
            for n in api.networks(filters={"label": TEST_LABEL}):
                if ours(n.get("Labels")):
                    api.remove_network(n["Id"])
            for v in (api.volumes(filters={"label": TEST_LABEL}) or {}).get("Volumes") or []:
                if ours(v.get("Labels")):
                    api.remove_volume(v["Name"], force=True)
        finally:
            api.close()


def new_run_id() -> str:
    """A test session's id: its pid (so other sessions can tell whether it still runs) and a nonce."""
    return f"{os.getpid()}x{uuid.uuid4().hex[:6]}"


def session_alive(run_id: str) -> bool:
    """Whether the test session that labelled something ``run_id`` still runs (an id in an older
    format, without a pid, belongs to a session that is over)."""
    pid, sep, _ = run_id.partition("x")
    return bool(sep) and pid.isdigit() and process_alive(int(pid))


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0:
        started = False
    else:
        if os.geteuid() != 0:
            pytest.skip("no Docker daemon answers and starting one needs root")
        if subprocess.run(["which", "dockerd"], capture_output=True).returncode != 0:
            pytest.skip("no Docker daemon answers and dockerd is not installed (scripts/docker-env.sh install)")
        result = _script("start", timeout=120)
        if result.returncode != 0:
            pytest.skip(f"could not start dockerd: {result.stderr.strip()[-500:]}")
        started = result.stdout.strip() == "started"
    eng = Engine(started_here=started, managed=_script("owned").returncode == 0)
    eng.cleanup(mine=False)  # what sessions that no longer run left behind, never a running one's
    try:
        yield eng
    finally:
        try:
            eng.cleanup(mine=True)
        finally:
            if started:
                _script("stop", timeout=120)


@pytest.fixture(scope="session")
def python_image(engine: Engine) -> str:
    """A Python image for test jobs: the official python:3.11-slim, or its local stand-in."""
    engine.images("python")
    return PYTHON_IMAGE


@pytest.fixture
def containers(engine: Engine, python_image: str) -> Iterator[Callable[..., dict[str, Any]]]:
    """Creates labelled, network-less containers (not started) and removes them after the test.

    ``make(command, name=..., image=..., binds={host: container}, host={host config},
    **create_kwargs)`` returns the create response, with ``name`` added.
    """
    api = engine.api()
    made: list[str] = []

    def make(command: list[str], *, name: str | None = None, image: str | None = None,
             binds: dict[str, str] | None = None, labels: dict[str, str] | None = None,
             restart_policy: str | None = None, host: dict[str, Any] | None = None,
             **kwargs: Any) -> dict[str, Any]:
        name = name or f"phx-test-{engine.run_id}-{uuid.uuid4().hex[:6]}"
        host_config = api.create_host_config(
            network_mode="none",
            binds={src: {"bind": dst, "mode": "rw"} for src, dst in (binds or {}).items()},
            restart_policy={"Name": restart_policy} if restart_policy else None, **(host or {}))
        created = api.create_container(image or python_image, command, name=name, host_config=host_config,
                                       labels={TEST_LABEL: engine.run_id, **(labels or {})}, **kwargs)
        made.append(created["Id"])
        return {**created, "name": name}

    try:
        yield make
    finally:
        for cid in made:
            try:
                api.remove_container(cid, force=True, v=True)
            except Exception:  # already gone
                pass
        api.close()
