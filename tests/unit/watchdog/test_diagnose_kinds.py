"""The generic causes of the misses a private check set found (issue #10): one test group per cause.

Corpus logs for each cause live in tests/data/logs/hand_*.log with their cases in
expected_kinds.yaml; these tests pin the pieces (a key, a line, a root choice) on their own.
"""

from __future__ import annotations

import pytest

from phoenix_watchdog.diagnosis.classify import nccl_key
from phoenix_watchdog.diagnosis.logtext import LogLine
from phoenix_watchdog.diagnosis.markers import classify_line


def line(text: str) -> LogLine:
    return LogLine(0, text, None)


# ---- A2: NCCL failures keyed on their result code ------------------------------------------------
@pytest.mark.parametrize(("text", "key"), [
    ("gpu-a03:31877:32010 [5] NCCL INFO transport/net.cc:946 -> 2", "ncclSystemError"),
    ("n1:88:91 [0] NCCL INFO proxy.cc:1523 -> 6 [Proxy Thread]", "ncclRemoteError"),
    ("RuntimeError: NCCL error in: ../c10d/ProcessGroupNCCL.cpp:825, unhandled system error, NCCL version 2.7.8",
     "ncclSystemError"),
    ("RuntimeError: NCCL error in: ProcessGroupNCCL.cpp:1191, internal error, NCCL version 2.10.3", "ncclInternalError"),
    ("ncclUnhandledCudaError: Call to CUDA function failed.", "ncclUnhandledCudaError"),
])
def test_an_nccl_failure_is_keyed_on_its_result_code(text: str, key: str) -> None:
    assert nccl_key(text) == key
    f = classify_line(line(text))
    assert f is not None and f.category == "nccl_error" and f.key == key


@pytest.mark.parametrize("text", [
    "n1:88:91 [0] NCCL INFO proxy.cc:1523 -> 7",            # ncclInProgress: not a failure
    "n1:88:91 [0] NCCL INFO Channel 03/0 : 5[5] -> 13[5] [send] via NET/IB/3/GDRDMA",
    "n1:88:91 [0] NCCL WARN NET/IB : Got completion from peer 10.0.0.2<4411> with status=0 opcode=0 len=0",
])
def test_healthy_nccl_lines_are_no_evidence(text: str) -> None:
    assert classify_line(line(text)) is None


def test_a_transport_completion_error_without_an_error_word_is_an_nccl_error() -> None:
    f = classify_line(line("h:1:2 [4] ib_plugin.c:1615 NCCL WARN NET/IB : Got completion from peer 10.1.2.3<5151> "
                           "with status=12 opcode=0 len=0 vendor err 129 (Recv)"))
    assert f is not None and f.category == "nccl_error"


# ---- D7/D8: an NCCL block judged as a whole ------------------------------------------------------
def _judge(*texts: str) -> list[tuple[str, str]]:
    from phoenix_watchdog.diagnosis.markers import scan_markers
    from phoenix_watchdog.diagnosis.nccl import judge_blocks
    lines = [LogLine(i, t, None) for i, t in enumerate(texts)]
    return [(f.category, f.key) for f in judge_blocks(scan_markers(lines, set()), lines)]


def test_a_checktimeout_frame_makes_the_watchdog_block_a_timeout() -> None:
    got = _judge("frame #1: c10d::ProcessGroupNCCL::WorkNCCL::checkTimeout(std::optional<long>) + 0x1d2 (0x1 in t.so)",
                 "Exception raised from ncclCommWatchdog at ../c10d/ProcessGroupNCCL.cpp:1521 (most recent call first):")
    assert got == [("nccl_timeout", "nccl_timeout")]


def test_the_most_specific_code_of_a_block_keys_every_finding_in_it() -> None:
    got = _judge("[Rank 1] Some NCCL operations have failed or timed out. Due to the asynchronous nature",
                 "raised the following async exception: NCCL error: unhandled system error, NCCL version 2.21.5",
                 "NCCL WARN socketProgress: Connection closed by remote peer gpu-c11<51622>",
                 "ncclRemoteError: A call failed possibly due to a network error or a remote process exiting.")
    assert set(got) == {("nccl_error", "ncclSystemError")}


def test_blocks_far_apart_are_judged_apart() -> None:
    filler = ["step ok"] * 100
    got = _judge("ncclInternalError: Internal check failed.", *filler,
                 "[Rank 0] Some NCCL operations have failed or timed out. Due to the asynchronous nature")
    assert got == [("nccl_error", "ncclInternalError"), ("nccl_timeout", "nccl_timeout")]


# ---- C6: a launcher's wrapper exception ----------------------------------------------------------
def _launcher_error(message: str, launcher: str):
    from phoenix_watchdog.diagnosis.pytrace import PyError, SourceFrame
    frames = (SourceFrame(f"/usr/lib/python3.10/site-packages/{launcher}", 139, "sigkill_handler",
                          "raise subprocess.CalledProcessError(returncode=last_return_code, cmd=cmd)"),)
    return PyError("subprocess.CalledProcessError", message, (), frames)


