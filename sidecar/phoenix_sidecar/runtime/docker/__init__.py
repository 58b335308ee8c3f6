"""The Docker runtime: `phoenix watch` supervises one training container through the Docker API.

Face: `create` (the runtime for the settings), and the one-shot looks the commands need:
`daemon_address`, `daemon_version` (`phoenix doctor`) and `look` (`phoenix status`, `phoenix
doctor`). Inside: ``guard`` (the one module that imports the Docker SDK: the connection, bound to
the one container Phoenix may act on), ``monitor`` (events and inspects), ``streams`` (where the
output comes from), ``control`` (start and stop when the API is slow), ``runtime`` (the
`Runtime`), and ``proxy`` (the socket proxy, a program of its own).

The face imports the internals inside its functions: ``python -m ...docker.proxy`` runs this
module first and needs no Docker SDK, and the CLI loads it only for the commands that use Docker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.runtime.base import RuntimeContext
from phoenix_sidecar.runtime.output import echo

if TYPE_CHECKING:
    from phoenix_sidecar.runtime.docker.runtime import DockerRuntime

__all__ = ["ContainerLook", "create", "daemon_address", "daemon_version", "look"]

LOOK_TIMEOUT = 10.0  # a one-shot look (status, doctor) waits no longer than this for the daemon


def create(settings: Settings, context: RuntimeContext) -> DockerRuntime:
    """The runtime of `phoenix watch`: the container named by ``container`` or ``container_label``,
    its output from ``log_file`` (relative to the workspace) or else the Docker log stream."""
    from phoenix_sidecar.runtime.docker.runtime import DockerRuntime

    log_file = settings.log_file
    if log_file and not os.path.isabs(log_file):
        log_file = os.path.join(settings.workspace, log_file)
    listeners = [context.record] if context.record else []
    if context.echo:
        listeners.append(echo)
    return DockerRuntime(replace(settings, log_file=log_file), context.heartbeat, listeners=listeners,
                         handled_until=context.handled_until)


def daemon_address() -> str:
    """Where Phoenix looks for the Docker daemon (``DOCKER_HOST``, else the local socket)."""
    from phoenix_sidecar.runtime.docker.guard import DockerGate

    return DockerGate(timeout=LOOK_TIMEOUT).address


def daemon_version(settings: Settings) -> dict[str, Any]:
    """The daemon's ``/version`` answer.

    Raises:
        DockerUnreachable: no daemon answers.
    """
    from phoenix_sidecar.runtime.docker.guard import DockerGate

    gate = DockerGate(timeout=min(settings.docker_timeout_seconds, LOOK_TIMEOUT))
    try:
        return gate.version()
    finally:
        gate.close()


@dataclass(frozen=True)
class ContainerLook:
    """One live look at the supervised container (`look`)."""

    name: str
    id: str
    status: str  # created | running | paused | restarting | removing | exited | dead
    running: bool
    started_at: str
    exit_code: int
    oom_killed: bool
    restart_policy: str
    restart_count: int
    image: str | None
    mounts_workspace: bool  # sees the workspace at the same path as Phoenix


def look(settings: Settings) -> ContainerLook:
    """A live look at the container ``container``/``container_label`` names. Read-only.

    Raises:
        ContainerGone: no such container; ConfigError: the selector is ambiguous;
        DockerUnreachable, RefusedAction, RuntimeUnavailable: the daemon (or proxy) did not answer.
    """
    from phoenix_sidecar.runtime.docker.guard import DockerGate
    from phoenix_sidecar.runtime.docker.monitor import Observed, mounts_workspace

    gate = DockerGate(timeout=min(settings.docker_timeout_seconds, LOOK_TIMEOUT))
    try:
        guard = gate.find(name=settings.container, label=settings.container_label)
        info = guard.inspect()
    finally:
        gate.close()
    now = Observed.from_inspect(info)
    return ContainerLook(name=guard.name, id=guard.target_id[:12], status=now.status, running=now.running,
                         started_at=now.started_at, exit_code=now.exit_code, oom_killed=now.oom_killed,
                         restart_policy=now.restart_policy, restart_count=int(info.get("RestartCount") or 0),
                         image=(info.get("Config") or {}).get("Image"),
                         mounts_workspace=mounts_workspace(info, settings.workspace))
