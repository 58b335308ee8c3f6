"""Heartbeat: the job's output is its pulse; silence past a threshold is a hang.

Pure bookkeeping with an injected clock. The runtime calls `beat` for every chunk of output (the
hot path, so it does the least possible), the supervisor asks for the `deadline` and sleeps
exactly until it. A pause (the Docker daemon is away, Phoenix cannot see the output) stops the
silence from counting, so an outage is never mistaken for a hang.

A heartbeat may carry a `ProgressTracker` (``progress``): the output it is beaten with is passed on
to it, and a reset or a pause reaches it too, so the no-progress evidence (`progress.judge`) sees
the same runs and outages as the silence, under every runtime.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from phoenix_watchdog.progress.tracker import ProgressTracker


class Heartbeat:
    """Tracks the last output of a run and when silence turns into a hang.

    Args:
        timeout: seconds of silence that count as a hang once the job has written something;
            None turns hang detection off.
        initial_timeout: seconds allowed before the first output (start-up, data loading, compile);
            None means the same as ``timeout``.
        clock: monotonic seconds, for deadlines.
        wall: wall-clock seconds, for the timestamps shown to humans and Prometheus.
        progress: reads the steps out of the output; None: silence is the only evidence.
    """

    def __init__(self, timeout: float | None, initial_timeout: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 progress: ProgressTracker | None = None) -> None:
        self.timeout = timeout
        self.initial_timeout = initial_timeout if initial_timeout is not None else timeout
        self._clock = clock
        self._wall = wall
        self.last_output_wall: dict[str, float] = {}
        self._reference = clock()
        self._seen_output = False
        self._paused_since: float | None = None
        self.progress = progress

    def reset(self) -> None:
        """A new run starts now: no output yet."""
        self._reference = self._clock()
        self._seen_output = False
        self._paused_since = None
        if self.progress is not None:
            self.progress.reset()

    def beat(self, stream: str, data: bytes = b"") -> None:
        """The job wrote ``data`` to ``stream`` (``stdout``/``stderr``) just now."""
        if data and self.progress is not None:
            self.progress.feed(stream, data)
        self._reference = self._clock()
        self._seen_output = True
        self.last_output_wall[stream] = self._wall()

    def pause(self) -> None:
        """Phoenix cannot observe the job for now; silence stops counting."""
        if self._paused_since is None:
            self._paused_since = self._clock()
        if self.progress is not None:
            self.progress.pause()

    def resume(self) -> None:
        """Observation is back; the silence budget restarts from now, not from before the outage."""
        if self._paused_since is not None:
            self._paused_since = None
            self._reference = self._clock()
        if self.progress is not None:
            self.progress.resume()

    @property
    def paused(self) -> bool:
        return self._paused_since is not None

    @property
    def seen_output(self) -> bool:
        return self._seen_output

    def silent_for(self) -> float:
        """Seconds since the last output (or since the run started, before any output)."""
        end = self._paused_since if self._paused_since is not None else self._clock()
        return max(0.0, end - self._reference)

    def current_timeout(self) -> float | None:
        return self.timeout if self._seen_output else self.initial_timeout

    def deadline(self) -> float | None:
        """The monotonic time at which the job counts as hung, or None (off, or paused)."""
        limit = self.current_timeout()
        if limit is None or self._paused_since is not None:
            return None
        return self._reference + limit

    def expired(self) -> bool:
        deadline = self.deadline()
        return deadline is not None and self._clock() >= deadline

    def seconds_left(self) -> float | None:
        """Seconds until the hang deadline (never negative), or None when there is none."""
        deadline = self.deadline()
        if deadline is None:
            return None
        return max(0.0, deadline - self._clock())

    @property
    def last_output(self) -> float | None:
        """Wall time of the last output on any stream, or None before the first."""
        return max(self.last_output_wall.values()) if self.last_output_wall else None
