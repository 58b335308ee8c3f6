"""Line cleaning: decorations removed, the writing rank kept, nothing else touched."""

from __future__ import annotations

import pytest

from phoenix_watchdog.diagnosis.logtext import MAX_CHARS, last_overwrite, split_log, strip_ansi, strip_prefixes


@pytest.mark.parametrize(("raw", "text", "stream"), [
    ("[rank3]: Traceback (most recent call last):", "Traceback (most recent call last):", "rank3"),
    ("[rank12]:[E1206 18:44:12.715298746 ProcessGroupNCCL.cpp:616] [Rank 12] Watchdog caught",
     "[Rank 12] Watchdog caught", "rank12"),
    ("[default1]:[rank1]:   File \"/w/t.py\", line 3, in f", "  File \"/w/t.py\", line 3, in f", "local1"),
    ("[1,3]<stderr>:ValueError: bad", "ValueError: bad", "rank3"),
    ("0: step 12 loss 0.1", "step 12 loss 0.1", "rank0"),
    (" 7:   File \"/w/t.py\", line 3, in f", "  File \"/w/t.py\", line 3, in f", "rank7"),
    ("node-a17:2: RuntimeError: x", "RuntimeError: x", "node-a17:2"),
    ("2025-06-02T07:15:42.123456789Z [rank6]:KeyError: 'lr'", "KeyError: 'lr'", "rank6"),
    ("W1124 18:35:32.424000 16199 site-packages/torch/distributed/elastic/multiprocessing/api.py:1028] Sending",
     "Sending", None),
    ("[2025-03-04 09:12:06,918][train][INFO] - eval", "[2025-03-04 09:12:06,918][train][INFO] - eval", None),
])
def test_prefixes_are_removed_and_name_the_stream(raw: str, text: str, stream: str | None) -> None:
    assert strip_prefixes(raw) == (text, stream)


@pytest.mark.parametrize("line", [
    "Epoch 3: 100%|##########| 10/10",
    "train.py:12: UserWarning: something",
    "ValueError: 3: bad value",
    "  File \"/workspace/train.py\", line 12, in main",
    "host:534:1763 [3] NCCL INFO Channel 00/02",
    "12:34:56 tick",
])
def test_ordinary_lines_keep_their_text(line: str) -> None:
    assert strip_prefixes(line) == (line, None)


def test_ansi_colours_are_removed() -> None:
    assert strip_ansi("\x1b[1;31mKeyError\x1b[0m: 'x' \x1b]8;;http://a\x07link\x1b]8;;\x07") == "KeyError: 'x' link"


def test_carriage_returns_keep_what_the_terminal_shows() -> None:
    assert last_overwrite("10%|#  |\r50%|##### |\r100%|##########|") == "100%|##########|"
    assert last_overwrite("loss 0.1\r") == "loss 0.1"


def test_a_traceback_glued_to_a_progress_bar_starts_its_own_line() -> None:
    lines = split_log("\rEval:  5%| | 1/20\rEval: 100%|##| 20/20 [00:00<00:00, 60.12it/s]Traceback (most recent call last):\n"
                      '  File "/w/t.py", line 3, in f\nZeroDivisionError: division by zero\n')
    assert [ln.text for ln in lines] == ["Eval: 100%|##| 20/20 [00:00<00:00, 60.12it/s]",
                                         "Traceback (most recent call last):",
                                         '  File "/w/t.py", line 3, in f', "ZeroDivisionError: division by zero"]
    assert [ln.pos for ln in lines] == [0, 1, 2, 3]


def test_tracebacks_inside_messages_are_not_split() -> None:
    lines = split_log("Original Traceback (most recent call last):\n  traceback : Traceback (most recent call last):\n")
    assert [ln.text for ln in lines] == ["Original Traceback (most recent call last):",
                                         "  traceback : Traceback (most recent call last):"]


def test_crlf_line_endings() -> None:
    assert [ln.text for ln in split_log("a\r\nb\r\n")] == ["a", "b"]


def test_only_the_tail_is_read() -> None:
    head = "x" * 100 + "\n"
    text = head * (MAX_CHARS // len(head) + 10) + "KeyError: 'tail'\n"
    lines = split_log(text)
    assert lines[-1].text == "KeyError: 'tail'"
    assert sum(len(ln.text) + 1 for ln in lines) <= MAX_CHARS
    assert all(ln.text == "x" * 100 for ln in lines[:-1])  # the cut falls on a line boundary


def test_a_traceback_in_a_json_record_is_written_out_after_it() -> None:
    record = ('{"level": "ERROR", "message": "step 3 failed", "exception": "Traceback (most recent call last):\\n'
              '  File \\"/ws/train.py\\", line 9, in step\\n    return batch[\\"label\\"]\\nKeyError: \'label\'"}')
    texts = [ln.text for ln in split_log(f'{{"level": "INFO", "message": "step 2"}}\n{record}\n')]
    assert texts[0] == '{"level": "INFO", "message": "step 2"}'
    assert texts[-4:] == ["Traceback (most recent call last):", '  File "/ws/train.py", line 9, in step',
                          '    return batch["label"]', "KeyError: 'label'"]


def test_a_learnt_prefix_leaves_the_lines_own_indentation() -> None:
    body = ["Traceback (most recent call last):", '  File "/ws/train.py", line 9, in step',
            "    assert torch.isfinite(loss).all()", "AssertionError"]
    log = "".join(f"2026-12-04 22:46:28,9{i}6 - job - INFO - {ln}\n" for i, ln in enumerate(["step 1"] * 4 + body))
    assert [ln.text for ln in split_log(log)][-4:] == body
