"""Starting and stopping the supervised container safely when the Docker API is slow or away.

A start request that timed out may still have started the container: it is followed by an
inspect, never by a blind second start (two starts would be two runs of the job). A stop that
timed out is followed by an inspect too, and by SIGKILL only if the container still runs.
"""

from __future__ import annotations

import logging

from phoenix_sidecar.errors import DockerUnreachable, RuntimeUnavailable
from phoenix_sidecar.runtime.docker.guard import TargetGuard
from phoenix_sidecar.runtime.docker.monitor import Observed

log = logging.getLogger(__name__)

START_ATTEMPTS = 3


def observe(guard: TargetGuard) -> Observed:
    """A fresh inspect of the container."""
    return Observed.from_inspect(guard.inspect())


def start_once(guard: TargetGuard, before: Observed, *, target: str, attempts: int = START_ATTEMPTS) -> Observed:
    """Start the container and return the inspect that shows the new run (a ``StartedAt`` other
    than ``before``'s). A start that timed out is checked before it is tried again.

    Raises:
        DockerUnreachable: the daemon refused the connection.
        RuntimeUnavailable: no new run after ``attempts`` tries.
    """
    problem: Exception | None = None
    for _ in range(attempts):
        try:
            guard.start()
        except DockerUnreachable as exc:
            if not exc.timed_out:
                raise
            problem = exc  # it may have started anyway: look before trying again
            log.warning("starting %s timed out; inspecting it before doing anything else", target)
        now = observe(guard)
        if now.started_at != before.started_at:
            return now
    raise RuntimeUnavailable(f"could not start {target}: {problem}")


def stop(guard: TargetGuard, grace: float, *, target: str) -> None:
    """SIGTERM (or the image's STOPSIGNAL), ``grace`` seconds, SIGKILL; a timed-out stop is
    followed by SIGKILL if the container still runs."""
    try:
        guard.stop(grace)
    except DockerUnreachable as exc:
        if not exc.timed_out:
            raise
        if observe(guard).running:
            log.warning("stopping %s timed out; killing it", target)
            guard.kill("SIGKILL")
