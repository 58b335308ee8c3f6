"""Parsing Docker's multiplexed log stream and resuming it without repeats (the wire format as
the Engine API sends it; the real-engine tests in tests/integration/docker read it from dockerd itself)."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from phoenix_watchdog.sources.dockerlogs import Demuxer, DockerLogReader, LogCursor, parse_rfc3339_ns, split_timestamp


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def test_frames_are_split_by_stream() -> None:
    wire = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"")
    assert Demuxer().feed(wire) == [("stdout", b"out\n"), ("stderr", b"err\n"), ("stdout", b"")]


@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=300)), max_size=20),
       st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=30))
def test_any_chunking_of_the_stream_yields_the_same_frames(frames: list[tuple[int, bytes]], cuts: list[int]) -> None:
    wire = b"".join(frame(s, p) for s, p in frames)
    demux, got, pos, i = Demuxer(), [], 0, 0
    while pos < len(wire):
        step = cuts[i % len(cuts)]
        got += demux.feed(wire[pos:pos + step])
        pos, i = pos + step, i + 1
    assert got == [({1: "stdout", 2: "stderr"}[s], p) for s, p in frames]
    assert demux.pending == 0


def test_docker_timestamps_parse_to_nanoseconds() -> None:
    assert parse_rfc3339_ns("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert parse_rfc3339_ns("2026-11-24T18:34:58.351543862Z") == 1795545298_351543862
    assert parse_rfc3339_ns("2026-11-24T18:34:58Z") == 1795545298_000000000
    assert parse_rfc3339_ns("2026-11-24T19:34:58.1+01:00") == 1795545298_100000000
    assert parse_rfc3339_ns("0001-01-01T00:00:00Z") < 0  # Docker's "never"
    assert parse_rfc3339_ns("not a time at all, no") is None
    assert split_timestamp(b"2026-11-24T18:34:58.35Z hello world\n") == (1795545298_350000000, b"hello world\n")
    assert split_timestamp(b"no timestamp here\n") == (None, b"no timestamp here\n")


def test_a_reopened_stream_repeats_nothing_even_within_one_timestamp() -> None:
    got: list[tuple[str, bytes]] = []
    cursor = LogCursor()
    reader = DockerLogReader(lambda s, d: got.append((s, d)), tty=False, cursor=cursor)
    t1, t2 = "2026-11-24T18:34:58.000000001Z", "2026-11-24T18:34:58.000000002Z"
    # A 20 KB line arrives as two parts with one timestamp; the stream breaks between them.
    reader.feed(frame(1, f"{t1} first\n".encode()) + frame(1, f"{t2} part-a ".encode()))
    assert cursor.since_param() == "1795545298.000000002"
    cursor.reopened()  # the daemon is back: the stream starts again at since=t2
    reader = DockerLogReader(lambda s, d: got.append((s, d)), tty=False, cursor=cursor)
    reader.feed(frame(1, f"{t2} part-a ".encode()) + frame(1, f"{t2} part-b\n".encode())
                + frame(2, f"{t2[:-2]}3Z after\n".encode()))
    assert got == [("stdout", b"first\n"), ("stdout", b"part-a "), ("stdout", b"part-b\n"), ("stderr", b"after\n")]


def test_messages_before_the_run_started_are_skipped() -> None:
    got: list[bytes] = []
    reader = DockerLogReader(lambda s, d: got.append(d), tty=False,
                             cursor=LogCursor(since_ns=parse_rfc3339_ns("2026-01-01T00:00:10Z") or 0))
    reader.feed(frame(1, b"2026-01-01T00:00:09.9Z old run\n") + frame(1, b"2026-01-01T00:00:10Z new run\n"))
    assert got == [b"new run\n"]


def test_tty_stream_is_raw_lines_on_stdout() -> None:
    got: list[tuple[str, bytes]] = []
    reader = DockerLogReader(lambda s, d: got.append((s, d)), tty=True, cursor=LogCursor())
    reader.feed(b"2026-01-01T00:00:01Z one\r\n2026-01-01T00:00:02Z tw")
    reader.feed(b"o\r\n")
    assert got == [("stdout", b"one\r\n"), ("stdout", b"two\r\n")]
