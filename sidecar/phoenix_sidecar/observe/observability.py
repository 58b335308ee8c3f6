"""Observability for one supervised job: metrics, ``/metrics`` + ``/healthz``, safety gates, webhook.

The supervisor (``phoenix run`` and ``phoenix watch`` alike) builds one `Observability`, calls
`start` before its loop, `loop_tick` on every iteration, `safety_trip` whenever it decides
whether the job may run, and `stop` on the way out. Everything else happens in background
threads: the NVML poller, the Xid watcher, the disk poller, the HTTP server and the webhook
sender. None of them can block the supervisor: it only ever reads cached state.

Threads: readings arrive in the poller threads, which evaluate the safety gates under a lock;
`safety_trip` reads the result under the same lock.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from prometheus_client import CollectorRegistry

from phoenix_sidecar.events import Event, EventBus, StateChanged
from phoenix_sidecar.supervise.state import JobState
from phoenix_sidecar.observe.collectors import (DiskCollector, EngineCollector, GpuCollector, HeartbeatCollector,
                                                ProgressCollector)
from phoenix_sidecar.runtime.base import EngineJob
from phoenix_sidecar.observe.metrics import PhoenixMetrics
from phoenix_sidecar.observe.http import MetricsServer
from phoenix_sidecar.observe.notify import WebhookNotifier
from phoenix_sidecar.observe.gates import GateChange, GateLimits, SafetyGates, SafetyTrip
from phoenix_sidecar.config.schema import Settings, secret
from phoenix_watchdog.probes.disk import DiskSnapshot, read_disks
from phoenix_watchdog.probes.gpu import GpuSnapshot, NvmlReader
from phoenix_watchdog.probes.gpu_poller import Sampler
from phoenix_watchdog.probes.gpu_xid import XidEvent, XidWatcher
from phoenix_watchdog.heartbeat import Heartbeat

__all__ = ["Observability", "SafetyTrip"]
log = logging.getLogger(__name__)


def _import_pynvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        log.info("nvidia-ml-py is not installed: no GPU metrics")
        return None
    return pynvml


class Observability:
    """Metrics, health endpoint, hardware safety gates and notifications for one job.

    Args:
        settings: the metrics and safety settings are read from here.
        bus: every event updates the metrics (and, when configured, goes to the webhook).
        heartbeat: the job's pulse; its last output per stream is read at scrape time.
        target: what is supervised, for humans (``phoenix_target_info``, webhook messages).
        disk_paths: the volumes to watch for free space (workspace, logs).
        nvml: the ``pynvml`` module or a stand-in; None imports ``pynvml``.
        registry: where the metrics live; a fresh one by default (never the global REGISTRY).
        clock: wall-clock seconds, for the supervisor's liveness.
        environ: where the webhook finds the API keys it must never send (``os.environ`` by default).
        engine_job: the engine's view of the job (a Slurm job), read at scrape time.
    """

    def __init__(self, settings: Settings, bus: EventBus, heartbeat: Heartbeat, *, target: str,
                 disk_paths: Sequence[str], nvml: ModuleType | Any | None = None,
                 registry: CollectorRegistry | None = None, clock: Callable[[], float] = time.time,
                 environ: Mapping[str, str] | None = None,
                 engine_job: Callable[[], EngineJob | None] = lambda: None) -> None:
        self.settings = settings
        self._environ = os.environ if environ is None else environ
        self.registry = registry if registry is not None else CollectorRegistry()
        self._bus = bus
        self._target = target
        self._clock = clock
        self._lock = threading.Lock()
        self._gates = SafetyGates(GateLimits.from_settings(settings))
        self._metrics = PhoenixMetrics(self.registry, settings, target=target)
        bus.subscribe(self._metrics)

        interval = settings.gpu_poll_seconds
        deadline = max(2.0 * interval, 1.0)  # a read this long is stuck: healthy NVML answers in ms
        module = nvml if nvml is not None else _import_pynvml()
        self._reader = NvmlReader(module)
        self._gpu: Sampler[GpuSnapshot] = Sampler(
            self._reader.read, interval, name="phoenix-nvml", deadline=deadline, on_sample=self._on_gpu_sample,
            current_call=lambda: self._reader.current_call,
            on_stall=lambda call: self._reader.count_error(call or "unknown"))
        self._xid = XidWatcher(module, on_event=self._on_xid, wait_ms=250)
        paths = [p for p in disk_paths if p]
        self._disk: Sampler[DiskSnapshot] | None = None
        if paths:
            self._disk = Sampler(lambda: read_disks(paths), interval, name="phoenix-disk", deadline=deadline,
                                 on_sample=self._on_disk_sample)
        disk = self._disk
        self.registry.register(GpuCollector(lambda: self._gpu.latest, self._gpu.health, self._reader.error_counts,
                                            self._xid.state, per_gpu=settings.gpu_metrics))
        self.registry.register(HeartbeatCollector(heartbeat, lambda: self._metrics.run_started_at))
        self.registry.register(DiskCollector(lambda: disk.latest if disk else None))
        self.registry.register(ProgressCollector(heartbeat))
        self.registry.register(EngineCollector(engine_job))

        # The supervisor wakes at least every gpu_poll_seconds; stopping a job (grace, stack dump)
        # is the longest thing it does between two ticks, followed by the LLM triage of the failure
        # when that is on (it runs on the supervisor thread, within its own time limit).
        triage = settings.llm_triage_timeout_seconds if settings.llm_triage else 0.0
        self.tick_timeout = 3 * interval + settings.kill_grace_seconds + settings.stack_dump_timeout_seconds + triage
        self._metrics.tick_timeout.set(self.tick_timeout)
        # A repair runs on the supervisor thread: LLM calls (each client in turn) and the test command.
        self.repair_allowance = (settings.llm_timeout_seconds * (1 + len(settings.fallback))
                                 + settings.test_timeout_seconds + 60.0)
        self._repairing = False
        self._final: JobState | None = None  # succeeded or gave up: the state monitoring must get to see
        self._linger_stop = threading.Event()
        bus.subscribe(self._track_state)
        self._last_tick: float | None = None
        self._tick_limit = self.tick_timeout
        self._server: MetricsServer | None = None
        self._notifier: WebhookNotifier | None = None
        self._started = self._stopped = False

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Serve metrics (when ``metrics_addr`` is set), start polling, and notify (when a webhook is set).

        Raises:
            ConfigError: the metrics address cannot be bound, or the webhook settings are invalid.
        """
        if self._started:
            return
        s = self.settings
        if s.metrics_addr:
            server = MetricsServer(self.registry, s.metrics_addr, self._health)
            server.start()  # first: a bad address fails before any thread runs
            self._server = server
        if s.webhook_url:
            secrets = [secret(s, name, self._environ) or "" for name in ("gemini_api_key", "openai_api_key")]
            try:
                notifier = WebhookNotifier(s.webhook_url, s.webhook_format, target=self._target, secrets=secrets,
                                           on_result=self._metrics.webhook_result)
            except Exception:
                self._stop_server()
                raise
            notifier.start()
            self._bus.subscribe(notifier)
            self._notifier = notifier
        self._started = True
        self.loop_tick()  # the start-up counts as the first sign of life
        self._gpu.start()
        self._xid.start()
        if self._disk is not None:
            self._disk.start()

    def stop(self) -> None:
        """Deliver pending notifications (briefly), close the server, end the threads, shut NVML down."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        if self._notifier is not None:
            self._notifier.stop()
        self._linger()
        self._stop_server()
        xid_done = self._xid.stop()
        if self._disk is not None:
            self._disk.stop()
        if self._gpu.stop() and xid_done:
            self._reader.close()
        else:
            log.warning("an NVML call is stuck; not calling nvmlShutdown")

    def _linger(self) -> None:
        """After a success or a give-up, serve ``/metrics`` until a scrape has read that final state
        (at most ``metrics_linger_seconds``): otherwise Prometheus only ever sees the target vanish,
        and cannot tell a finished job from a dead Phoenix. A Phoenix served on loopback that nobody
        scraped (a local `phoenix run`) does not wait; one served to other hosts or containers
        (``0.0.0.0``, the stack) does, since a job that fails at once ends before the first scrape."""
        server, seconds, final = self._server, self.settings.metrics_linger_seconds, self._final
        if server is None or seconds <= 0 or final is None:
            return
        if not server.scrapes.seen and _loopback(server.address[0] if server.address else "127.0.0.1"):
            return
        mark = server.scrapes.mark()
        log.info("%s: serving the final state on /metrics until Prometheus has read it (at most %gs, "
                 "metrics_linger_seconds)", "the job succeeded" if final == JobState.SUCCEEDED else "gave up", seconds)
        with _EndOnSignals(self._linger_stop, server.scrapes.wake):
            if not server.scrapes.wait_served_after(mark, seconds, self._linger_stop) and not self._linger_stop.is_set():
                log.warning("no scrape read the final state within %gs (metrics_linger_seconds)", seconds)

    def _stop_server(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """The (host, port) ``/metrics`` is served on, or None when off."""
        return self._server.address if self._server is not None else None

    # -- the supervisor's calls ------------------------------------------------------------------

    def loop_tick(self, expect_next_within: float | None = None) -> None:
        """The supervisor loop is alive. ``expect_next_within`` allows a longer gap before the next tick."""
        now = self._clock()
        with self._lock:
            self._last_tick = now
            self._tick_limit = max(self.tick_timeout, expect_next_within or 0.0)
        self._metrics.last_tick.set(now)

    def safety_trip(self) -> SafetyTrip | None:
        """The most severe tripped safety gate, or None when all are clear. Reads cached state only."""
        with self._lock:
            return self._gates.current()

    def gpu_snapshot(self) -> GpuSnapshot | None:
        """The latest NVML poll (the hang judge's busy GPUs, the reclaim wait). Reads cached state only."""
        return self._gpu.latest

    def _track_state(self, event: Event) -> None:
        if isinstance(event, StateChanged):
            self._repairing = event.state == JobState.REPAIRING
            self._final = event.state if event.state in (JobState.SUCCEEDED, JobState.GAVE_UP) else None

    def _health(self) -> tuple[bool, str]:
        with self._lock:
            last, limit = self._last_tick, self._tick_limit
        if self._repairing:
            limit += self.repair_allowance
        if self._stopped:
            return False, "shutting down"
        if last is None:
            return False, "the supervisor loop has not started"
        age = self._clock() - last
        if age > limit:
            return False, f"the supervisor loop has been silent for {age:.0f} s (limit {limit:.0f} s)"
        return True, f"ok: the supervisor loop ticked {age:.1f} s ago"

    # -- readings, in the poller threads --------------------------------------------------------

    def _on_gpu_sample(self, snapshot: GpuSnapshot) -> None:
        with self._lock:
            changes = self._gates.observe_gpus(snapshot)
        self._apply(changes)

    def _on_disk_sample(self, snapshot: DiskSnapshot) -> None:
        with self._lock:
            changes = self._gates.observe_disks(snapshot)
        self._apply(changes)

    def _on_xid(self, event: XidEvent) -> None:
        with self._lock:
            changes = self._gates.observe_xid(event)
        self._apply(changes)

    def _apply(self, changes: list[GateChange]) -> None:
        for change in changes:
            self._metrics.gate_changed(change)
            if change.trip is not None:
                log.error("safety gate %s tripped: %s", change.gate, change.trip.detail)
            else:
                log.warning("safety gate %s is clear again", change.gate)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class _EndOnSignals:
    """While the final metrics linger, SIGTERM and SIGINT end the wait (a `docker stop` is not kept
    waiting). Signal handlers can only be set from the main thread; elsewhere nothing changes."""

    def __init__(self, done: threading.Event, wake: Callable[[], None]) -> None:
        self._done, self._wake = done, wake
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, _signum: int, _frame: object) -> None:
        self._done.set()
        self._wake()
