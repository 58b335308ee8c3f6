"""Where the supervised container's output comes from and where it goes.

Two sources, one sink. `FileSource` follows the log file the job writes on the shared volume
(`phoenix_watchdog.sources.filetail`); `StreamSource` reads the Docker log stream of one run
(`phoenix_watchdog.sources.dockerlogs`), reconnecting after a daemon outage without repeating a line.
Both hand every block of output to the runtime's `OutputSink` (`runtime/output.py`), which keeps
the tail for the diagnosis, passes the output on to listeners and beats the heartbeat. Each reads
in a `Worker` thread. `container_output` reads a finished run's own Docker log once: what a job
printed before it opened its log file (an import error, a bad argument) is only there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from phoenix_sidecar.errors import RuntimeUnavailable
from phoenix_sidecar.runtime.docker.guard import TargetGuard
from phoenix_sidecar.runtime.output import OutputSink
from phoenix_watchdog.sources.dockerlogs import DockerLogReader, LogCursor
from phoenix_watchdog.sources.filetail import FileTailer
from phoenix_watchdog.worker import Worker

log = logging.getLogger(__name__)

FILE_STREAM = "log"  # the stream name of output read from the shared log file


def container_output(guard: TargetGuard, *, since_ns: int, until_ns: int, tty: bool, limit: int) -> bytes:
    """The last ``limit`` bytes a finished run printed to its stdout and stderr, from the Docker
    log (stdout and stderr in the order the daemon recorded them). Empty when the daemon cannot say."""
    out = bytearray()
    cursor = LogCursor(since_ns)

    def collect(stream: str, data: bytes) -> None:
        out.extend(data)
        if len(out) > 2 * limit:
            del out[:-limit]

    try:
        stream = guard.logs(since=cursor.since_param(), follow=False, until=LogCursor(until_ns).since_param())
        try:
            DockerLogReader(collect, tty=tty, cursor=cursor).consume(stream)
        finally:
            stream.close()
    except RuntimeUnavailable as exc:
        log.warning("could not read the Docker log of %s: %s", guard.name, exc)
    return bytes(out[-limit:])


def completed_tail(file_tail: str, own: bytes) -> str:
    """The log file's tail of a run, followed by the container's own output of it when the file
    holds less than the container printed: a job that fails before it opens its log file (an
    import error, a bad argument, CUDA failing to initialise) leaves its traceback only there."""
    text = own.decode("utf-8", errors="replace")
    if len(text.strip()) <= len(file_tail.strip()):
        return file_tail
    log.info("the log file holds less of this run than the container printed; diagnosing its own output too")
    return (file_tail if not file_tail or file_tail.endswith("\n") else file_tail + "\n") + text


class FileSource:
    """Follows the shared log file in a background thread for the whole supervision.

    Like `StreamSource`, ``drain(timeout)`` delivers what the job wrote so far (the run just ended)."""

    def __init__(self, path: str, sink: OutputSink, *, interval: float = 0.25) -> None:
        self.path = path
        self._tailer = FileTailer(path, lambda data: sink(FILE_STREAM, data))
        self._interval = interval
        self._tailer.poll()  # settle on the current end before the job is (re)started
        self._worker = Worker(self._follow, "phoenix-log-file")
        self._worker.start()

    def _follow(self) -> None:
        self._tailer.follow(self._worker.stopping, self._interval)

    def drain(self, timeout: float = 0.0) -> None:
        try:
            self._tailer.poll()
        except OSError as exc:
            log.warning("cannot read %s: %s", self.path, exc)

    def close(self) -> None:
        if not self._worker.stop(2):
            log.warning("the reader of %s did not stop; leaving its thread behind", self.path)
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
        self._ended = threading.Event()  # the run is known to be over: a stream end is final
        self._stream: object | None = None
        self._lock = threading.Lock()
        self._worker = Worker(self._run, "phoenix-docker-logs", on_stop=self._close_stream)
        self._closed = self._worker.stopping
        self._worker.start()

    def _run(self) -> None:
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
            if self._closed.is_set():  # closed while the stream was opening: `close` did not see it
                self._close_stream()
                return
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

    def _still_running(self) -> bool:
        try:
            return bool(self._guard.inspect()["State"]["Running"])
        except RuntimeUnavailable:
            return True  # cannot tell: the daemon is away; try again once it is back

    def drain(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for the stream to deliver the stopped container's last output."""
        self._ended.set()
        if not self._worker.join(timeout):
            log.warning("the log stream of %s did not finish within %.1fs; its last lines may be missing",
                        self._guard.name, timeout)

    def close(self) -> None:
        if not self._worker.stop(2):
            log.warning("the log stream of %s did not close; leaving its reader behind", self._guard.name)

    def _close_stream(self) -> None:
        """Unblock the reader (`Worker.stop` calls this after asking it to end)."""
        with self._lock:
            stream = self._stream
        if stream is not None:
            try:
                stream.close()  # type: ignore[attr-defined]
            except Exception:  # closing a stream the daemon already dropped
                pass

