"""The job's output on its way through Phoenix, the same for every runtime.

Every block of output a runtime reads (a pipe, a Docker log stream, the shared log file) goes to
one `OutputSink`, which keeps the bounded `OutputTail` the diagnosis reads, passes the block on to
the listeners (the terminal, the run log) and beats the heartbeat with it (whose progress tracker
reads the steps out of it: the same under every runtime). The tail is cut at a line
boundary once it has dropped older output, so the diagnosis never starts on half a line.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from phoenix_sidecar.runtime.base import OutputListener
from phoenix_watchdog.heartbeat import Heartbeat

log = logging.getLogger(__name__)

__all__ = ["OutputListener", "OutputSink", "OutputTail", "TAIL_BYTES", "wait_quiet"]
TAIL_BYTES = 256 * 1024


class OutputTail:
    """The last ``max_bytes`` of a run's output, as the diagnosis reads it. Thread-safe.

    Positions (`mark`, `since`) count every byte added since the tail was made, across `clear`,
    so a mark taken before a clear stays meaningful.
    """

    def __init__(self, max_bytes: int = TAIL_BYTES) -> None:
        self.max_bytes = max_bytes
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._total = 0
        self._dropped = False  # older output of this run was let go: the first chunk may start mid-line
        self._lock = threading.Lock()

    def add(self, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            self._chunks.append(data)
            self._size += len(data)
            self._total += len(data)
            while self._size - len(self._chunks[0]) >= self.max_bytes:
                self._size -= len(self._chunks.popleft())
                self._dropped = True

    def clear(self) -> None:
        """Forget the output so far (a new run begins)."""
        with self._lock:
            self._chunks.clear()
            self._size = 0
            self._dropped = False

    def mark(self) -> int:
        """A position in the output, for `since`."""
        with self._lock:
            return self._total

    def since(self, mark: int) -> bytes:
        """What was added after ``mark`` (as much of it as the buffer still holds)."""
        with self._lock:
            data = b"".join(self._chunks)
            return data[max(0, len(data) - (self._total - mark)):]

    def text(self) -> str:
        """The last ``max_bytes`` as text, starting at a line boundary once older output was let go."""
        with self._lock:
            data = b"".join(self._chunks)
            cut = self._dropped
        if len(data) > self.max_bytes:
            data = data[-self.max_bytes:]
            cut = True
        if cut:
            newline = data.find(b"\n")
            if 0 <= newline < len(data) - 1:  # a tail that is one unfinished line is kept as it is
                data = data[newline + 1:]
        return data.decode("utf-8", errors="replace")


class OutputSink:
    """Receives every block of output: fills the tail, tells the listeners, beats the heartbeat.

    A listener that raises is logged and skipped: a broken console or run log must not stop
    supervision, nor keep the output from the others.
    """

    def __init__(self, heartbeat: Heartbeat, tail: OutputTail | None = None,
                 listeners: Sequence[OutputListener] = ()) -> None:
        self.heartbeat = heartbeat
        self.tail = tail if tail is not None else OutputTail()
        self.listeners = list(listeners)

    def __call__(self, stream: str, data: bytes) -> None:
        self.tail.add(data)
        for listener in self.listeners:
            try:
                listener(stream, data)
            except Exception:
                log.exception("output listener %r failed", listener)
        self.heartbeat.beat(stream, data)  # and its progress tracker reads the steps in it


def wait_quiet(tail: OutputTail, mark: int, *, drain: Callable[[], None], quiet: float, limit: float,
               clock: Callable[[], float] = time.monotonic) -> bytes:
    """Collect output after ``mark`` until ``quiet`` seconds pass without more (after the first),
    or ``limit`` seconds in all. For the stack dump a signalled job prints.

    Args:
        drain: brings in what the job wrote meanwhile (polls the log file); it should be short.
    """
    deadline = clock() + limit
    last_size, last_change = 0, clock()
    while clock() < deadline:
        drain()
        size = tail.mark() - mark
        now = clock()
        if size != last_size:
            last_size, last_change = size, now
        elif size > 0 and now - last_change >= quiet:
            break
        time.sleep(0.05)
    return tail.since(mark)


def echo(stream: str, data: bytes) -> None:
    """An `OutputListener` that shows a watched job's output on Phoenix's own, as `phoenix run` passes
    a local job's through: its stderr to stderr, its stdout (or its log file) to stdout."""
    out = sys.stderr if stream == "stderr" else sys.stdout
    try:
        out.buffer.write(data)
        out.buffer.flush()
    except (OSError, ValueError):
        pass  # our stdout is gone; the run log still has it
