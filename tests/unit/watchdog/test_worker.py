"""The worker-thread lifecycle every long-lived thread of Phoenix uses: start once, stop within a
bound, unblock a blocked reader, report a thread it had to leave behind."""

from __future__ import annotations

import threading

from phoenix_watchdog.worker import Worker

HANG_GUARD = 10.0  # generous: only keeps a broken test from hanging the suite


def test_stop_asks_the_loop_to_end_and_waits_for_it() -> None:
    ticks = []
    worker: Worker

    def loop() -> None:
        while not worker.stopping.wait(0.001):
            ticks.append(1)

    worker = Worker(loop, "test-loop")
    worker.start()
    worker.start()  # a second start does nothing while it runs
    assert worker.alive
    assert worker.stop(HANG_GUARD)
    assert not worker.alive


def test_on_stop_unblocks_a_loop_stuck_in_a_blocking_read() -> None:
    stream = threading.Event()  # stands for a socket that only closing wakes
    read_returned = threading.Event()

    def loop() -> None:
        stream.wait()
        read_returned.set()

    worker = Worker(loop, "test-reader", on_stop=stream.set)
    worker.start()
    assert worker.stop(HANG_GUARD)
    assert read_returned.is_set()


def test_a_stuck_thread_is_reported_and_left_behind() -> None:
    release = threading.Event()
    worker = Worker(release.wait, "test-stuck")
    worker.start()
    try:
        assert worker.stop(0.01) is False
        assert worker.alive and worker.stopping.is_set()
    finally:
        release.set()
    assert worker.join(HANG_GUARD)


def test_join_waits_for_the_loop_to_end_by_itself_without_asking_it() -> None:
    go = threading.Event()
    worker = Worker(go.wait, "test-join")
    worker.start()
    assert worker.join(0.01) is False  # still running; nobody asked it to stop
    assert not worker.stopping.is_set()
    go.set()
    assert worker.join(HANG_GUARD)


def test_stop_from_the_thread_itself_only_asks() -> None:
    answers: list[bool] = []
    worker: Worker

    def loop() -> None:
        answers.append(worker.stop(1.0))  # a callback ending its own worker must not deadlock

    worker = Worker(loop, "test-self")
    worker.start()
    assert worker.join(HANG_GUARD)
    assert answers == [False] and worker.stopping.is_set()


def test_an_on_stop_that_fails_does_not_keep_the_worker_from_stopping() -> None:
    def closed_already() -> None:
        raise OSError("stream already closed")

    worker = Worker(lambda: worker.stopping.wait(), "test-failing-hook", on_stop=closed_already)
    worker.start()
    assert worker.stop(HANG_GUARD)


def test_a_worker_never_started_stops_at_once() -> None:
    assert Worker(lambda: None, "test-idle").stop(0.0)
    assert Worker(lambda: None, "test-idle").join(0.0)
