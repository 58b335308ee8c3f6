"""`DockerRuntime`: the `Runtime` of `phoenix watch`, supervising one container through the Docker API.

A run is identified by the container's ``State.StartedAt``. `start` attaches to a container that
is already running (the first time, or after someone else started it) and otherwise starts it
through the API; `ContainerMonitor` reports every fresh inspect, and a run ends when the
container is no longer running with that ``StartedAt``. The end (exit code, OOM flag,
``FinishedAt``) comes from inspect, the tail from the log source, drained first.

A container stopped from outside Phoenix (``docker stop``/``kill``/``restart``: a ``kill`` event
with a terminating signal that Phoenix did not send precedes the exit) is the operator's decision, not a failure: the run is
held, the heartbeat paused, and supervision resumes with the next run when the container is
started again. A crash or an OOM kill has no such event.

While the daemon is away the heartbeat is paused (silence then is not a hang) and `wait` returns
early on each change so the supervisor can re-read its deadline; after the daemon returns a
fresh inspect settles what happened meanwhile. Starting and stopping the container when the API
times out is `control`'s; the output's sources are `streams`', the tail and fan-out `runtime/output.py`'s.

Every Docker call goes through the target's `TargetGuard`; every SDK exception is translated
there, so only Phoenix's errors leave this module.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.errors import ContainerGone, DockerUnreachable, RuntimeUnavailable
from phoenix_sidecar.runtime.base import RunEnd, RunStart
from phoenix_sidecar.runtime.docker import control
from phoenix_sidecar.runtime.docker.guard import DockerGate, TargetGuard
from phoenix_sidecar.runtime.docker.monitor import ContainerMonitor, Observed, setup_warnings
from phoenix_sidecar.runtime.docker.streams import FileSource, StreamSource, completed_tail, container_output
from phoenix_sidecar.runtime.output import OutputListener, OutputSink, OutputTail, wait_quiet
from phoenix_watchdog.diagnosis.failure import ExitStatus, HangInfo
from phoenix_watchdog.heartbeat import Heartbeat
from phoenix_watchdog.sources.filetail import read_last

log = logging.getLogger(__name__)
# Signals an operator stops a container with (SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGTERM), as kill events carry them.
STOP_SIGNALS = {"1", "2", "3", "9", "15"}


@dataclass
class _Run:
    """One run of the container: from a ``StartedAt`` to the inspect that shows it over."""

    started_at: str
    started_ns: int
    source: StreamSource | None  # the run's own log stream (None when the log file is followed)
    log_since_ns: int = 0  # where the run's output begins in the container's own log
    ended: Observed | None = None
    hang: HangInfo | None = None
    stopped_for: str | None = None
    stopped_outside: str | None = None  # set when someone else sent the container a stop or kill
    held: bool = False  # stopped by the operator: not over, not watched for silence, until started again


class DockerRuntime:
    """Supervises the container named by ``settings.container`` or ``settings.container_label``.

    Args:
        settings: ``container``/``container_label``, ``log_file``, ``dump_signal``,
            ``kill_grace_seconds``, ``docker_timeout_seconds``, ``stack_dump*``.
        heartbeat: fed by the log source; paused while the daemon is away.
        listeners: receive every block of the job's output (run log, console).
        gate: the Docker connection (a test can point it elsewhere).
        drain_seconds: how long to wait for the log stream's last lines after an exit.
        handled_until: wall time up to which Phoenix already dealt with the container (the state's
            last update). A failed exit found at the first start that is later than this was never
            handled: it is reported as the first run's end instead of being started over silently.
    """

    def __init__(self, settings: Settings, heartbeat: Heartbeat, *, listeners: Sequence[OutputListener] = (),
                 gate: DockerGate | None = None, drain_seconds: float = 2.0, handled_until: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._handled_until = handled_until
        self._heartbeat = heartbeat
        self._gate = gate or DockerGate(timeout=settings.docker_timeout_seconds)
        self._tail = OutputTail()
        self._sink = OutputSink(heartbeat, self._tail, listeners)
        self._drain_seconds = drain_seconds
        self._clock = clock
        self._cond = threading.Condition(threading.RLock())  # re-entrant: wakeup() may run in a signal handler
        self._guard: TargetGuard | None = None
        self._monitor: ContainerMonitor | None = None
        self._file: FileSource | None = None
        self._run: _Run | None = None
        self._gone: ContainerGone | None = None
        self._woken = False
        self._changed = False
        self._signalling = False  # Phoenix itself is signalling the container: its kill events are expected
        self.starts = 0  # container starts Phoenix made (Docker's RestartCount ignores API starts)

    # -- Runtime -------------------------------------------------------------------------------
    @property
    def target(self) -> str:
        if self._guard is not None:
            return f"container {self._guard.name}"
        return f"container {self._settings.container or 'labelled ' + self._settings.container_label}"

    @property
    def container_id(self) -> str | None:
        return self._guard.target_id if self._guard else None

    def start(self) -> RunStart:
        """Attach to the running container, or start it. Either way the run's clock is the
        container's ``StartedAt``; an attach (to a running container, or to a failure found at the
        first start) is no new run of Phoenix's.

        At the first start, a container that failed before Phoenix watched it (and after Phoenix
        last dealt with it) is taken as it is: that run is the first one, already over, so its
        failure is diagnosed and counted rather than silently started over.
        """
        first = self._guard is None
        guard = self._bind()
        now = self._observe(guard)
        with self._cond:
            self._tail.clear()
            self._heartbeat.reset()
        if now.running:
            log.info("%s is running (since %s); attaching to it", self.target, now.started_at)
            self._begin(now)
            return RunStart(now.started_ns / 1e9, attached=True)
        if first and self._unhandled_failure(now):
            log.warning("%s failed (exit code %d) at %s, before Phoenix watched it; handling that failure first",
                        self.target, now.exit_code, time.strftime("%H:%M:%S", time.localtime(now.finished_ns / 1e9)))
            if self._file is not None:
                self._tail.add(read_last(self._file.path, self._tail.max_bytes))
            self._begin(now)
            return RunStart(now.started_ns / 1e9, attached=True)
        return self._start_container(guard, now)

    def _unhandled_failure(self, now: Observed) -> bool:
        failed = now.started_ns > 0 and now.status in ("exited", "dead") and (now.exit_code != 0 or now.oom_killed)
        return failed and now.finished_ns / 1e9 > (self._handled_until or 0.0)

    def wait(self, timeout: float | None) -> RunEnd | None:
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                run, gone = self._run, self._gone
                if run is not None and run.ended is not None:
                    break
                if gone is not None:
                    break
                if self._woken or self._changed:
                    self._woken = self._changed = False
                    return None
                remaining = None if deadline is None else deadline - self._clock()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
        if gone is not None and (run is None or run.ended is None):
            self._follow_recreated(gone)
            return None
        assert run is not None
        return self._finish(run)

    def dump_stack(self) -> str | None:
        """Send ``dump_signal`` and collect what the job prints in reply (py-spy cannot reach
        into another container, so the signal is the only way here)."""
        signal, guard, run = self._settings.dump_signal, self._guard, self._run
        if not signal or self._settings.stack_dump == "off" or guard is None or run is None or run.ended:
            return None
        mark = self._tail.mark()
        self._signalling = True
        try:
            guard.kill(signal)
            source = self._file
            data = wait_quiet(self._tail, mark, drain=(lambda: source.drain(0)) if source else (lambda: None),
                              quiet=0.5, limit=self._settings.stack_dump_timeout_seconds)
        except RuntimeUnavailable as exc:
            log.warning("could not send %s to %s for a stack dump: %s", signal, self.target, exc)
            return None
        finally:
            self._signalling = False
        return data.decode("utf-8", errors="replace") or None

    def stop(self, *, hang: HangInfo | None = None, reason: str | None = None) -> RunEnd:
        """Stop the container (SIGTERM, ``kill_grace_seconds``, SIGKILL) and report how the run ended.

        Except when Phoenix itself shuts down (``reason="shutdown"``): the container is the job, not
        Phoenix's child, so it is left running, and the next `phoenix watch` attaches to it. A
        sidecar restarted for a new configuration must not cost a training run.
        """
        if reason == "shutdown":
            return self._detach()
        guard = self._bind()
        with self._cond:
            run = self._run
            if run is None:  # nothing of ours is running: report the container's last end
                run = _Run("", 0, None, ended=self._observe(guard))
            run.hang, run.stopped_for, run.stopped_outside = hang, reason, None
            self._signalling = True
        try:
            if run.ended is None:
                control.stop(guard, self._settings.kill_grace_seconds, target=self.target)
                self._on_observed(self._observe(guard))
                with self._cond:
                    self._cond.wait_for(lambda: run.ended is not None,
                                        timeout=self._settings.docker_timeout_seconds)
        finally:
            self._signalling = False
        if run.ended is None:
            raise RuntimeUnavailable(f"{self.target} did not stop")
        return self._finish(run)

    def _detach(self) -> RunEnd:
        with self._cond:
            run, self._run = self._run, None
        if run is not None and run.ended is None:
            log.warning("Phoenix is shutting down; leaving %s running (the next phoenix watch attaches to it; "
                        "docker stop stops the job)", self.target)
        if run is not None and run.source is not None:
            run.source.close()
        ended = run.ended if run is not None else None
        return RunEnd(exit=ExitStatus(code=ended.exit_code if ended else None), stopped_for="shutdown",
                      started_at=run.started_ns / 1e9 if run else time.time(), ended_at=time.time(),
                      tail=self._tail.text())

    def wakeup(self) -> None:
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def close(self) -> None:
        """Stop watching; the container itself is left as it is."""
        if self._monitor is not None:
            self._monitor.close()
        with self._cond:
            run, self._run = self._run, None
        if run is not None and run.source is not None:
            run.source.close()
        if self._file is not None:
            self._file.close()
        self._gate.close()

    # -- binding -------------------------------------------------------------------------------
    def _bind(self) -> TargetGuard:
        """The target's guard; found (again, if it was removed) by name or label."""
        if self._guard is not None and self._gone is None:
            return self._guard
        s = self._settings
        guard = self._gate.find(name=s.container, label=s.container_label)
        if self._guard is not None and guard.target_id != self._guard.target_id:
            log.warning("%s was recreated (%s -> %s); supervising the new container",
                        guard.name, self._guard.target_id[:12], guard.target_id[:12])
        first = self._guard is None
        if self._monitor is not None:
            self._monitor.close()
        self._guard, self._gone = guard, None
        if first:
            for warning in setup_warnings(guard.inspect(), self._settings.workspace, self.target):
                log.warning("%s", warning)
        if s.log_file and self._file is None:
            self._file = FileSource(s.log_file, self._sink)
        self._monitor = ContainerMonitor(self._gate, guard, on_observed=self._on_observed, on_event=self._on_event,
                                         on_outage=self._on_outage, on_gone=self._on_gone)
        self._monitor.start()
        return guard

    def _follow_recreated(self, gone: ContainerGone) -> None:
        """The container was removed: follow a new one under the same name or label, or give up."""
        deadline = self._clock() + self._settings.docker_timeout_seconds
        while True:
            try:
                guard = self._bind()
                now = self._observe(guard)
                if now.running:
                    self._begin(now)
                    return
            except ContainerGone:
                pass
            if self._clock() >= deadline:
                raise ContainerGone(f"{self.target} was removed ({gone}); nothing to supervise")
            time.sleep(0.5)

    # -- runs ----------------------------------------------------------------------------------
    def _observe(self, guard: TargetGuard) -> Observed:
        return control.observe(guard)

    def _start_container(self, guard: TargetGuard, before: Observed) -> RunStart:
        assert self._monitor is not None
        if not self._monitor.wait_connected(self._settings.docker_timeout_seconds):
            raise DockerUnreachable(f"cannot start {self.target}: the Docker daemon is not answering")
        now = control.start_once(guard, before, target=self.target)
        self.starts += 1
        self._begin(now, since_ns=max(before.finished_ns + 1, now.started_ns - 1_000_000_000))
        return RunStart(now.started_ns / 1e9)

    def _begin(self, now: Observed, since_ns: int | None = None) -> None:
        """A run that began at ``now.started_at`` is the one supervised from here on."""
        assert self._guard is not None and self._monitor is not None
        with self._cond:
            old, self._run = self._run, None
            if old is not None and old.source is not None:
                old.source.close()
            source = None
            since_ns = since_ns or now.log_since_ns
            if not self._settings.log_file:
                source = StreamSource(self._guard, self._sink, since_ns=since_ns, tty=now.tty,
                                      connected=self._monitor.wait_connected)
            self._run = _Run(now.started_at, now.started_ns, source, log_since_ns=since_ns)
            self._heartbeat.reset()
        self._on_observed(now)  # a run that is already over (crashed at once) ends right here

    def _on_observed(self, now: Observed) -> None:
        """A fresh inspect (from the monitor's thread or ours): does it end the current run?"""
        with self._cond:
            run = self._run
            if run is None or run.ended is not None:
                return
            if now.started_at == run.started_at:
                if now.running or now.status not in ("exited", "dead"):
                    return
                if run.stopped_outside and not self._signalling:
                    self._hold(run)
                    return
                run.ended = now
                self._cond.notify_all()
                return
            if now.started_ns <= run.started_ns:
                return
            if now.running:
                log.warning("%s was restarted outside Phoenix (started %s); following the new run",
                            self.target, now.started_at)
                self._tail.clear()
                self._begin(now)
            else:  # ours ended, and a later run too, while Phoenix could not see
                run.ended = now
                self._cond.notify_all()

    def _on_event(self, action: str, attributes: dict[str, str]) -> None:
        # Every API stop, kill and restart sends a `kill` event before the exit; a crash, an OOM kill
        # or the job's own exit does not. (The `stop` event comes after the exit: too late to tell.)
        if action != "kill" or self._signalling or attributes.get("signal") not in STOP_SIGNALS:
            return
        with self._cond:
            if self._run is not None and self._run.ended is None and self._run.stopped_outside is None:
                self._run.stopped_outside = f"signal {attributes['signal']}"

    def _hold(self, run: _Run) -> None:
        """The operator stopped the container: not a failure; wait for it to be started again."""
        if run.held:
            return
        run.held = True
        log.warning("%s was stopped from outside Phoenix (%s); not a failure: supervision resumes when "
                    "it is started again (docker start)", self.target, run.stopped_outside)
        self._heartbeat.pause()
        self._changed = True
        self._cond.notify_all()

    def _on_outage(self, down: bool) -> None:
        with self._cond:
            if down:
                self._heartbeat.pause()
            elif self._run is None or not self._run.held:
                self._heartbeat.resume()
            self._changed = True
            self._cond.notify_all()

    def _on_gone(self, exc: ContainerGone) -> None:
        with self._cond:
            self._gone = exc
            self._cond.notify_all()

    def _finish(self, run: _Run) -> RunEnd:
        """Drain the log source, then report the run's end (once)."""
        source = run.source or self._file
        if source is not None:
            source.drain(self._drain_seconds)
        ended = run.ended
        assert ended is not None
        tail = self._tail.text()
        if run.source is None and self._guard is not None and run.started_ns:  # the file may lack an early crash
            tail = completed_tail(tail, container_output(
                self._guard, since_ns=run.log_since_ns or run.started_ns - 1_000_000_000,
                until_ns=ended.finished_ns + 1_000_000_000, tty=ended.tty, limit=self._tail.max_bytes))
        if ended.error:
            tail += f"\n[docker] {ended.error}\n"
        with self._cond:
            if self._run is run:
                self._run = None
        if run.source is not None:
            run.source.close()
        return RunEnd(exit=ExitStatus(code=ended.exit_code, oom_killed=ended.oom_killed),
                      started_at=(run.started_ns or ended.started_ns) / 1e9, ended_at=ended.finished_ns / 1e9,
                      tail=tail, hang=run.hang, stopped_for=run.stopped_for)
