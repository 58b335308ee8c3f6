"""Log formats the normaliser reads generically: prefixes learnt from their shape, glued progress
output, boxed and innermost-first tracebacks, bare exception lines.

Every example is written here in the format's own shape (not copied from anywhere): a traceback
from one small job, decorated as each logger, launcher or runtime would decorate it.
"""

from __future__ import annotations

import pytest

from phoenix_watchdog.diagnosis import ExitStatus, diagnose
from phoenix_watchdog.diagnosis.logtext import split_log
from phoenix_watchdog.diagnosis.prefixes import find_prefix

TRACE = [
    "Traceback (most recent call last):",
    '  File "/workspace/train.py", line 41, in <module>',
    "    main()",
    '  File "/workspace/train.py", line 33, in main',
    "    loss = step(model, batch)",
    '  File "/workspace/train.py", line 20, in step',
    "    return model.forwrd(batch)",
    "AttributeError: 'Net' object has no attribute 'forwrd'",
]
PROGRESS = [f"step {i} loss {2.0 - i / 100:.3f}" for i in range(6)]


def decorate(prefix: str, lines: list[str]) -> str:
    return "".join(prefix.format(i=i) + ln + "\n" for i, ln in enumerate(lines))


def assert_code_bug(text: str) -> None:
    d = diagnose(text, ExitStatus(code=1), workspace="/workspace")
    assert d.category == "code_bug", d.summary
    assert d.exception == "AttributeError"
    assert d.frame is not None and (d.frame.file, d.frame.function) == ("train.py", "step")


PREFIXES = {
    "logging timestamp and level": "2026-02-11 08:15:{i:02d},417 ERROR ",
    "bracketed level": "[ERROR] ",
    "stderr tag": "[stderr] ",
    "host name": "trn-node-04: ",
    "host and task in brackets": "[trn-node-04:3]: ",
    "kubernetes CRI": "2026-02-11T08:15:{i:02d}.123456789Z stderr F ",
    "docker timestamp": "2026-02-11T08:15:{i:02d}.123456789Z ",
    "srun --label": "3: ",
    "loguru": "2026-02-11 08:15:{i:02d}.417 | ERROR    | __main__:run:88 - ",
    "syslog-ish time and level in brackets": "[08:15:{i:02d}] [ERROR] ",
}


@pytest.mark.parametrize("prefix", PREFIXES.values(), ids=list(PREFIXES))
def test_a_repeated_prefix_is_found_by_its_shape(prefix: str) -> None:
    assert_code_bug(decorate(prefix, PROGRESS + TRACE))


def test_the_prefix_names_the_stream_so_interleaved_hosts_read_apart() -> None:
    a = [f"trn-node-04: {ln}" for ln in TRACE]
    b = [f"trn-node-11: step {i}" for i in range(len(TRACE))]
    mixed = [x for pair in zip(a, b) for x in pair]
    lines = split_log("\n".join(mixed))
    assert {ln.stream for ln in lines} == {"trn-node-04", "trn-node-11"}
    assert_code_bug("\n".join(mixed))


@pytest.mark.parametrize("lines", [
    ["loss: 0.41", "loss: 0.39", "loss: nan", "loss: nan"],            # a metric name, not a host
    ["ValueError: one", "ValueError: two", "ValueError: three"],         # exception lines stay whole
    ["Epoch 1: 100%", "Epoch 2: 100%", "Epoch 3: 100%"],
])
def test_words_that_only_look_like_prefixes_stay(lines: list[str]) -> None:
    assert [ln.text for ln in split_log("\n".join(lines))] == lines


def test_a_prefix_on_few_lines_is_left_alone() -> None:
    assert find_prefix(["[stderr] one", "plain", "[stderr] two"]) is None


def test_a_progress_bar_glued_to_a_kill_message_is_split() -> None:
    text = "Training:  41%|████      | 410/1000 [01:02<01:30,  6.52it/s]Killed\n"
    assert [ln.text for ln in split_log(text)][-1] == "Killed"
    d = diagnose(text, ExitStatus(code=137), workspace="/workspace")
    assert "Killed" in d.evidence[0]


RICH = """\
╭───────────────────── Traceback (most recent call last) ──────────────────────╮
│ /workspace/train.py:33 in main                                               │
│                                                                              │
│   30 │   for batch in loader:                                                │
│ ❱ 33 │   │   loss = step(model, batch)                                       │
│   34 │   │   loss.backward()                                                 │
│                                                                              │
│ /workspace/train.py:20 in step                                               │
│                                                                              │
│   19 │   def step(model, batch):                                             │
│ ❱ 20 │   │   return model.forwrd(batch)                                      │
│                                                                              │
│ ╭─────── locals ────────╮                                                    │
│ │ batch = tensor([...]) │                                                    │
│ ╰───────────────────────╯                                                    │
╰──────────────────────────────────────────────────────────────────────────────╯
AttributeError: 'Net' object has no attribute 'forwrd'
"""


def test_a_rich_box_is_read_as_a_traceback() -> None:
    assert_code_bug(RICH)
    d = diagnose(RICH, ExitStatus(code=1), workspace="/workspace")
    assert d.frame is not None and d.frame.line == 20


LOGURU = """\
2026-02-11 08:15:03.417 | ERROR    | __main__:run:88 - An error has been caught in function 'run', process 'MainProcess' (4242), thread 'MainThread' (1401):
Traceback (most recent call last):

  File "/workspace/train.py", line 33, in main
    loss = step(model, batch)
    │      │    │      └ {'x': tensor([1.])}
    │      │    └ Net()
    │      └ <function step at 0x7f3a2b1c>
    └ None

> File "/workspace/train.py", line 20, in step
    return model.forwrd(batch)
           └ Net()

AttributeError: 'Net' object has no attribute 'forwrd'
"""


def test_a_loguru_backtrace_is_read() -> None:
    assert_code_bug(LOGURU)


def test_frames_printed_innermost_first_are_reversed() -> None:
    text = "\n".join([
        "Traceback (most recent call first):",
        '  File "/workspace/train.py", line 20, in step',
        "    return model.forwrd(batch)",
        '  File "/workspace/train.py", line 33, in main',
        "    loss = step(model, batch)",
        "AttributeError: 'Net' object has no attribute 'forwrd'",
    ])
    assert_code_bug(text)


def test_a_bare_exception_line_is_evidence() -> None:
    text = "\n".join([*PROGRESS, "Evaluation aborted.", "ValueError: expected 3 channels, got 4", "exiting"])
    d = diagnose(text, ExitStatus(code=1), workspace="/workspace")
    assert (d.category, d.exception, d.patchable) == ("code_bug", "ValueError", False)
    other = diagnose(text.replace("3 channels, got 4", "a positive lr"), ExitStatus(code=1), workspace="/workspace")
    assert other.signature != d.signature


def test_a_bare_resource_error_line_names_its_category() -> None:
    text = "loading shards\nMemoryError: Unable to allocate 12.0 GiB for an array\n"
    assert diagnose(text, ExitStatus(code=1)).category == "host_oom"


def test_a_kill_outranks_a_bare_line_printed_earlier() -> None:
    text = "UserWarning is fine\nKeyError: 'optional_field'\nstep 1\nstep 2\nKilled\n"
    assert diagnose(text, ExitStatus(signal=9)).category == "unknown"
