"""Stack dumps of hung or crashed jobs: py-spy and faulthandler, and which thread explains a hang."""

from __future__ import annotations

from pathlib import Path

from phoenix_watchdog.diagnosis.stackparse import crashed_thread, main_thread, parse_stacks

LOGS = Path(__file__).resolve().parents[2] / "data" / "logs"


def test_a_real_pyspy_dump() -> None:
    threads = parse_stacks((LOGS / "torch_hang_queue.pyspy.stack").read_text().splitlines())
    [t] = threads
    assert (t.name, t.is_main) == ("MainThread", True)
    assert [f.function for f in t.frames] == ["Condition.wait", "Queue.get", "next_batch", "train", "<module>"]
    assert (t.frames[2].file, t.frames[2].line) == ("hang_queue.py", 24)
    assert t.innermost_user("/workspace").function == "next_batch"


def test_a_real_faulthandler_dump() -> None:
    [t] = parse_stacks((LOGS / "torch_hang_spin.faulthandler.stack").read_text().splitlines())
    assert t.current and t.is_main
    assert (t.frames[0].file, t.frames[0].function) == ("/workspace/hang_spin.py", "wait_for_shard")


def test_pyspy_locals_and_native_frames_are_skipped() -> None:
    dump = '''Thread 77 (active): "MainThread"
    step (train.py:12)
        Arguments:
            batch: <Tensor at 0x7f00>
        Locals:
            loss (float): 0.5
    0x7f3a1b2c (libc.so.6)
    <module> (train.py:30)
'''
    [t] = parse_stacks(dump.splitlines())
    assert [(f.function, f.line) for f in t.frames] == [("step", 12), ("<module>", 30)]


def test_the_main_thread_with_user_code_explains_a_hang() -> None:
    threads = parse_stacks((LOGS / "hand_hang_torchrun.pyspy.stack").read_text().splitlines())
    assert len(threads) == 4  # the torchrun agent, two workers, a pin-memory thread
    t = main_thread(threads, "/workspace")
    assert t is not None and t.ident == "5133"
    assert t.innermost_user("/workspace").function == "reduce_metrics"


def test_faulthandler_main_thread_is_the_one_started_by_module() -> None:
    dump = '''Thread 0x00007f01 (most recent call first):
  File "/usr/lib/python3.11/threading.py", line 327 in wait
  File "/usr/lib/python3.11/threading.py", line 1002 in _bootstrap

Current thread 0x00007f02 (most recent call first):
  File "/w/train.py", line 8 in crash
  File "/w/train.py", line 20 in <module>
'''
    threads = parse_stacks(dump.splitlines())
    assert main_thread(threads, "/w").ident == "0x00007f02"
    assert crashed_thread(threads).frames[0].function == "crash"


def test_the_stack_ends_at_the_next_log_line() -> None:
    dump = 'Current thread 0x1 (most recent call first):\n  File "/w/a.py", line 1 in f\n\nExtension modules: torch._C (total: 1)\n  File "/w/b.py", line 2 in g\n'
    [t] = parse_stacks(dump.splitlines())
    assert [f.function for f in t.frames] == ["f"]


def test_no_stack() -> None:
    assert parse_stacks([]) == [] and main_thread([], None) is None and crashed_thread([]) is None
