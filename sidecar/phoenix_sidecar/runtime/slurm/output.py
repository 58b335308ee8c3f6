"""The job's output, read from its files on the shared file system: heartbeat, tail and listeners.

A Slurm job writes either one file for all ranks (``#SBATCH --output``, with ``srun --label``
putting ``0: `` before each rank's lines) or one file per task (``srun --output=out-%j-%t.log``).
`JobOutput` follows them all with the watchdog's `FileTailer` (rotation, truncation by a requeued
run), beats the heartbeat on every block, and keeps one bounded tail for the diagnosis. Lines of
a per-task file get the ``N: `` label srun would have given them, so the diagnosis reads every
rank apart either way.
"""

from __future__ import annotations

import glob
import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Sequence

from phoenix_watchdog.heartbeat import Heartbeat
from phoenix_watchdog.sources.filetail import FileTailer, read_last

log = logging.getLogger(__name__)

OutputListener = Callable[[str, bytes], None]  # (stream, data)
TAIL_BYTES = 256 * 1024


class _Tail:
    """The last `TAIL_BYTES` of the run's output. Thread-safe."""

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self.total = 0
        self._lock = threading.Lock()

    def add(self, data: bytes) -> None:
        with self._lock:
            self._chunks.append(data)
            self._size += len(data)
            self.total += len(data)
            while len(self._chunks) > 1 and self._size - len(self._chunks[0]) >= TAIL_BYTES:
                self._size -= len(self._chunks.popleft())

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._size = 0

    def text(self, since: int = 0) -> str:
        with self._lock:
            data = b"".join(self._chunks)
            if since:
                data = data[max(0, len(data) - (self.total - since)):]
        return data[-TAIL_BYTES:].decode("utf-8", errors="replace")


class _Labeller:
    """Puts ``rank: `` before every line of one per-task file (partial lines wait for their end)."""

    def __init__(self, rank: str) -> None:
        self.prefix = f"{rank}: ".encode()
        self.partial = b""

    def __call__(self, data: bytes) -> bytes:
        data, self.partial = self.partial + data, b""
        lines = data.split(b"\n")
        self.partial = lines.pop()
        return b"".join(self.prefix + line + b"\n" for line in lines)


class JobOutput:
    """Follows the job's output files in a background thread until `close`.

    Args:
        heartbeat: beaten by every block of output.
        listeners: receive every block (the run log, the console).
        task_pattern: per-task output files, ``%t`` standing for the task (rank), ``%j`` for the
            job id (and ``%N``/``%n`` for the node), e.g. ``/shared/ws/out-%j-%t.log``.
        interval: seconds between two reads of the files.
    """

    def __init__(self, heartbeat: Heartbeat, listeners: Sequence[OutputListener] = (), *,
                 task_pattern: str = "", interval: float = 0.25) -> None:
        self._heartbeat = heartbeat
        self._listeners = list(listeners)
        self._task_pattern = task_pattern
        self._interval = interval
        self.tail = _Tail()
        self._tailers: dict[str, FileTailer] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._job_id = ""

    def follow(self, job_id: str, paths: Sequence[str]) -> None:
        """Follow ``paths`` (the job's stdout and stderr) and its per-task files from their ends."""
        with self._lock:
            self._job_id = job_id
            for path in paths:
                if path and path != "/dev/null" and path not in self._tailers:
                    self._add(path, None)
            self._discover(first=True)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="phoenix-slurm-output", daemon=True)
            self._thread.start()

    def read_last(self, paths: Sequence[str]) -> None:
        """Put the end of a run that ended before Phoenix watched it into the tail."""
        for path in paths:
            if path and path != "/dev/null":
                try:
                    self.tail.add(read_last(path, TAIL_BYTES // max(1, len(paths))))
                except OSError:
                    continue

    def drain(self) -> None:
        """Read what the job wrote so far (its run just ended)."""
        with self._lock:
            self._discover()
            for path, tailer in list(self._tailers.items()):
                try:
                    tailer.poll()
                except OSError as exc:
                    log.warning("cannot read %s: %s", path, exc)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        with self._lock:
            for tailer in self._tailers.values():
                tailer.close()
            self._tailers.clear()

    # -- internals -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.drain()

    def _add(self, path: str, rank: str | None, *, from_start: bool = False) -> None:
        label = _Labeller(rank) if rank is not None else None
        stream = f"rank{rank}" if rank is not None else "log"

        def deliver(data: bytes) -> None:
            if label is not None:
                data = label(data)
                if not data:
                    return
            self._deliver(stream, data)

        tailer = FileTailer(path, deliver, from_end=not from_start)
        tailer.poll()  # a file already there at its first look is settled on its end: an earlier run's
        self._tailers[path] = tailer

    def _discover(self, first: bool = False) -> None:
        """Per-task files appear when the ranks start: pick up new ones, read from their start
        (those already there when Phoenix began following are an earlier run's: from their end)."""
        if not self._task_pattern or not self._job_id:
            return
        pattern = self._task_pattern.replace("%j", self._job_id)
        rank_re = re.compile("^" + re.escape(pattern).replace("%t", r"(?P<rank>\d+)")
                             .replace("%N", r"[^/]*").replace("%n", r"\d+") + "$")
        for path in glob.glob(pattern.replace("%t", "*").replace("%N", "*").replace("%n", "*")):
            m = rank_re.match(path)
            if m and path not in self._tailers:
                self._add(path, m["rank"], from_start=not first)

    def _deliver(self, stream: str, data: bytes) -> None:
        self._heartbeat.beat(stream)
        self.tail.add(data)
        for listener in self._listeners:
            try:
                listener(stream, data)
            except Exception:  # a broken console or run log must not stop supervision
                log.exception("output listener %r failed", listener)
