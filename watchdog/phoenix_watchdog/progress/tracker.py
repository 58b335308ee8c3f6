"""The progress of one job over time: steps, the learned no-progress timeout, divergence, slowdown.

`ProgressTracker` is fed the job's output (`feed`, from the output tail's reader threads) and read
by the supervisor (`snapshot`, `progress_deadline`, `divergence`). It is bookkeeping on injected
clocks behind one lock; the parsing is `parse`'s.

- Progress is a new step number. The learned timeout is ``safety_factor`` times a high percentile
  (the 99th) of the recent intervals between progress reports, bounded by ``timeout_min`` and
  ``timeout_max``. The first ``warmup_steps`` reports of a run (compilation, the first batches)
  teach nothing, and the timeout needs ``MIN_SAMPLES`` intervals; the intervals persist across
  restarts of the job (`LearnedTimeout`), so a restarted run is guarded from its first step.
- Divergence: a NaN or infinite loss at once; a loss above ``blowup_factor`` times the running
  median of the run's losses on ``blowup_steps`` reports in a row.
- Slowdown: steps per second below ``slowdown_fraction`` of their running median for
  ``slowdown_seconds``. Reported, never acted on.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from phoenix_watchdog.progress.parse import MAX_LINE, ProgressParser, Reading, may_hold_progress

__all__ = ["Divergence", "LearnedTimeout", "ProgressSnapshot", "ProgressTracker"]
MIN_SAMPLES = 3
WINDOW = 128           # intervals kept (and persisted) for the learned timeout
LOSS_WINDOW = 100      # finite losses behind the running median
LOSS_MIN_SAMPLES = 10  # losses needed before a blow-up can be called
RATE_WINDOW = 120
# Lines read per block of output: the job's writes wait on the reader thread, so a job printing
# thousands of step lines per read must not pay for every one. The latest are the ones that count
# (the step, and a NaN persists); a real job prints a few progress lines per second.
MAX_LINES_PER_BLOCK = 64
BLOCK_WINDOW = 16 * 1024  # only the end of a big block is looked at, for the same reason


@dataclass(frozen=True)
class Divergence:
    """The loss went wrong. ``kind``: ``nan`` (NaN or infinite) or ``blowup`` (above a multiple of its median)."""

    kind: str
    step: int | None
    loss: float
    detail: str


@dataclass
class LearnedTimeout:
    """What the tracker learned about the job's pace, kept in state.json across restarts."""

    intervals: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"intervals": [round(i, 3) for i in self.intervals[-WINDOW:]]}

    @classmethod
    def from_json(cls, data: object) -> LearnedTimeout:
        raw = data.get("intervals") if isinstance(data, dict) else None
        values = [float(v) for v in raw if isinstance(v, (int, float)) and v >= 0] if isinstance(raw, list) else []
        return cls(values[-WINDOW:])


@dataclass(frozen=True)
class ProgressSnapshot:
    """The progress of the current run, for the metrics, `phoenix status` and the incident."""

    step: int | None = None
    best_step: int | None = None
    total: int | None = None
    steps_seen: int = 0
    loss: float | None = None
    steps_per_second: float | None = None
    throughput: float | None = None
    unit: str = ""
    last_progress_wall: float | None = None
    interval_seconds: float | None = None
    timeout_seconds: float | None = None
    slowdown: bool = False
    fmt: str = ""
    divergence: Divergence | None = None


