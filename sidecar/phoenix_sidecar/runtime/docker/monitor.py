"""Watches the supervised container through the Docker daemon, and the daemon itself.

Exit detection is event-driven: a background thread (a `Worker`) follows ``GET /events`` filtered to the
container and answers each lifecycle event with a fresh ``inspect``, which is the truth it hands
on (`Observed`): events are only the trigger, so a missed, replayed or reordered event cannot
mislead it. The stream is opened before the first inspect, so nothing falls between them.

The same thread notices the daemon going away (the stream ends and ``/_ping`` fails, or the
stream was idle for ``idle_seconds`` and the ping fails), reports the outage, reconnects with
capped exponential backoff, and reports the return followed by a fresh inspect: a container that
exited while the daemon was away is seen then, by its ``StartedAt``/``FinishedAt``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from phoenix_sidecar.errors import ContainerGone, RuntimeUnavailable
from phoenix_sidecar.runtime.docker.guard import DockerGate, TargetGuard
from phoenix_watchdog.sources.dockerlogs import parse_rfc3339_ns
from phoenix_watchdog.worker import Worker

log = logging.getLogger(__name__)

# Events after which the container's state is worth a fresh look.
LIFECYCLE = {"start", "die", "stop", "kill", "oom", "restart", "pause", "unpause", "destroy"}


@dataclass(frozen=True)
class Observed:
    """One ``inspect`` of the container, reduced to what supervision needs."""

    running: bool
    status: str  # created | running | paused | restarting | removing | exited | dead
    started_at: str  # the raw StartedAt: the identity of a run
    started_ns: int
    finished_ns: int
    exit_code: int
    oom_killed: bool
    error: str
    restart_policy: str
    tty: bool

    @classmethod
    def from_inspect(cls, info: dict[str, Any]) -> Observed:
        state = info.get("State") or {}
        host = info.get("HostConfig") or {}
        return cls(
            running=bool(state.get("Running")) and state.get("Status") != "exited",
            status=str(state.get("Status", "")),
            started_at=str(state.get("StartedAt", "")),
            started_ns=parse_rfc3339_ns(str(state.get("StartedAt", ""))) or 0,
            finished_ns=parse_rfc3339_ns(str(state.get("FinishedAt", ""))) or 0,
            exit_code=int(state.get("ExitCode") or 0),
            oom_killed=bool(state.get("OOMKilled")),
            error=str(state.get("Error") or ""),
            restart_policy=str((host.get("RestartPolicy") or {}).get("Name") or "no"),
            tty=bool((info.get("Config") or {}).get("Tty")),
        )

    @property
    def log_since_ns(self) -> int:
        """Where this run's output begins in the container's log. Its first lines carry a time a
        little before ``StartedAt`` (the daemon records the start after the process began: a
        millisecond or two), and while it runs nothing after ``FinishedAt`` (the previous run's end)
        belongs to an earlier run."""
        early = self.started_ns - 1_000_000_000
        return max(self.finished_ns + 1, early) if self.running else early


def setup_warnings(info: dict[str, Any], workspace: str, target: str) -> list[str]:
    """What in the container's setup would make supervision go wrong later (said once, at start-up)."""
    warnings = []
    policy = Observed.from_inspect(info).restart_policy
    if policy not in ("", "no"):
        warnings.append(f"{target} has the Docker restart policy {policy!r}: Docker and Phoenix would both restart "
                        "it and fight over it; set its restart policy to \"no\" (compose: restart: \"no\")")
    if not mounts_workspace(info, workspace):
        warnings.append(f"{target} does not mount the workspace at {workspace}, where Phoenix sees it: its "
                        "tracebacks will name paths Phoenix cannot find and repairs will have nothing to patch; "
                        "mount the workspace at the same path in both containers")
    return warnings


def mounts_workspace(info: dict[str, Any], workspace: str) -> bool:
    """Whether the container sees ``workspace`` at the same path as Phoenix (a mount there or above).
    Otherwise its tracebacks name paths Phoenix cannot find, and repairs have nothing to patch."""
    ws = os.path.normpath(workspace)
    for mount in info.get("Mounts") or []:
        dest = os.path.normpath(str(mount.get("Destination") or "/nonexistent"))
        if ws == dest or ws.startswith(dest.rstrip("/") + "/"):
            return True
    return False


class ContainerMonitor:
    """Follows one container's events in a background thread and reports what it sees.

    Args:
        gate: the connection (for pings).
        guard: the container's guard (events and inspect go through it).
        on_observed: receives every fresh `Observed` (from the monitor's thread).
        on_event: receives each lifecycle event's action and attributes, before the inspect it causes.
        on_outage: called with True when the daemon stops answering, False when it is back.
        on_gone: called when the container no longer exists.
        idle_seconds: after this long without an event, check the daemon is still there.
        backoff: first and largest delay between reconnection attempts.
    """

    def __init__(self, gate: DockerGate, guard: TargetGuard, *, on_observed: Callable[[Observed], None],
                 on_event: Callable[[str, dict[str, str]], None], on_outage: Callable[[bool], None],
                 on_gone: Callable[[ContainerGone], None],
                 idle_seconds: float = 10.0, backoff: tuple[float, float] = (0.1, 5.0)) -> None:
        self._gate = gate
        self._guard = guard
        self._on_observed = on_observed
        self._on_event = on_event
        self._on_outage = on_outage
        self._on_gone = on_gone
        self._idle = idle_seconds
        self._backoff = backoff
        self._connected = threading.Event()
        self._connected.set()  # the target was just found, so the daemon answered
        self._stream: Any = None
        self._lock = threading.Lock()
        self._worker = Worker(self._loop, "phoenix-docker-events", on_stop=self._interrupt)
        self._closed = self._worker.stopping

    def start(self) -> None:
        self._worker.start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until the daemon answers (or ``timeout`` passes); True if it does."""
        return self._connected.wait(timeout)

    def close(self) -> None:
        if not self._worker.stop(5):
            log.warning("the event watcher of %s did not stop; leaving its thread behind", self._guard.name)

    def _interrupt(self) -> None:
        """Unblock the thread and anyone waiting on it (`Worker.stop` calls this after asking it to end)."""
        self._connected.set()  # release anyone waiting for a reconnection
        with self._lock:
            stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # the daemon may have dropped it already
                pass

    # -- the thread ----------------------------------------------------------------------------
    def _loop(self) -> None:
        delay = self._backoff[0]
        while not self._closed.is_set():
            if not self._connected.is_set():
                if not self._gate.ping(timeout=min(5.0, self._gate.timeout)):
                    self._closed.wait(delay)
                    delay = min(delay * 2, self._backoff[1])
                    continue
                delay = self._backoff[0]
                self._connected.set()
                log.warning("the Docker daemon answers again; resuming supervision of %s", self._guard.name)
                self._on_outage(False)
            try:
                self._follow()
            except ContainerGone as exc:
                if not self._closed.is_set():
                    self._on_gone(exc)
                return
            except RuntimeUnavailable as exc:
                log.debug("event stream of %s ended: %s", self._guard.name, exc)
            except Exception:  # never let the watcher die silently: report and go on
                log.exception("unexpected error while watching %s", self._guard.name)
                self._closed.wait(1.0)
            if self._closed.is_set():
                return
            if not self._gate.ping(timeout=min(5.0, self._gate.timeout)):
                self._connected.clear()
                log.warning("lost the Docker daemon; pausing hang detection and reconnecting")
                self._on_outage(True)

    def _follow(self) -> None:
        """Open the event stream, take a fresh look, then answer each lifecycle event with another."""
        stream = self._guard.events(read_timeout=self._idle)
        with self._lock:
            self._stream = stream
        if self._closed.is_set():  # closed while the stream was opening: `close` did not see it
            stream.close()
            return
        try:
            self._on_observed(Observed.from_inspect(self._guard.inspect()))
            for event in stream:
                if self._closed.is_set():
                    return
                action = str(event.get("Action") or event.get("status") or "").split(":")[0]
                if action in LIFECYCLE:
                    log.debug("event %s on %s", action, self._guard.name)
                    self._on_event(action, dict((event.get("Actor") or {}).get("Attributes") or {}))
                    self._on_observed(Observed.from_inspect(self._guard.inspect()))
        finally:
            with self._lock:
                self._stream = None
            try:
                stream.close()
            except Exception:  # already closed by the daemon or by close()
                pass
