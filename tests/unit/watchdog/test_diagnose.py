"""Whole-log decisions: which evidence wins when a log holds several, and what the report says."""

from __future__ import annotations

from phoenix_watchdog.diagnosis.diagnose import diagnose
from phoenix_watchdog.diagnosis.failure import ExitStatus, HangInfo

WS = "/ws"


def tb(exc: str, function: str = "step", file: str = "/ws/train.py", prefix: str = "") -> str:
    lines = ["Traceback (most recent call last):",
             f'  File "{file}", line 40, in <module>', "    main()",
             f'  File "{file}", line 12, in {function}', "    do_it()", exc]
    return "\n".join(prefix + line for line in lines) + "\n"


PROGRESS = "".join(f"step {i} | loss 0.{i:03d}\n" for i in range(200))


def test_a_plain_bug() -> None:
    d = diagnose(tb("ValueError: bad shape 3"), ExitStatus(code=1), workspace=WS)
    assert (d.category, d.patchable, d.exception, d.message) == ("code_bug", True, "ValueError", "bad shape 3")
    assert (d.frame.file, d.frame.line, d.frame.function) == ("train.py", 12, "step")
    assert d.files == ("train.py",)
    assert d.summary == "ValueError: bad shape 3 (at train.py:12 in step)"  # the category has its own field
    assert d.to_json()["frame"] == {"file": "train.py", "line": 12, "function": "step"}


def test_an_exception_the_job_survived_does_not_explain_a_later_kill() -> None:
    log = tb("requests.exceptions.HTTPError: 502 Server Error") + PROGRESS
    assert diagnose(log, ExitStatus(code=137), workspace=WS).category == "unknown"
    log = tb("KeyError: 'x'") + PROGRESS + "Fatal Python error: Segmentation fault\n"
    assert diagnose(log, ExitStatus(signal=11), workspace=WS).category == "segfault"
    # ...but with nothing else to go on it is still the best lead
    assert diagnose(tb("KeyError: 'x'") + PROGRESS, ExitStatus(code=1), workspace=WS).category == "code_bug"


def test_a_crash_while_shutting_down_after_an_exception_is_the_exception() -> None:
    log = tb("ValueError: bad batch") + "Fatal Python error: Segmentation fault\n\nExtension modules: torch._C (total: 1)\n"
    d = diagnose(log, ExitStatus(code=139), workspace=WS)
    assert (d.category, d.exception) == ("code_bug", "ValueError")


def test_sigkill_without_oom_evidence_is_unknown_and_the_oom_flag_decides() -> None:
    d = diagnose(PROGRESS, ExitStatus(code=137), workspace=WS)
    assert (d.category, d.patchable) == ("unknown", False)
    assert "SIGKILL" in d.summary and "OOM" in d.summary
    assert diagnose(PROGRESS, ExitStatus(code=137, oom_killed=True), workspace=WS).category == "host_oom"
    oom_line = "[1804623.9] Memory cgroup out of memory: Killed process 48213 (python3)\n"
    assert diagnose(PROGRESS + oom_line, ExitStatus(code=137), workspace=WS).category == "host_oom"


def test_the_first_failing_rank_is_the_root_cause() -> None:
    log = (tb("ValueError: rank 1 saw a bad batch", "validate", prefix="[rank1]: ")
           + tb("RuntimeError: Connection closed by peer [127.0.0.1]:1234 (gloo pair.cc)", prefix="[rank0]: ")
           + tb("KeyError: 'later'", "other", prefix="[rank2]: "))
    d = diagnose(log, ExitStatus(code=1), workspace=WS)
    assert (d.exception, d.frame.function) == ("ValueError", "validate")


def test_torchruns_root_cause_rank_outranks_an_earlier_rank() -> None:
    log = (tb("KeyError: 'first printed'", "a", prefix="[rank0]: ") + tb("ValueError: root cause", "b", prefix="[rank3]: ")
           + "Root Cause (first observed failure):\n[0]:\n  rank      : 3 (local_rank: 3)\n  exitcode  : 1 (pid: 9)\n"
             "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html\n=====\n")
    assert diagnose(log, workspace=WS).exception == "ValueError"


def test_hardware_explains_everything_after_it() -> None:
    log = ("NVRM: Xid (PCI:0000:3b:00): 79, pid=1, name=python3, GPU has fallen off the bus.\n"
           + tb("RuntimeError: CUDA error: unknown error", "train_step"))
    d = diagnose(log, ExitStatus(code=1), workspace=WS)
    assert (d.category, d.patchable, d.frame.function) == ("gpu_hardware", False, "train_step")
    assert d.evidence[0].startswith("NVRM: Xid")


def test_nccl_errors_are_consequences_of_a_rank_that_died_first() -> None:
    log = (tb("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.", "forward", prefix="[rank2]:")
           + "[rank0]:[E306 03:10:00.1 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout:"
             " WorkNCCL(SeqNum=5, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600010 milliseconds"
             " before timing out.\n")
    assert diagnose(log, workspace=WS).category == "cuda_oom"


def test_a_thread_that_died_is_not_what_ended_the_run() -> None:
    log = "Exception in thread Thread-1 (prefetch):\n" + tb("OSError: shard unreadable", "prefetch") + tb("ZeroDivisionError: division by zero", "metrics")
    assert diagnose(log, workspace=WS).exception == "ZeroDivisionError"


def test_user_frames_when_the_job_saw_another_workspace_path() -> None:
    # The job ran under /workspace; Phoenix knows the same directory as /srv/job.
    d = diagnose(tb("ValueError: x"), ExitStatus(code=1), workspace="/srv/job")
    assert (d.frame.file, d.frame.function, d.patchable) == ("/ws/train.py", "step", True)


