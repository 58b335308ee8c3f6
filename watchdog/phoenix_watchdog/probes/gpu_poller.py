"""Background sampling: a read runs in its own daemon thread every interval; readers get the latest.

NVML (and a statvfs on a dead network mount) can block forever inside the driver. Reading on the
scrape path would then hang ``/metrics`` and the supervisor with it. So reads run here, scrapes and
safety checks look at the cached result, and a read that has been running past its deadline is
reported as stalled, naming the call it is stuck in. A stalled thread cannot be killed; `stop`
gives up on joining it (it is a daemon) instead of hanging the shutdown.

`Sampler` is generic: the GPU poller and the disk poller are two instances.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from phoenix_watchdog.worker import Worker

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class SamplerHealth:
    """How the sampler is doing, for the collector-health metrics.

    Attributes:
        samples: completed reads so far.
        stalled: the current read has been running past the deadline.
        stalled_call: what the stalled read is stuck in, when the read function says so.
        in_flight_seconds: how long the current read has been running, or None between reads.
        cpu_seconds: CPU time the sampler thread has spent reading (``time.thread_time``).
    """

    samples: int
    stalled: bool
    stalled_call: str | None
    in_flight_seconds: float | None
    cpu_seconds: float


class Sampler(Generic[T]):
    """Runs ``read`` every ``interval`` seconds in a daemon thread and keeps the latest result.

    Args:
        read: the read; should not raise (an exception is logged and the sample skipped).
        interval: seconds between the starts of two reads.
        name: the thread's name.
        deadline: seconds after which a read counts as stalled.
        on_sample: called in the sampler thread with each new result (keep it quick).
        current_call: names what the read is doing right now, for the stalled report.
        on_stall: called once per stall with the stuck call's name (or None).
    """

    def __init__(self, read: Callable[[], T], interval: float, *, name: str, deadline: float,
                 on_sample: Callable[[T], None] | None = None,
                 current_call: Callable[[], str | None] | None = None,
                 on_stall: Callable[[str | None], None] | None = None,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._interval = interval
        self._name = name
        self._deadline = deadline
        self._on_sample = on_sample
        self._current_call = current_call
        self._on_stall = on_stall
        self._mono = mono
        self._lock = threading.Lock()
        self._worker = Worker(self._run, name)
        self._stop = self._worker.stopping
        self._latest: T | None = None
        self._samples = 0
        self._in_flight_since: float | None = None
        self._stall_reported = False
        self._cpu = 0.0

    def start(self) -> None:
        self._worker.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the thread to end and wait up to ``timeout``. False if it is stuck in a read."""
        if self._worker.stop(timeout):
            return True
        log.warning("%s: a read is stuck (%s); leaving its thread behind", self._name,
                    self.health().stalled_call or "unknown call")
        return False

    @property
    def latest(self) -> T | None:
        """The most recent completed read, or None before the first."""
        with self._lock:
            return self._latest

    def health(self) -> SamplerHealth:
        """The sampler's state; reports (once per stall) a read stuck past its deadline."""
        report = False
        with self._lock:
            since = self._in_flight_since
            running = None if since is None else self._mono() - since
            stalled = running is not None and running > self._deadline
            call = self._current_call() if stalled and self._current_call else None
            if stalled and not self._stall_reported:
                self._stall_reported = report = True
            samples, cpu = self._samples, self._cpu
        if report:
            log.error("%s: a read has been running for %.1f s (stuck in %s); serving cached values",
                      self._name, running, call or "an unknown call")
            if self._on_stall:
                self._on_stall(call)
        return SamplerHealth(samples, stalled, call, running, cpu)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = self._mono()
            with self._lock:
                self._in_flight_since = began
            cpu0 = time.thread_time()
            try:
                value: T | None = self._read()
            except Exception:
                log.exception("%s: read failed", self._name)
                value = None
            with self._lock:
                self._in_flight_since = None
                self._stall_reported = False
                if value is not None:
                    self._latest = value
                    self._samples += 1
            if value is not None and self._on_sample is not None:
                try:
                    self._on_sample(value)
                except Exception:
                    log.exception("%s: sample handler failed", self._name)
            with self._lock:
                self._cpu += time.thread_time() - cpu0  # the whole cost of a cycle: read and handler
            self._stop.wait(max(0.0, self._interval - (self._mono() - began)))
