"""Read the job's output from the Docker log stream (used when the job writes no shared log file).

The Engine API's ``GET /containers/{id}/logs?follow=1&timestamps=1`` answers, for a container
without a TTY, a multiplexed stream: each frame is an 8-byte header (stream id, three zero bytes,
payload length as big-endian uint32) and one log message, so stdout and stderr stay apart. A TTY
container's stream is raw (one merged stream, no headers).

With ``timestamps=1`` every message starts with its RFC 3339 time. `LogCursor` remembers the time
of the last message delivered (and how many carried exactly that time: the daemon splits lines
longer than 16 KiB into parts that share one), so a stream reopened after a daemon outage with
``since=`` repeats nothing and skips nothing.

This module parses bytes; it never talks to Docker. The sidecar opens the stream and hands the
raw chunks in, so the watchdog stays free of the Docker SDK.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

STREAMS = {0: "stdin", 1: "stdout", 2: "stderr"}
_HEADER = struct.Struct(">BxxxL")


class Demuxer:
    """Incremental parser of the multiplexed log stream: feed raw chunks, get (stream, payload) frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        self._buf += data
        frames: list[tuple[str, bytes]] = []
        pos = 0
        buf = self._buf
        while len(buf) - pos >= _HEADER.size:
            kind, size = _HEADER.unpack_from(buf, pos)
            end = pos + _HEADER.size + size
            if end > len(buf):
                break
            frames.append((STREAMS.get(kind, "stdout"), bytes(buf[pos + _HEADER.size:end])))
            pos = end
        del buf[:pos]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back (a stream that ends here was cut off)."""
        return len(self._buf)


def split_timestamp(message: bytes) -> tuple[int | None, bytes]:
    """``b"2026-11-24T18:34:58.351543862Z out 0\\n"`` -> (nanoseconds since the epoch, ``b"out 0\\n"``).

    Returns (None, message) when the message carries no timestamp.
    """
    space = message.find(b" ", 0, 40)
    if space < 20:
        return None, message
    ns = parse_rfc3339_ns(message[:space].decode("ascii", "replace"))
    if ns is None:
        return None, message
    return ns, message[space + 1:]


def parse_rfc3339_ns(text: str) -> int | None:
    """Docker's RFC 3339 times (``2026-11-24T18:34:58.35154386Z``, fraction of 0-9 digits, or an
    offset instead of Z) as integer nanoseconds since the epoch; None if it is not one.

    Docker's zero time (``0001-01-01T00:00:00Z``, "never") parses to a negative number.
    """
    text = text.strip()
    if len(text) < 20 or text[10] != "T":
        return None
    if text.endswith("Z"):
        body, offset = text[:-1], "+00:00"
    else:
        body, offset = text[:-6], text[-6:]
    whole, _, fraction = body.partition(".")
    if not fraction.isdigit() and fraction:
        return None
    try:
        moment = datetime.fromisoformat(whole + offset)
    except ValueError:
        return None
    seconds = int((moment - _EPOCH).total_seconds())
    return seconds * 1_000_000_000 + int((fraction + "000000000")[:9] if fraction else 0)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class LogCursor:
    """Where reading a container's log got to, so that a reopened stream repeats nothing.

    A stream opened with ``since`` = `since_param` starts again at the first message carrying the
    last delivered time; `reopened` makes the cursor skip as many of those as were delivered.
    """

    def __init__(self, since_ns: int = 0) -> None:
        self.last_ns = since_ns
        self._at_last = 0  # messages delivered that carry exactly last_ns
        self._skip = 0  # of those, how many the current stream has yet to repeat

    def reopened(self) -> None:
        """A new stream starts at ``since`` = `since_param`."""
        self._skip = self._at_last

    def admit(self, ts_ns: int | None) -> bool:
        """Whether a message is new; records it if so. Messages without a time always pass."""
        if ts_ns is None:
            return True
        if ts_ns < self.last_ns:
            return False
        if ts_ns == self.last_ns:
            if self._skip > 0:
                self._skip -= 1
                return False
            self._at_last += 1
            return True
        self.last_ns, self._at_last, self._skip = ts_ns, 1, 0
        return True

    def since_param(self) -> str:
        """The ``since`` query value: seconds with nanoseconds, as the Engine API accepts it."""
        seconds, nanos = divmod(max(0, self.last_ns), 1_000_000_000)
        return f"{seconds}.{nanos:09d}"


class DockerLogReader:
    """Turns one log stream's raw chunks into ``on_data(stream, payload)`` calls.

    Args:
        on_data: receives each message's text (timestamp removed) with its stream name.
        tty: the container has a TTY: the stream is raw, everything is ``stdout``.
        cursor: the position to continue from; updated as messages are delivered.
    """

    def __init__(self, on_data: Callable[[str, bytes], None], *, tty: bool, cursor: LogCursor) -> None:
        self._on_data = on_data
        self._tty = tty
        self.cursor = cursor
        self._demux = Demuxer()
        self._raw_line = bytearray()

    def feed(self, chunk: bytes) -> None:
        if self._tty:
            self._raw_line += chunk
            while True:
                cut = self._raw_line.find(b"\n")
                if cut < 0:
                    break
                line = bytes(self._raw_line[:cut + 1])
                del self._raw_line[:cut + 1]
                self._deliver("stdout", line)
            return
        for stream, message in self._demux.feed(chunk):
            self._deliver(stream, message)

    def consume(self, chunks: Iterable[bytes]) -> None:
        """Feed every chunk until the stream ends (container stopped, daemon gone, stream closed)."""
        for chunk in chunks:
            if chunk:
                self.feed(chunk)

    def _deliver(self, stream: str, message: bytes) -> None:
        ts, text = split_timestamp(message)
        if self.cursor.admit(ts) and text:
            self._on_data(stream, text)