def test_files_are_listed_once_innermost_last() -> None:
    log = """Traceback (most recent call last):
  File "/ws/train.py", line 50, in <module>
  File "/ws/train.py", line 40, in main
  File "/ws/models/net.py", line 20, in forward
  File "/usr/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1747, in _call_impl
  File "/ws/models/blocks.py", line 9, in forward
  File "/ws/models/net.py", line 30, in helper
TypeError: unsupported operand
"""
    d = diagnose(log, workspace=WS)
    assert d.files == ("train.py", "models/blocks.py", "models/net.py")
    assert (d.frame.file, d.frame.function) == ("models/net.py", "helper")


def test_an_exception_without_user_frames_is_a_bug_no_patch_can_reach() -> None:
    log = tb("ValueError: bad", file="/usr/lib/python3.11/site-packages/lib/x.py")
    d = diagnose(log, workspace=WS)
    assert (d.category, d.patchable, d.frame) == ("code_bug", False, None)


def test_hang_signature_follows_the_main_threads_position() -> None:
    def stack(line: int, func: str = "wait_for_data") -> str:
        return f'Thread 1 (idle): "MainThread"\n    {func} (train.py:{line})\n    <module> (train.py:90)\n'
    a = diagnose("", None, HangInfo(900, stack(40)), workspace=WS)
    b = diagnose(PROGRESS, ExitStatus(signal=9), HangInfo(1200, stack(44)), workspace=WS)
    c = diagnose("", None, HangInfo(900, stack(40, "other")), workspace=WS)
    assert a.signature == b.signature != c.signature
    assert (a.category, a.patchable, a.frame.function) == ("hang", True, "wait_for_data")
    assert a.summary == "no output for 900 s; main thread in wait_for_data (train.py:40)"


def test_nothing_to_go_on() -> None:
    d = diagnose("", None)
    assert (d.category, d.patchable, d.exception, d.frame) == ("unknown", False, None, None)
    assert d.evidence == ("the log is empty", "no exit status")
    assert diagnose("\x00\ufffd garbage \x1b[", ExitStatus(code=1)).category == "unknown"
    assert diagnose("", ExitStatus(code=1)).signature != diagnose("", ExitStatus(code=2)).signature


def test_a_hang_outside_user_code_has_no_user_frame_and_no_patch() -> None:
    stack = 'Thread 1 (active): "MainThread"\n    all_reduce (torch/distributed/distributed_c10d.py:2501)\n' \
            '    <module> (torchrun:8)\n'
    d = diagnose("step 9 loss 0.1\n", None, HangInfo(600, stack), workspace=WS)
    assert (d.category, d.patchable, d.frame, d.files) == ("hang", False, None, ())
    assert "all_reduce" in d.summary and "last output: step 9 loss 0.1" in d.evidence
    assert d.signature == diagnose("", None, HangInfo(900, stack.replace("2501", "2510")), workspace=WS).signature


def test_a_flood_of_logged_retries_is_read_once() -> None:
    retry = ('Traceback (most recent call last):\n  File "/ws/train.py", line 3, in fetch\n    r = get(url)\n'
             "requests.exceptions.ReadTimeout: timed out\nretrying...\n")
    d = diagnose(retry * 5000, ExitStatus(code=1), workspace=WS)
    assert (d.category, d.exception, d.frame.function) == ("unknown", "requests.exceptions.ReadTimeout", "fetch")


def test_an_exception_group_reports_its_first_member() -> None:
    log = ('  + Exception Group Traceback (most recent call last):\n  |   File "/ws/train.py", line 8, in main\n'
           '  | ExceptionGroup: loaders failed (2 sub-exceptions)\n  +-+---------------- 1 ----------------\n'
           '    | Traceback (most recent call last):\n    |   File "/ws/data.py", line 2, in load_a\n'
           "    | FileNotFoundError: [Errno 2] No such file or directory: 'a.bin'\n    +---------------- 2 ----------------\n"
           '    | Traceback (most recent call last):\n    |   File "/ws/data.py", line 5, in load_b\n'
           "    | KeyError: 'b'\n    +------------------------------------\n")
    d = diagnose(log, ExitStatus(code=1), workspace=WS)
    assert (d.category, d.exception, d.frame.function) == ("missing_file", "FileNotFoundError", "load_a")


def test_a_faulthandler_dump_with_launcher_prefixes() -> None:
    stack = ('[default0]:Current thread 0x00007f02 (most recent call first):\n'
             '[default0]:  File "/ws/train.py", line 8 in wait_for_data\n'
             '[default0]:  File "/ws/train.py", line 20 in <module>\n')
    d = diagnose("", None, HangInfo(900, stack), workspace=WS)
    assert (d.frame.file, d.frame.function, d.patchable) == ("train.py", "wait_for_data", True)


def test_a_long_message_leaves_room_for_the_location_in_the_summary() -> None:
    d = diagnose(tb("ValueError: " + "x" * 1000), workspace=WS)
    assert len(d.summary) <= 300 and d.summary.endswith("(at train.py:12 in step)")


def test_a_thread_that_died_is_the_root_when_the_main_thread_then_misses_its_result() -> None:
    log = ("Exception in thread Thread-1 (prefetch):\n" + tb("OSError: shard unreadable", "prefetch")
           + tb("IndexError: list index out of range", "next_batch"))
    d = diagnose(log, workspace=WS)
    assert (d.exception, d.frame.function) == ("OSError", "prefetch")