@pytest.mark.parametrize(("message", "category"), [
    ("Command '['/usr/bin/python3', '-u', 'train.py', '--local_rank=", None),  # cut short
    ("Command '['python', 'train.py']' died with <Signals.SIGKILL: 9>.", "unknown"),
    ("Command '['python', 'train.py']' died with <Signals.SIGSEGV: 11>.", "segfault"),
])
@pytest.mark.parametrize("launcher", ["deepspeed/launcher/launch.py", "torch/distributed/launch.py"])
def test_a_launchers_called_process_error_is_only_a_consequence(message: str, category: str | None,
                                                                  launcher: str) -> None:
    from phoenix_watchdog.diagnosis.classify import classify_error
    v = classify_error(_launcher_error(message, launcher), "/workspace")
    assert v.secondary and v.category == category


def test_a_called_process_error_raised_in_user_code_still_counts() -> None:
    from phoenix_watchdog.diagnosis.classify import classify_error
    from phoenix_watchdog.diagnosis.pytrace import PyError, SourceFrame
    err = PyError("subprocess.CalledProcessError", "Command '['./prep']' died with <Signals.SIGSEGV: 11>.", (),
                  (SourceFrame("/workspace/prep.py", 12, "preprocess", "subprocess.run(cmd, check=True)"),))
    v = classify_error(err, "/workspace")
    assert not v.secondary and v.category == "segfault"


# ---- E10: a missing key called as a method -------------------------------------------------------
@pytest.mark.parametrize(("type_", "message", "source", "category"), [
    ("omegaconf.errors.ConfigAttributeError", "Missing key pretty", "print(cfg.pretty())", "code_bug"),
    ("omegaconf.errors.ConfigAttributeError", "Key 'dump' is not in struct", "text = conf.dump ()", "code_bug"),
    ("AttributeError", "'Namespace' object has no attribute 'parse'", "opts = args.parse()", "code_bug"),
    # read, not called: the configuration lacks the value
    ("omegaconf.errors.ConfigAttributeError", "Key 'lr' is not in struct", "lr = cfg.lr * scale", "config_error"),
    ("omegaconf.errors.ConfigAttributeError", "Missing key pretty", "show(cfg.pretty)", "config_error"),
])
def test_a_missing_key_called_as_a_method_is_a_code_bug(type_: str, message: str, source: str, category: str) -> None:
    from phoenix_watchdog.diagnosis.classify import classify_error
    from phoenix_watchdog.diagnosis.pytrace import PyError, SourceFrame
    err = PyError(type_, message, (), (SourceFrame("/workspace/train.py", 52, "main", source),))
    assert classify_error(err, "/workspace").category == category


# ---- B4: an indented bare exception line ---------------------------------------------------------
def test_an_indented_dotted_exception_line_is_evidence() -> None:
    from phoenix_watchdog.diagnosis import diagnose
    d = diagnose("note: see above\n  omegaconf.errors.ConfigKeyError: Key 'epochs' is not in struct\n    full_key: epochs\n")
    assert d.category == "config_error" and d.exception == "omegaconf.errors.ConfigKeyError"


@pytest.mark.parametrize("text", [
    '  File "/w/train.py", line 3, in setup\n    settings.model: dict = load_model_section()\n',  # source under a frame
    "    ValueError: an undotted name indented is too weak to read as an exception\n",
])
def test_indented_lines_that_are_no_exception_line_are_not_evidence(text: str) -> None:
    from phoenix_watchdog.diagnosis import diagnose
    assert diagnose(text).category == "unknown"


# ---- B5: hard-wrapped messages -------------------------------------------------------------------
def _scan(*texts: str, stream: str | None = None) -> list[tuple[str, int]]:
    from phoenix_watchdog.diagnosis.markers import scan_markers
    lines = [LogLine(i, t, stream) for i, t in enumerate(texts)]
    return [(f.category, f.pos) for f in scan_markers(lines, set())]


def test_a_message_wrapped_mid_sentence_is_read_across_both_lines() -> None:
    assert _scan("step 3 ok", "E0101 xla.cc:12] Execution failed: RESOURCE_EXHAUSTED: Out of",
                 "memory while trying to allocate 1073741824 bytes.") == [("cuda_oom", 1)]
    assert _scan("[Rank 0] Watchdog caught collective", "operation timeout: WorkNCCL(SeqNum=3) ran for 600000 ms",
                 stream="rank0") == [("nccl_timeout", 0)]


@pytest.mark.parametrize("texts", [
    ("E0101 xla.cc:12] Execution failed: RESOURCE_EXHAUSTED: Out of.", "memory while trying to allocate 1 bytes."),
    ("E0101 xla.cc:12] Execution failed: RESOURCE_EXHAUSTED: Out of", "Memory while trying to allocate 1 bytes."),
])
def test_lines_that_do_not_continue_each_other_are_not_joined(texts: tuple[str, ...]) -> None:
    assert _scan(*texts) == []
