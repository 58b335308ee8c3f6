"""The run log: the job's output and Phoenix's own events as JSON lines, rotated by size.

Output is recorded per chunk as read from the pipe (``{"ts", "stream", "data"}``), not per line:
a per-line record costs a Python call per line and could not keep up with a job that writes
hundreds of megabytes. Concatenating ``data`` in order gives back the output exactly
(``jq -j 'select(.stream) | .data' .phoenix_cli/run.log``). Events are ``{"ts", "event", ...}``.

Rotation renames ``run.log`` to ``run.log.1`` (and so on, up to ``backups`` generations), so a
reader never sees a truncated file. A failed write (full disk) is reported and recording pauses
for a while, then resumes; the job itself keeps running and its output keeps flowing to the terminal.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from phoenix_sidecar.fsutil import describe_os_error

log = logging.getLogger(__name__)
_RETRY_SECONDS = 30.0


class RunLog:
    """Append-only JSON-lines log with size-based rotation.

    Args:
        path: ``.phoenix_cli/run.log``.
        max_bytes: rotate when the file reaches this size; 0 never rotates.
        backups: rotated generations kept (``run.log.1`` ... ``run.log.N``).
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int, backups: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._file = None
        self._size = 0
        self._retry_at = 0.0
        self.failed: str | None = None
        self._open()

    def output(self, stream: str, data: bytes) -> None:
        """Record a chunk of the job's output (hot path)."""
        text = data.decode("utf-8", errors="backslashreplace")
        self._write('{"ts":%.3f,"stream":"%s","data":%s}\n' % (time.time(), stream, json.dumps(text)))

    def event(self, name: str, **fields: Any) -> None:
        """Record one of Phoenix's own events."""
        record = {"ts": round(time.time(), 3), "event": name, **fields}
        self._write(json.dumps(record, default=str) + "\n")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

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
            self._file = open(self.path, "ab", buffering=0)
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
        self._file = open(self.path, "ab", buffering=0)
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
