"""The file tailer on real files: appends, rotation by rename, replacement, copytruncate, idle cost."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from phoenix_watchdog.sources.filetail import FileTailer, read_last


class Collector:
    def __init__(self) -> None:
        self.data = bytearray()
        self.lock = threading.Lock()

    def __call__(self, chunk: bytes) -> None:
        with self.lock:
            self.data += chunk

    def lines(self) -> list[str]:
        with self.lock:
            return self.data.decode().splitlines()


def numbered(start: int, stop: int) -> str:
    return "".join(f"line {i}\n" for i in range(start, stop))


def append(path: Path, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text)


def test_follows_appends_from_the_end_of_an_existing_file(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text(numbered(0, 5))
    got = Collector()
    tailer = FileTailer(log, got)
    assert tailer.poll() == 0  # what was there before is not news
    append(log, numbered(5, 8))
    tailer.poll()
    append(log, "partial without newline")
    tailer.poll()
    assert got.lines() == ["line 5", "line 6", "line 7", "partial without newline"]
    tailer.close()


def test_a_file_that_appears_later_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "train.log"
    got = Collector()
    tailer = FileTailer(log, got)
    assert tailer.poll() == 0
    log.parent.mkdir()
    log.write_text(numbered(0, 3))
    tailer.poll()
    assert got.lines() == ["line 0", "line 1", "line 2"]


def test_rename_and_create_rotation_loses_and_repeats_nothing(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    got = Collector()
    tailer = FileTailer(log, got, from_end=False)
    append(log, numbered(0, 10))
    tailer.poll()
    append(log, numbered(10, 15))  # written, not yet read, when the file is rotated
    log.rename(tmp_path / "train.log.1")
    tailer.poll()  # the name is gone for a moment: the old file is still read
    append(tmp_path / "train.log.1", numbered(15, 17))  # the writer had not reopened yet
    append(log, numbered(17, 25))  # now it has
    tailer.poll()
    append(log, numbered(25, 30))
    tailer.poll()
    assert got.lines() == [f"line {i}" for i in range(30)]
    # The rotated file is not read again, however often it is polled afterwards.
    for _ in range(3):
        tailer.poll()
    assert len(got.lines()) == 30


def test_the_rotated_file_is_let_go_after_rotate_wait(tmp_path: Path) -> None:
    now = [0.0]
    log = tmp_path / "train.log"
    got = Collector()
    tailer = FileTailer(log, got, from_end=False, rotate_wait=5.0, clock=lambda: now[0])
    append(log, numbered(0, 2))
    tailer.poll()
    log.rename(tmp_path / "train.log.1")
    append(log, numbered(2, 4))
    tailer.poll()
    now[0] = 4.0
    append(tmp_path / "train.log.1", numbered(4, 5))  # late, but inside the window
    tailer.poll()
    now[0] = 6.0
    tailer.poll()
    append(tmp_path / "train.log.1", "too late\n")  # after the window: no longer followed
    tailer.poll()
    assert got.lines() == ["line 0", "line 1", "line 2", "line 3", "line 4"]
    open_fds = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                if os.path.exists(f"/proc/self/fd/{fd}")]
    assert str(tmp_path / "train.log.1") not in open_fds


def test_replaced_file_is_followed(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    got = Collector()
    tailer = FileTailer(log, got, from_end=False)
    append(log, numbered(0, 3))
    tailer.poll()
    fresh = tmp_path / "fresh"
    fresh.write_text("replaced 0\n")
    os.replace(fresh, log)
    tailer.poll()
    append(log, "replaced 1\n")
    tailer.poll()
    assert got.lines() == ["line 0", "line 1", "line 2", "replaced 0", "replaced 1"]


def test_copytruncate_reads_the_truncated_file_again_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    got = Collector()
    tailer = FileTailer(log, got, from_end=False)
    append(log, numbered(0, 10))
    tailer.poll()
    shutil.copyfile(log, tmp_path / "train.log.1")  # logrotate copytruncate: copy, then truncate
    with open(log, "r+") as fh:
        fh.truncate(0)
    append(log, numbered(10, 12))  # shorter than before: seen as a truncation by size
    tailer.poll()
    assert got.lines() == [f"line {i}" for i in range(12)]


def test_truncation_that_grew_past_the_offset_is_still_noticed(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    got = Collector()
    tailer = FileTailer(log, got, from_end=False)
    append(log, "epoch 1 started\n")
    tailer.poll()
    with open(log, "w") as fh:  # a job that reopens its log with mode "w" and writes a lot at once
        fh.write("epoch 2 started, a longer line than before\n" + numbered(0, 50))
    tailer.poll()
    assert got.lines() == ["epoch 1 started", "epoch 2 started, a longer line than before",
                           *[f"line {i}" for i in range(50)]]


def test_concurrent_writer_rotating_by_rename_loses_and_repeats_nothing(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    got = Collector()
    tailer = FileTailer(log, got, from_end=False)
    stop = threading.Event()
    follower = threading.Thread(target=tailer.follow, args=(stop, 0.005), daemon=True)
    follower.start()
    total, per_file = 3000, 250
    fh = open(log, "a", buffering=1)
    try:
        for i in range(total):
            if i and i % per_file == 0:  # RotatingFileHandler's order: close, rename, reopen
                fh.close()
                os.replace(log, tmp_path / f"train.log.{i // per_file}")
                fh = open(log, "a", buffering=1)
            fh.write(f"line {i}\n")
            if i % 100 == 0:
                time.sleep(0.002)
    finally:
        fh.close()
    # Wait for the last line itself; the 60 s only keeps a broken tailer from hanging the suite.
    wait_until(lambda: len(got.lines()) >= total, hang_guard=60)
    stop.set()
    follower.join()
    assert got.lines() == [f"line {i}" for i in range(total)]


def wait_until(predicate, *, hang_guard: float) -> None:
    deadline = time.monotonic() + hang_guard
    while not predicate():
        assert time.monotonic() < deadline, "hang guard: the event never came"
        time.sleep(0.01)


@pytest.mark.parametrize("exists_when_made", [False, True])
def test_generations_rotated_before_the_first_open_are_read_first(tmp_path: Path, exists_when_made: bool) -> None:
    # The interleaving that lost the first 250 lines under load: the tailer is made to read from
    # the start, then the job writes and rotates, several times, before the poller's first look.
    log = tmp_path / "train.log"
    (tmp_path / "train.log.old").write_text("from before phoenix\n")  # older than the tailer: not news
    if exists_when_made:
        log.write_text("a1\n")
    got = Collector()
    tailer = FileTailer(log, got, from_end=False)
    stamp = iter(range(1, 100))

    def written(path: Path) -> None:  # each generation written a tick after the one before
        ns = 1_700_000_000_000_000_000 + next(stamp) * 1_000_000
        os.utime(path, ns=(ns, ns))

    append(log, "a2\n")
    written(log)
    os.replace(log, tmp_path / "train.log.1")  # RotatingFileHandler: shift older names up first
    log.write_text("b1\nb2\n")
    written(log)
    os.replace(tmp_path / "train.log.1", tmp_path / "train.log.2")
    os.replace(log, tmp_path / "train.log.1")
    log.write_text("c1\n")
    written(log)
    tailer.poll()
    first = ["a1"] if exists_when_made else []
    assert got.lines() == [*first, "a2", "b1", "b2", "c1"]
    # Then more rotations between two polls, and late appends: each line once, in order.
    append(log, "c2\n")
    written(log)
    os.replace(log, tmp_path / "train.log.3")
    log.write_text("d1\n")
    written(log)
    os.replace(log, tmp_path / "train.log.4")
    log.write_text("e1\n")
    written(log)
    tailer.poll()
    tailer.poll()
    assert got.lines() == [*first, "a2", "b1", "b2", "c1", "c2", "d1", "e1"]
    tailer.close()


def test_the_file_under_the_name_when_made_comes_first_whatever_its_clock(tmp_path: Path) -> None:
    # It was there before every generation born since, even if a late write (or a clock step)
    # gave it a newer modification time than theirs.
    log = tmp_path / "train.log"
    log.write_text("first\n")
    got = Collector()
    tailer = FileTailer(log, got, from_end=False)
    os.replace(log, tmp_path / "train.log.1")
    log.write_text("second\n")
    os.utime(tmp_path / "train.log.1", ns=(4_000_000_000_000_000_000,) * 2)
    tailer.poll()
    assert got.lines() == ["first", "second"]


def test_a_copytruncate_before_the_first_open_loses_nothing(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("a1\n")
    got = Collector()
    tailer = FileTailer(log, got, from_end=False)
    shutil.copyfile(log, tmp_path / "train.log.1")  # logrotate copytruncate, before the first poll
    with open(log, "r+") as fh:
        fh.truncate(0)
    append(log, "b1\n")
    tailer.poll()
    assert got.lines() == ["a1", "b1"]


def test_from_the_end_a_file_rotated_before_the_first_look_is_the_past(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("old 1\n")
    got = Collector()
    tailer = FileTailer(log, got)  # from_end: what was written before the first look is not news
    os.replace(log, tmp_path / "train.log.1")
    log.write_text("old 2\n")
    tailer.poll()
    append(log, "new\n")
    tailer.poll()
    assert got.lines() == ["new"]


class RecordingStop(threading.Event):
    """A stop event that records each wait and sets itself after ``waits`` of them."""

    def __init__(self, waits: int) -> None:
        super().__init__()
        self.left = waits
        self.timeouts: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        self.left -= 1
        if self.left <= 0:
            self.set()
        return self.is_set()


def test_a_quiet_file_is_looked_at_once_per_interval_and_a_busy_one_sooner(tmp_path: Path) -> None:
    # What the idle cost rests on: one poll per interval, no busy loop. (The cost itself, as a
    # share of a core against a baseline, is measured by bench/bench_tail.py.)
    log = tmp_path / "train.log"
    log.write_text("hello\n")
    tailer = FileTailer(log, Collector())
    quiet = RecordingStop(3)
    tailer.follow(quiet, interval=0.4)
    assert quiet.timeouts == [0.4, 0.4, 0.4]
    append(log, "more\n")
    busy = RecordingStop(2)
    tailer.follow(busy, interval=0.4)
    assert busy.timeouts == [pytest.approx(0.08), 0.4]


def test_read_last_starts_at_a_line_boundary(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text(numbered(0, 100))
    tail = read_last(log, 40).decode()
    assert tail.startswith("line ") and tail.endswith("line 99\n")
    assert len(tail) <= 40
    assert read_last(tmp_path / "missing", 10) == b""
    assert read_last(log, 10_000).decode() == numbered(0, 100)


@pytest.mark.parametrize("chunks", [[b"a\n", b"b"], [b"x" * 70_000]])
def test_large_and_partial_writes_arrive_whole(tmp_path: Path, chunks: list[bytes]) -> None:
    log = tmp_path / "train.log"
    got = Collector()
    tailer = FileTailer(log, got, from_end=False)
    for chunk in chunks:
        with open(log, "ab") as fh:
            fh.write(chunk)
        tailer.poll()
    assert bytes(got.data) == b"".join(chunks)


def test_several_rotations_between_two_polls_lose_no_file(tmp_path: Path) -> None:
    # A starved poller (or a flood) can miss whole generations: the files in between are found
    # beside the log and read in order; siblings older than the tailed file are left alone.
    log = tmp_path / "train.log"
    (tmp_path / "train.log.old").write_text("from before phoenix\n")
    log.write_text("a1\n")
    got = Collector()
    tailer = FileTailer(log, got, from_end=False)
    tailer.poll()
    with open(log, "a") as fh:
        fh.write("a2\n")
    os.replace(log, tmp_path / "train.log.1")
    log.write_text("b1\nb2\n")
    os.replace(log, tmp_path / "train.log.2")
    log.write_text("c1\n")
    (tmp_path / "train.log.2.gz").write_bytes(b"\x1f\x8b compressed copies are not logs")
    tailer.poll()
    assert got.lines() == ["a1", "a2", "b1", "b2", "c1"]
    with open(log, "a") as fh:
        fh.write("c2\n")
    tailer.poll()
    assert got.lines() == ["a1", "a2", "b1", "b2", "c1", "c2"]
    tailer.close()
