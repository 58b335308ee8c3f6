"""The progress tracker and the hang judge on a controlled clock: learned timeout, divergence, busy GPUs."""

from __future__ import annotations

from phoenix_watchdog.heartbeat import Heartbeat
from phoenix_watchdog.progress import HangJudge, LearnedTimeout, ProgressTracker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tracker(clock: Clock, **kw: object) -> ProgressTracker:
    kw.setdefault("timeout_min", 1.0)
    return ProgressTracker(clock=clock, wall=clock, **kw)  # type: ignore[arg-type]


def steps(t: ProgressTracker, clock: Clock, first: int, last: int, every: float, loss: float = 1.0) -> None:
    for n in range(first, last + 1):
        clock.now += every
        t.feed("stdout", f"step {n} loss={loss}\n".encode())


def test_the_timeout_is_learned_after_the_warm_up_and_bounded() -> None:
    clock = Clock()
    t = tracker(clock, warmup_steps=5, safety_factor=5.0, timeout_max=100.0)
    steps(t, clock, 1, 6, every=30.0)  # warm-up (compilation) teaches nothing
    assert t.timeout() is None and t.progress_deadline() is None
    steps(t, clock, 7, 9, every=2.0)
    assert t.timeout() == 10.0 and t.progress_deadline() == clock.now + 10.0
    steps(t, clock, 10, 12, every=50.0)  # a slow stretch raises it, up to the bound
    assert t.timeout() == 100.0


def test_a_bar_refreshed_in_place_counts_once_per_new_step_and_other_output_is_no_progress() -> None:
    clock = Clock()
    t = tracker(clock)
    for n in range(1, 4):
        clock.now += 1
        t.feed("stderr", f"\r 10%|█         | {n}/30 [00:0{n}<00:27,  1.00it/s]".encode())
    t.feed("stderr", b"\r 10%|\xe2\x96\x88         | 3/30 [00:03<00:27,  1.00it/s]")  # the same step again
    clock.now += 5
    t.feed("stdout", b"NCCL WARN something\n")
    snap = t.snapshot()
    assert (snap.step, snap.steps_seen, snap.total, snap.fmt) == (3, 3, 30, "tqdm")
    assert t.no_progress_for() == 5


def test_what_was_learned_survives_a_restart_and_a_new_run_starts_without_steps() -> None:
    clock = Clock()
    t = tracker(clock, warmup_steps=0)
    steps(t, clock, 1, 10, every=2.0)
    learned = LearnedTimeout.from_json(t.learned.to_json())
    again = tracker(clock, warmup_steps=0, learned=learned)
    assert again.progress_deadline() is None  # no step in this run yet
    steps(again, clock, 40, 40, every=1.0)
    assert again.timeout() == 10.0 and again.snapshot().best_step == 40


def test_nan_and_blowup_losses_are_divergences() -> None:
    clock = Clock()
    t = tracker(clock)
    steps(t, clock, 1, 3, every=1.0)
    t.feed("stdout", b"{'loss': nan, 'learning_rate': 1e-05, 'epoch': 0.1}\n")
    assert t.divergence is not None and t.divergence.kind == "nan" and t.divergence.step == 3

    b = tracker(clock, blowup_factor=10.0, blowup_steps=3)
    steps(b, clock, 1, 20, every=1.0, loss=2.0)
    steps(b, clock, 21, 22, every=1.0, loss=500.0)
    steps(b, clock, 23, 23, every=1.0, loss=2.0)  # a spike that recovers is no blow-up
    steps(b, clock, 24, 25, every=1.0, loss=500.0)
    assert b.divergence is None
    steps(b, clock, 26, 26, every=1.0, loss=900.0)
    assert b.divergence is not None and b.divergence.kind == "blowup" and b.divergence.step == 26


def test_a_slowdown_is_reported_after_its_duration_and_clears() -> None:
    clock = Clock()
    t = tracker(clock, slowdown_fraction=0.5, slowdown_seconds=60.0)
    steps(t, clock, 1, 30, every=1.0)
    steps(t, clock, 31, 40, every=3.0)
    assert not t.snapshot().slowdown  # slow, but not for a minute yet
    steps(t, clock, 41, 70, every=3.0)
    assert t.snapshot().slowdown
    steps(t, clock, 71, 100, every=1.0)
    assert not t.snapshot().slowdown


def test_the_judge_says_which_evidence_decided() -> None:
    clock = Clock()
    hb = Heartbeat(900.0, clock=clock, wall=clock, progress=tracker(clock, warmup_steps=0))
    judge = HangJudge(hb, clock=clock)
    for n in range(1, 10):
        clock.now += 1
        hb.beat("stdout", f"step {n}\n".encode())
    assert judge.deadline() == clock.now + 5.0
    for _ in range(10):  # a logging thread keeps printing: the heartbeat is happy, progress is not
        clock.now += 0.5
        hb.beat("stderr", b"[W] waiting for the collective\n")
    verdict = judge.verdict()
    assert verdict is not None and verdict.evidence == "no_progress" and verdict.seconds == 5.0
    assert "while the output continued" in verdict.detail

    silent = Heartbeat(60.0, clock=clock, wall=clock)  # no progress tracker: silence decides
    j2 = HangJudge(silent, clock=clock)
    clock.now += 61
    v2 = j2.verdict()
    assert v2 is not None and v2.evidence == "silence" and "no output for 61 s" in v2.detail


def test_busy_gpus_defer_the_verdict_up_to_the_grace_and_idle_ones_end_it() -> None:
    clock = Clock()
    busy = {"now": True}
    hb = Heartbeat(60.0, clock=clock, wall=clock)
    judge = HangJudge(hb, busy=lambda: busy["now"], busy_grace=600.0, clock=clock)
    clock.now += 100
    assert judge.verdict() is None and judge.deadline() == 1660.0
    clock.now += 200
    busy["now"] = False
    verdict = judge.verdict()
    assert verdict is not None and verdict.busy_seconds == 200 and "until they went idle" in verdict.detail
    hb.beat("stdout")
    clock.now += 61
    busy["now"] = True
    assert judge.verdict() is None
    clock.now += 600
    assert judge.verdict() is not None  # the grace is a bound

    unknown = HangJudge(Heartbeat(60.0, clock=clock, wall=clock), busy=lambda: None, busy_grace=600.0, clock=clock)
    clock.now += 61
    assert unknown.verdict() is not None  # no reading extends nothing


def test_a_line_split_across_blocks_is_read_once_whole_and_a_flood_reads_its_latest_lines() -> None:
    clock = Clock()
    t = tracker(clock)
    t.feed("stdout", b"iter 41: loss 2.")
    t.feed("stdout", b"5000, time 40.00ms, mfu 1.0%\n")
    snap = t.snapshot()
    assert (snap.step, snap.loss, snap.steps_seen) == (41, 2.5, 1)
    clock.now += 1
    flood = b"".join(f"step {n} loss=1.0\n".encode() for n in range(42, 20000)) + b"step 20000 loss=nan\n"
    t.feed("stdout", flood)  # one read of a job that printed a great deal at once
    assert t.snapshot().step == 20000 and t.divergence is not None
    clock.now += 1
    t.feed("stdout", b"x" * 100_000 + b"\n")  # a block with nothing to read costs no parsing
    assert t.snapshot().step == 20000
