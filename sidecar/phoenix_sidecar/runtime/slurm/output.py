"""The job's output, read from its files on the shared file system: heartbeat, tail and listeners.

A Slurm job writes either one file for all ranks (``#SBATCH --output``, with ``srun --label``
putting ``0: `` before each rank's lines) or one file per task (``srun --output=out-%j-%t.log``).
`JobOutput` follows them all with the watchdog's `FileTailer` (rotation, truncation by a requeued
run) and hands every block to the runtime wing's one `OutputSink` (tail, listeners, heartbeat). Lines of
a per-task file get the ``N: `` label srun would have given them, so the diagnosis reads every
rank apart either way.
"""

from __future__ import annotations

import glob
import logging
import re
import threading
from collections.abc import Sequence

from phoenix_sidecar.runtime.base import OutputListener
from phoenix_sidecar.runtime.output import TAIL_BYTES, OutputSink
from phoenix_watchdog.heartbeat import Heartbeat
from phoenix_watchdog.sources.filetail import FileTailer, read_last
from phoenix_watchdog.worker import Worker

log = logging.getLogger(__name__)

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
        self._sink = OutputSink(heartbeat, listeners=listeners)
        self.tail = self._sink.tail
        self._task_pattern = task_pattern
        self._interval = interval
        self._tailers: dict[str, FileTailer] = {}
        self._lock = threading.RLock()
        self._worker = Worker(self._loop, "phoenix-slurm-output")
        self._job_id = ""

    def follow(self, job_id: str, paths: Sequence[str]) -> None:
        """Follow ``paths`` (the job's stdout and stderr) and its per-task files from their ends."""
        with self._lock:
            self._job_id = job_id
            for path in paths:
                if path and path != "/dev/null" and path not in self._tailers:
                    self._add(path, None)
            self._discover(first=True)
        self._worker.start()

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
        if not self._worker.stop(2.0):
            log.warning("the Slurm output follower did not stop; leaving it behind")
        with self._lock:
            for tailer in self._tailers.values():
                tailer.close()
            self._tailers.clear()

    # -- internals -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._worker.stopping.wait(self._interval):
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
        self._sink(stream, data)
