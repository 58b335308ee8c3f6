"""The run log: the job's output and Phoenix's own events as JSON lines, rotated by size.

Output is recorded per chunk as read from the pipe (``{"ts", "stream", "data"}``), not per line:
a per-line record costs a Python call per line and could not keep up with a job that writes
hundreds of megabytes. Concatenating ``data`` in order gives back the output exactly
(``jq -j 'select(.stream) | .data' .phoenix_cli/run.log``). Events are ``{"ts", "event", ...}``.

With a ``scrub`` (the session's redactor), secrets are taken out of both: output is then recorded
in whole lines (a partial line waits for its end, up to `CARRY_BYTES`), so a secret split across
two reads is still recognised. Scrubbing costs CPU per megabyte, so it is done by a writer thread
behind a bounded queue (`QUEUE_CHUNKS`): the supervisor's loop only hands the chunk over and goes on
passing the job's output through, and a writer that falls behind slows the job down rather than
letting memory grow. Output and events keep their order (one queue). What passes through to the
terminal is untouched; only the record is scrubbed. The files are created ``0600``.

Rotation renames ``run.log`` to ``run.log.1`` (and so on, up to ``backups`` generations), so a
reader never sees a truncated file. A failed write (full disk) is reported and recording pauses
for a while, then resumes; the job itself keeps running and its output keeps flowing to the terminal.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

from phoenix_sidecar.fsutil import describe_os_error

log = logging.getLogger(__name__)
_RETRY_SECONDS = 30.0
CARRY_BYTES = 8192
QUEUE_CHUNKS = 8


class RunLog:
    """Append-only JSON-lines log with size-based rotation.

    Args:
        path: ``.phoenix_cli/run.log``.
        max_bytes: rotate when the file reaches this size; 0 never rotates.
        backups: rotated generations kept (``run.log.1`` ... ``run.log.N``).
        scrub: takes secrets out of a text (`phoenix_sidecar.redact.Redactor.text`); None keeps it as is.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int, backups: int,
                 scrub: Callable[[str], str] | None = None) -> None:
        self.path = Path(path)
        self.scrub = scrub
        self._carry: dict[str, bytes] = {}  # touched by the writer thread only
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._file = None
        self._size = 0
        self._retry_at = 0.0
        self.failed: str | None = None
        self._open()
        self._queue: queue.Queue[tuple[Any, ...] | None] | None = None
        self._writer: threading.Thread | None = None
        if scrub is not None:
            self._queue = queue.Queue(maxsize=QUEUE_CHUNKS)
            self._writer = threading.Thread(target=self._drain, name="phoenix-runlog", daemon=True)
            self._writer.start()

    def output(self, stream: str, data: bytes) -> None:
        """Record a chunk of the job's output (hot path)."""
        if self._queue is None:
            self._record(stream, data, time.time())
        else:
            self._queue.put(("output", stream, data, time.time()))

    def flush_output(self) -> None:
        """Record what is left of a partial last line (before an event, and on close)."""
        if self._queue is not None:
            self._queue.put(("flush",))

    def event(self, name: str, **fields: Any) -> None:
        """Record one of Phoenix's own events."""
        record = {"ts": round(time.time(), 3), "event": name, **fields}
        line = json.dumps(record, default=str)
        if self._queue is None:
            self._write(line + "\n")
        else:
            self._queue.put(("event", line))

    def close(self) -> None:
        if self._queue is not None and self._writer is not None:
            self.flush_output()
            self._queue.put(None)
            self._writer.join()
            self._queue = None
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    # -- the writer thread (with a scrub) ---------------------------------------------------------
    def _drain(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._handle(item)
            except Exception:  # a record lost is better than a writer gone: the job keeps running
                log.exception("run log: cannot record %s", item[0])

    def _handle(self, item: tuple[Any, ...]) -> None:
        assert self.scrub is not None
        if item[0] == "output":
            _, stream, data, ts = item
            data = self._carry.pop(stream, b"") + data
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) < CARRY_BYTES:
                self._carry[stream] = data
                return
            if 0 < cut and len(data) - cut < CARRY_BYTES:
                data, self._carry[stream] = data[:cut], data[cut:]
            self._record(stream, data, ts)
        elif item[0] == "flush":
            for stream in list(self._carry):
                self._record(stream, self._carry.pop(stream), time.time())
        else:
            # Scrubbed as data, not as JSON text: a mask never breaks the line's quoting.
            self._write(json.dumps(_scrub_data(json.loads(item[1]), self.scrub)) + "\n")

    def _record(self, stream: str, data: bytes, ts: float) -> None:
        if not data:
            return
        text = data.decode("utf-8", errors="backslashreplace")
        if self.scrub is not None:
            text = self.scrub(text)
        self._write('{"ts":%.3f,"stream":"%s","data":%s}\n' % (ts, stream, json.dumps(text)))

    def _write(self, line: str) -> None:
        data = line.encode("utf-8")
        with self._lock:
            if self._file is None:
                if not self.failed or time.monotonic() < self._retry_at:
                    return
                self._open()
                if self._file is None:
                    return
            try:
                if self.max_bytes and self._size and self._size + len(data) > self.max_bytes:
                    self._rotate()
                self._file.write(data)
                self._size += len(data)
            except OSError as exc:
                self._give_up(exc)

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Unbuffered: every record reaches the kernel at once, so `tail -f` and a crash lose nothing.
            self._file = _open_private(self.path)
            self._size = self._file.tell()
            if self.failed:
                log.warning("run log resumed after: %s", self.failed)
                self.failed = None
        except OSError as exc:
            self._give_up(exc)

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        if self.backups > 0:
            for n in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._file = _open_private(self.path)
        self._size = 0

    def _give_up(self, exc: OSError) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
        if not self.failed:
            log.error("run log paused: %s", describe_os_error(exc, self.path))
        self.failed = describe_os_error(exc, self.path)
        self._retry_at = time.monotonic() + _RETRY_SECONDS


def _open_private(path: Path) -> Any:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return os.fdopen(fd, "ab", buffering=0)


def _scrub_data(value: Any, scrub: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_data(v, scrub) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_data(v, scrub) for v in value]
    return value