class ProgressTracker:
    """Follows the steps a job reports. Thread-safe: `feed` from reader threads, the rest from the loop."""

    def __init__(self, parser: ProgressParser | None = None, *, safety_factor: float = 5.0, warmup_steps: int = 5,
                 timeout_min: float = 60.0, timeout_max: float = 3600.0, learned: LearnedTimeout | None = None,
                 blowup_factor: float = 10.0, blowup_steps: int = 5, slowdown_fraction: float = 0.5,
                 slowdown_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.parser = parser or ProgressParser()
        self.safety_factor = safety_factor
        self.warmup_steps = warmup_steps
        self.timeout_min = timeout_min
        self.timeout_max = max(timeout_max, timeout_min)
        self.blowup_factor = blowup_factor
        self.blowup_steps = blowup_steps
        self.slowdown_fraction = slowdown_fraction
        self.slowdown_seconds = slowdown_seconds
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._intervals: deque[float] = deque((learned.intervals if learned else [])[-WINDOW:], maxlen=WINDOW)
        self._partial: dict[str, bytes] = {}
        self._parsed_partial: dict[str, str] = {}
        self.reset()

    # -- feeding (reader threads) -------------------------------------------------------------
    def feed(self, stream: str, data: bytes) -> None:
        """A block of the job's output on ``stream``; lines end at ``\\n`` or ``\\r`` (progress bars)."""
        if not data:
            return
        with self._lock:
            buffered = self._partial.get(stream, b"") + data
            if len(buffered) > BLOCK_WINDOW:
                cut = buffered.find(b"\n", len(buffered) - BLOCK_WINDOW)
                if cut >= 0:
                    buffered = buffered[cut + 1:]
                    self._parsed_partial.pop(stream, None)
            if self.parser.pattern is None and not may_hold_progress(buffered):
                # Nothing here can be progress (the common case for chatty jobs): keep the unfinished line only.
                cut = max(buffered.rfind(b"\n"), buffered.rfind(b"\r"))
                if cut >= 0:
                    self._parsed_partial.pop(stream, None)
                self._partial[stream] = buffered[cut + 1:][-MAX_LINE:]
                return
            *lines, rest = buffered.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            done_partial = self._parsed_partial.pop(stream, None) if lines else self._parsed_partial.get(stream)
            if len(lines) > MAX_LINES_PER_BLOCK:
                lines, done_partial = lines[-MAX_LINES_PER_BLOCK:], None
            for index, raw in enumerate(lines):
                text = raw[-MAX_LINE:].decode("utf-8", errors="replace")
                if index == 0 and text == done_partial:
                    continue  # already read while it was unfinished (a bar that is refreshed in place)
                self._observe_line(text)
            self._partial[stream] = rest[-MAX_LINE:]
            # A progress bar is rewritten in place without a newline: read the unfinished line now.
            if rest and rest.rstrip().endswith((b"]", b"s", b"%")):
                text = rest[-MAX_LINE:].decode("utf-8", errors="replace")
                if self._parsed_partial.get(stream) != text:
                    self._parsed_partial[stream] = text
                    self._observe_line(text)

    def observe(self, reading: Reading) -> None:
        """Record one reading now (for callers that parse themselves)."""
        with self._lock:
            self._record(reading)

    def _observe_line(self, line: str) -> None:
        reading = self.parser.parse(line)
        if reading is not None:
            self._record(reading)

    # -- run lifecycle (the loop) -------------------------------------------------------------
    def reset(self) -> None:
        """A new run starts: no steps yet. What was learned about the pace stays."""
        with self._lock:
            self._step: int | None = None
            self._best: int | None = None
            self._total: int | None = None
            self._seen = 0
            self._loss: float | None = None
            self._throughput: float | None = None
            self._unit = ""
            self._fmt = ""
            self._last: float | None = None
            self._last_wall: float | None = None
            self._paused_since: float | None = None
            self._losses: deque[float] = deque(maxlen=LOSS_WINDOW)
            self._high_losses = 0
            self._divergence: Divergence | None = None
            self._rates: deque[float] = deque(maxlen=RATE_WINDOW)
            self._recent: deque[tuple[float, int]] = deque(maxlen=11)
            self._rate: float | None = None
            self._slow_since: float | None = None
            self._partial.clear()
            self._parsed_partial.clear()

    def pause(self) -> None:
        """Phoenix cannot see the output for now: time without progress stops counting."""
        with self._lock:
            if self._paused_since is None:
                self._paused_since = self._clock()

    def resume(self) -> None:
        with self._lock:
            if self._paused_since is not None:
                self._paused_since = None
                if self._last is not None:
                    self._last = self._clock()

    # -- reading (the loop, metrics) ----------------------------------------------------------
    @property
    def learned(self) -> LearnedTimeout:
        with self._lock:
            return LearnedTimeout(list(self._intervals))

    @property
    def divergence(self) -> Divergence | None:
        with self._lock:
            return self._divergence

    def timeout(self) -> float | None:
        """The learned no-progress timeout in seconds, or None while there is too little to learn from."""
        with self._lock:
            return self._timeout()

    def progress_deadline(self) -> float | None:
        """The monotonic time at which no new step means a hang; None before steps, unlearned, or paused."""
        with self._lock:
            limit = self._timeout()
            if limit is None or self._last is None or self._paused_since is not None:
                return None
            return self._last + limit

    def no_progress_for(self) -> float:
        """Seconds since the last new step of this run (0 before the first)."""
        with self._lock:
            if self._last is None:
                return 0.0
            end = self._paused_since if self._paused_since is not None else self._clock()
            return max(0.0, end - self._last)

    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            now = self._clock()
            slow = self._slow_since is not None and now - self._slow_since >= self.slowdown_seconds
            return ProgressSnapshot(
                step=self._step, best_step=self._best, total=self._total, steps_seen=self._seen, loss=self._loss,
                steps_per_second=self._rate, throughput=self._throughput, unit=self._unit,
                last_progress_wall=self._last_wall, interval_seconds=self._interval(),
                timeout_seconds=self._timeout(), slowdown=slow, fmt=self._fmt, divergence=self._divergence)

    # -- the bookkeeping (under the lock) -----------------------------------------------------
    def _interval(self) -> float | None:
        if len(self._intervals) < MIN_SAMPLES:
            return None
        ordered = sorted(self._intervals)
        return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]

    def _timeout(self) -> float | None:
        interval = self._interval()
        if interval is None:
            return None
        return min(self.timeout_max, max(self.timeout_min, self.safety_factor * interval))

    def _record(self, reading: Reading) -> None:
        now = self._clock()
        if reading.fmt:
            self._fmt = reading.fmt
        if reading.throughput is not None:
            self._throughput, self._unit = reading.throughput, reading.unit
        if reading.total is not None:
            self._total = reading.total
        if reading.step is not None and reading.step != self._step:
            self._progress(reading.step, now)
        if reading.loss is not None:
            self._check_loss(reading.loss)

    def _progress(self, step: int, now: float) -> None:
        if self._last is not None and self._paused_since is None and self._seen > self.warmup_steps:
            # The first reports of a run include start-up work (compilation, warm caches): not the pace.
            self._intervals.append(now - self._last)
        if self._step is not None and step < self._step:
            self._recent.clear()  # a bar that starts again (a new epoch): no rate across the jump
        self._recent.append((now, step))
        self._note_rate(now)
        self._step = step
        self._best = step if self._best is None else max(self._best, step)
        self._seen += 1
        self._last = now
        self._last_wall = self._wall()

    def _note_rate(self, now: float) -> None:
        if len(self._recent) < 2:
            return
        (t0, s0), (t1, s1) = self._recent[0], self._recent[-1]
        if t1 <= t0 or s1 <= s0:
            return
        self._rate = (s1 - s0) / (t1 - t0)
        if len(self._rates) >= MIN_SAMPLES:
            median = statistics.median(self._rates)
            if self._rate < self.slowdown_fraction * median:
                self._slow_since = self._slow_since if self._slow_since is not None else now
            else:
                self._slow_since = None
        if self._slow_since is None:  # a slow stretch does not drag its own reference down
            self._rates.append(self._rate)

    def _check_loss(self, loss: float) -> None:
        self._loss = loss
        if self._divergence is not None:
            return
        if not math.isfinite(loss):
            self._divergence = Divergence("nan", self._step, loss,
                                          f"the loss is {loss} at step {self._step if self._step is not None else '?'}")
            return
        if len(self._losses) >= LOSS_MIN_SAMPLES:
            median = statistics.median(self._losses)
            if median > 0 and loss > self.blowup_factor * median:
                self._high_losses += 1
                if self._high_losses >= self.blowup_steps:
                    self._divergence = Divergence(
                        "blowup", self._step, loss,
                        f"the loss blew up: {loss:g} at step {self._step if self._step is not None else '?'}, "
                        f"above {self.blowup_factor:g} x its running median {median:g} for "
                        f"{self._high_losses} reports in a row")
                return
        self._high_losses = 0
        self._losses.append(loss)
