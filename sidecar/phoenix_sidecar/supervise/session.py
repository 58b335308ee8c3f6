"""Builds one supervision session: everything `phoenix run` and `phoenix watch` have in common.

The lock is taken first and released last; nothing else happens without it. Then the state
store, the run log, the event bus with its listeners (console, run log, metrics, webhook), the
heartbeat, the runtime (`runtime.create` picks it for the mode), observability, the repair engine, the
LLM triage (``llm_triage``) and signal handling are put together around one `Supervisor`, and torn down in reverse order whatever happens.

One redactor (`phoenix_sidecar.redact`), built from the environment, the LLM keys and the job's
command line, scrubs everything the session keeps or shows: the runs' output tails (so the
diagnosis, the incidents in ``state.json``, ``incidents/*.log`` and the give-up summary never hold
a secret), console lines and the run log. The job's own output reaches the terminal untouched.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from phoenix_sidecar.config.loader import LoadedConfig, secret
from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.errors import GaveUp, StateError
from phoenix_sidecar.redact import Redactor
from phoenix_sidecar.runtime import RunEnd, Runtime, engine_job_of
from phoenix_sidecar.observe.console import ConsoleReporter, RunLogRecorder
from phoenix_sidecar.events import EventBus
from phoenix_sidecar.supervise.lock import WorkspaceLock
from phoenix_sidecar.observe.observability import Observability
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.repair import RepairEngine
from phoenix_sidecar.observe.runlog import RunLog
from phoenix_sidecar import runtime as runtimes
from phoenix_sidecar.supervise.state import StateStore, read_state
from phoenix_sidecar.supervise.loop import Supervisor
from phoenix_sidecar.supervise.triage_llm import LlmTriager
from phoenix_watchdog.heartbeat import Heartbeat
from phoenix_watchdog.probes.disk import read_disks

GIB = 1024 ** 3

log = logging.getLogger(__name__)
_SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def supervise(loaded: LoadedConfig, *, mode: str, description: str, reset_budgets: bool = False,
              log_dirs: tuple[str, ...] = (), echo: bool = True) -> int:
    """Run a supervision session to its end and return the exit code.

    Args:
        loaded: the effective configuration.
        mode: ``run`` (a local process group) or ``watch`` (a container): picks the runtime
            (`phoenix_sidecar.runtime.create`), and is recorded in the state for `phoenix status`.
        description: what the lock records as the holder's command.
        reset_budgets: forget the attempts spent so far (after a human fixed the cause).
        log_dirs: further directories whose free space the disk gate watches (the log volume).
        echo: pass the job's output on to Phoenix's stdout and stderr.

    Raises:
        LockHeld: another Phoenix holds the workspace.
        GaveUp: the job failed beyond its budgets, or needs a human.
    """
    settings = loaded.settings
    paths = StatePaths(loaded.workspace).ensure()
    with ExitStack() as stack:
        lock = WorkspaceLock(paths.lock, stale_seconds=settings.lock_stale, command=description)
        lock.acquire()
        stack.callback(lock.release)
        check_disks(settings.min_free_disk_gb, (str(paths.workspace), str(paths.root), *log_dirs))

        keys = [secret(settings, "gemini_api_key"), secret(settings, "openai_api_key")]
        redactor = Redactor.for_command(os.environ, settings.train_cmd or (), keys)
        runlog = RunLog(paths.run_log, max_bytes=settings.log_max_bytes, backups=settings.log_backups,
                        scrub=redactor.text)
        stack.callback(runlog.close)
        bus = EventBus([ConsoleReporter(scrub=redactor.text), RunLogRecorder(runlog)])
        heartbeat = Heartbeat(settings.heartbeat_seconds, settings.heartbeat_initial_seconds)
        # A failed exit after Phoenix's last word on this workspace was never handled (see RuntimeContext).
        previous = read_state(paths.state)
        # The job inherits the lock: a job that outlives a killed Phoenix keeps the workspace locked.
        program = os.path.basename(settings.train_cmd[0]) if settings.train_cmd else ""
        runtime = _Scrubbed(runtimes.create(
            settings, mode=mode, heartbeat=heartbeat, record=runlog.output, echo=echo,
            handled_until=previous.job.updated_at if previous is not None else None,
            keep_fds=(lock.fd,) if lock.fd is not None else (), on_start=lambda pid: lock.note_job(pid, program)),
            redactor)
        stack.callback(runtime.close)

        gates = Observability(settings, bus, heartbeat, target=runtime.target,
                              disk_paths=(str(paths.workspace), *log_dirs), engine_job=lambda: engine_job_of(runtime))
        gates.start()
        stack.callback(gates.stop)
        repair = None
        if settings.repair:
            repair = RepairEngine(settings, paths, bus, config_file=loaded.config_file)
            repair.prune_stale()

        triage = build_triager(settings, bus, paths.workspace, redactor) if settings.llm_triage else None
        store = StateStore(paths.state)
        supervisor = Supervisor(settings, runtime, heartbeat, store, bus, paths, repair=repair, gates=gates,
                                triage=triage)
        if reset_budgets:
            supervisor.reset_budgets()
        supervisor.state.supervisor = {"mode": mode, "pid": os.getpid(), "host": socket.gethostname(),
                                       "started": time.time(), "metrics": _metrics_address(gates)}
        runlog.event("session_started", mode=mode, workspace=str(paths.workspace), pid=os.getpid())
        stack.enter_context(_ShutdownOnSignals(supervisor))
        try:
            return supervisor.run()
        except GaveUp as exc:
            raise GaveUp(redactor.text(exc.summary), redactor.data(exc.incident)) from None  # type: ignore[arg-type]


def build_triager(settings: Settings, bus: EventBus, workspace: Path, redactor: Redactor) -> LlmTriager:
    """The LLM triage of unknown failures (``llm_triage``), for a session and for ``phoenix diagnose --triage``."""
    return LlmTriager(settings, bus, os.environ, workspace, scrub=redactor.text)


def check_disks(min_free_gb: float, paths: tuple[str, ...]) -> None:
    """The disk gate, before the first start: the poller's first readings come only after the job
    started, and a job started on a full disk fails for a reason that is not its own.

    Raises:
        StateError: a watched volume has less free space than ``min_free_disk_gb`` (0: no check).
    """
    if min_free_gb <= 0:
        return
    for volume in read_disks(paths).volumes:
        if volume.ok and volume.free_bytes < min_free_gb * GIB:
            raise StateError(f"only {volume.free_bytes / GIB:.2f} GB free on the volume of {volume.path}, below "
                             f"min_free_disk_gb ({min_free_gb:g}); nothing was started: free some space (or "
                             f"lower min_free_disk_gb) and run again")


class _Scrubbed:
    """A runtime whose run ends and stack dumps carry no secrets: everything downstream of them
    (diagnosis, incidents, state, repair prompts) sees the redacted tail. The rest is the runtime's."""

    def __init__(self, runtime: Runtime, redactor: Redactor) -> None:
        self._runtime = runtime
        self._redactor = redactor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)

    def _end(self, end: RunEnd | None) -> RunEnd | None:
        if end is None:
            return None
        hang = end.hang
        if hang is not None and hang.stack:
            hang = dataclasses.replace(hang, stack=self._redactor.text(hang.stack))
        return dataclasses.replace(end, tail=self._redactor.text(end.tail), hang=hang)

    def wait(self, timeout: float | None) -> RunEnd | None:
        return self._end(self._runtime.wait(timeout))

    def stop(self, **kwargs: Any) -> RunEnd:
        end = self._end(self._runtime.stop(**kwargs))
        assert end is not None
        return end

    def dump_stack(self) -> str | None:
        stack = self._runtime.dump_stack()
        return self._redactor.text(stack) if stack else stack


class _ShutdownOnSignals:
    """SIGTERM, SIGINT and SIGHUP ask the supervisor to stop the job and return."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        for signum in _SHUTDOWN_SIGNALS:
            self.previous[signum] = signal.signal(signum, self._handle)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, _frame: object) -> None:
        # A second signal changes nothing: interrupting the stop half-way would orphan the job.
        if not self.supervisor.shutdown_requested:
            self.supervisor.request_shutdown(signum)


def _metrics_address(gates: Observability) -> str | None:
    address = gates.metrics_address
    return f"{address[0]}:{address[1]}" if address else None
