"""The output tail and fan-out every runtime shares: bounded, cut at a line boundary, never lost to a
broken listener."""

from __future__ import annotations

import random

import pytest

from phoenix_sidecar.runtime.output import OutputSink, OutputTail
from phoenix_watchdog.heartbeat import Heartbeat


def numbered_lines(count: int, rng: random.Random) -> bytes:
    return b"".join(f"line {i} {'x' * rng.randrange(0, 60)}\n".encode() for i in range(count))


def chunks(data: bytes, rng: random.Random) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        size = rng.randrange(1, 700)
        out.append(data[at:at + size])
        at += size
    return out


def test_a_wrapped_tail_starts_on_a_whole_line_whatever_the_chunking() -> None:
    rng = random.Random(7)
    for _ in range(50):
        data = numbered_lines(rng.randrange(50, 400), rng)
        tail = OutputTail(max_bytes=rng.randrange(200, 4000))
        for chunk in chunks(data, rng):
            tail.add(chunk)
        text = tail.text()
        assert len(text.encode()) <= tail.max_bytes
        assert data.decode().endswith(text)
        if len(data) > tail.max_bytes:  # older output was let go: the cut is right after a newline
            assert data.decode()[:-len(text)].endswith("\n") and text.startswith("line ")
        else:
            assert text == data.decode()


def test_a_tail_that_never_wrapped_is_kept_whole_even_without_a_first_newline() -> None:
    tail = OutputTail(max_bytes=100)
    tail.add(b"partial start of the first line, as read_last gives it\nsecond line\n")
    assert tail.text().startswith("partial start")


def test_clear_starts_a_new_run_whose_first_line_is_kept() -> None:
    tail = OutputTail(max_bytes=20)
    tail.add(b"a long first run that wraps the buffer\n" * 3)
    mark = tail.mark()
    tail.clear()
    tail.add(b"run 2: first line\nx\n")
    assert tail.text() == "run 2: first line\nx\n"  # not cut: nothing of this run was let go
    assert tail.since(mark) == b"run 2: first line\nx\n"  # marks count across a clear


def test_one_unfinished_line_longer_than_the_tail_is_kept_rather_than_emptied() -> None:
    tail = OutputTail(max_bytes=10)
    tail.add(b"y" * 25)
    assert tail.text() == "y" * 10


def test_since_returns_what_came_after_the_mark() -> None:
    tail = OutputTail(max_bytes=1000)
    tail.add(b"before\n")
    mark = tail.mark()
    tail.add(b"Thread 0x1 (most recent call first):\n")
    tail.add(b"  File \"train.py\", line 3\n")
    assert tail.since(mark) == b"Thread 0x1 (most recent call first):\n  File \"train.py\", line 3\n"


def test_the_sink_fills_the_tail_tells_every_listener_and_beats_even_when_one_listener_breaks() -> None:
    now = [100.0]
    heartbeat = Heartbeat(60, clock=lambda: now[0], wall=lambda: now[0])
    seen: list[tuple[str, bytes]] = []

    def broken(stream: str, data: bytes) -> None:
        raise OSError("the terminal is gone")

    sink = OutputSink(heartbeat, OutputTail(), [broken, lambda s, d: seen.append((s, d))])
    now[0] = 130.0
    sink("stderr", b"loss 0.1\n")
    assert seen == [("stderr", b"loss 0.1\n")]
    assert sink.tail.text() == "loss 0.1\n"
    assert heartbeat.last_output == 130.0


def test_the_runtime_face_picks_the_folder_for_the_mode_and_the_settings() -> None:
    from phoenix_sidecar.config.schema import Settings
    from phoenix_sidecar.runtime import runtime_for

    assert runtime_for(Settings(), "run") == "local"
    assert runtime_for(Settings(container="trainer"), "watch") == "docker"
    assert runtime_for(Settings(slurm_job="1234"), "watch") == "slurm"
    with pytest.raises(ValueError, match="no runtime for mode 'kube'"):
        runtime_for(Settings(), "kube")
