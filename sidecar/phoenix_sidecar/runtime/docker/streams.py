"""Where the supervised container's output comes from and where it goes.

Two sources, one sink. `FileSource` follows the log file the job writes on the shared volume
(`phoenix_watchdog.sources.filetail`); `StreamSource` reads the Docker log stream of one run
(`phoenix_watchdog.sources.dockerlogs`), reconnecting after a daemon outage without repeating a line.
Both hand every block of output to an `OutputSink`, which beats the heartbeat, keeps a bounded
`OutputTail` for the diagnosis, and passes the output on to listeners (the run log, the console).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from phoenix_sidecar.runtime.docker.guard import TargetGuard
from phoenix_sidecar.errors import RuntimeUnavailable
from phoenix_watchdog.sources.dockerlogs import DockerLogReader, LogCursor
from phoenix_watchdog.sources.filetail import FileTailer
from phoenix_watchdog.heartbeat import Heartbeat

log = logging.getLogger(__name__)

OutputListener = Callable[[str, bytes], None]  # (stream, data)
FILE_STREAM = "log"  # the stream name of output read from the shared log file


class OutputTail:
    """The last ``max_bytes`` of a run's output, as the diagnosis reads it. Thread-safe."""

    def __init__(self, max_bytes: int = 256 * 1024) -> None:
        self.max_bytes = max_bytes
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._total = 0
        self._lock = threading.Lock()

    def add(self, data: bytes) -> None:
        with self._lock:
            self._chunks.append(data)
            self._size += len(data)
            self._total += len(data)
            while self._size - len(self._chunks[0]) >= self.max_bytes:
                self._size -= len(self._chunks.popleft())

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._size = 0

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
        """The tail as text, starting at a line boundary once the buffer has wrapped."""
        with self._lock:
            data = b"".join(self._chunks)
            wrapped = self._total > self._size
        if len(data) > self.max_bytes:
            data = data[-self.max_bytes:]
            wrapped = True
        if wrapped:
            cut = data.find(b"\n")
            if 0 <= cut < len(data) - 1:
                data = data[cut + 1:]
        return data.decode("utf-8", errors="replace")


class OutputSink:
    """Receives every block of output: beats the heartbeat, fills the tail, tells the listeners."""

    def __init__(self, heartbeat: Heartbeat, tail: OutputTail, listeners: Sequence[OutputListener] = ()) -> None:
        self.heartbeat = heartbeat
        self.tail = tail
        self.listeners = list(listeners)

    def __call__(self, stream: str, data: bytes) -> None:
        self.heartbeat.beat(stream)
        self.tail.add(data)
        for listener in self.listeners:
            try:
                listener(stream, data)
            except Exception:  # a broken console or run log must not stop supervision
                log.exception("output listener %r failed", listener)


class FileSource:
    """Follows the shared log file in a background thread for the whole supervision.

    Like `StreamSource`, ``drain(timeout)`` delivers what the job wrote so far (the run just ended)."""

    def __init__(self, path: str, sink: OutputSink, *, interval: float = 0.25) -> None:
        self.path = path
        self._tailer = FileTailer(path, lambda data: sink(FILE_STREAM, data))
        self._stop = threading.Event()
        self._tailer.poll()  # settle on the current end before the job is (re)started
        self._thread = threading.Thread(target=self._tailer.follow, args=(self._stop, interval),
                                        name="phoenix-log-file", daemon=True)
        self._thread.start()

    def drain(self, timeout: float = 0.0) -> None:
        try:
            self._tailer.poll()
        except OSError as exc:
            log.warning("cannot read %s: %s", self.path, exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._tailer.close()


class StreamSource:
    """Reads one run's Docker log stream in a background thread until the run's container stops.

    Args:
        guard: the target's guard (the stream is opened through it).
        sink: where the output goes.
        since_ns: the run's start (``State.StartedAt``): earlier runs' output is not this run's.
        tty: the container has a TTY (raw stream, no stdout/stderr split).
        connected: waits until the daemon answers (the monitor's view), for up to the given seconds.
    """

    def __init__(self, guard: TargetGuard, sink: OutputSink, *, since_ns: int, tty: bool,
                 connected: Callable[[float], bool], retry_seconds: float = 0.5) -> None:
        self._guard = guard
        self._sink = sink
        self._cursor = LogCursor(since_ns)
        self._tty = tty
        self._connected = connected
        self._retry = retry_seconds
        self._closed = threading.Event()
        self._done = threading.Event()
        self._ended = threading.Event()  # the run is known to be over: a stream end is final
        self._stream: object | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="phoenix-docker-logs", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._closed.is_set():
                try:
                    stream = self._guard.logs(since=self._cursor.since_param())
                except RuntimeUnavailable as exc:
                    log.debug("log stream of %s unavailable: %s", self._guard.name, exc)
                    self._connected(30.0)
                    self._closed.wait(self._retry)
                    continue
                with self._lock:
                    self._stream = stream
                self._cursor.reopened()
                reader = DockerLogReader(self._sink, tty=self._tty, cursor=self._cursor)
                try:
                    reader.consume(stream)
                except RuntimeUnavailable as exc:
                    log.debug("log stream of %s broke: %s", self._guard.name, exc)
                finally:
                    with self._lock:
                        self._stream = None
                if self._closed.is_set() or self._ended.is_set() or not self._still_running():
                    return
                self._closed.wait(self._retry)  # the stream broke while the job runs: reopen
        finally:
            self._done.set()

    def _still_running(self) -> bool:
        try:
            return bool(self._guard.inspect()["State"]["Running"])
        except RuntimeUnavailable:
            return True  # cannot tell: the daemon is away; try again once it is back

    def drain(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for the stream to deliver the stopped container's last output."""
        self._ended.set()
        if not self._done.wait(timeout):
            log.warning("the log stream of %s did not finish within %.1fs; its last lines may be missing",
                        self._guard.name, timeout)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            try:
                stream.close()  # type: ignore[attr-defined]
            except Exception:  # closing a stream the daemon already dropped
                pass
        self._thread.join(2)


def wait_quiet(tail: OutputTail, mark: int, *, drain: Callable[[], None], quiet: float, limit: float,
               clock: Callable[[], float] = time.monotonic) -> bytes:
    """Collect output after ``mark`` until ``quiet`` seconds pass without more (after the first),
    or ``limit`` seconds in all. For the stack dump a signalled job prints."""
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
