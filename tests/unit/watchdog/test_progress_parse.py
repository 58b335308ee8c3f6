"""The progress parser on lines as the common training stacks print them (written from their formats)."""

from __future__ import annotations

import math

import pytest

from phoenix_watchdog.progress.parse import ProgressParser, Reading, compile_pattern

P = ProgressParser()

CASES = [
    # tqdm, a plain loop
    (" 12%|█▏        | 120/1000 [00:24<02:56,  4.98it/s]", Reading(120, 1000, None, 4.98, "it/s", "tqdm")),
    ("  3%|▎         | 30/1000 [00:05<02:40,  6.25s/it]", Reading(30, 1000, None, 0.16, "it/s", "tqdm")),
    ("100it [00:20,  4.98it/s]", Reading(100, None, None, 4.98, "it/s", "tqdm")),
    # PyTorch Lightning's TQDM bar (global step = epoch x batches + batch) and its rich bar
    ("Epoch 2:  45%|████▌     | 45/100 [00:09<00:11,  4.87it/s, v_num=0, train_loss=0.512]",
     Reading(245, 100, 0.512, 4.87, "it/s", "lightning")),
    ("Epoch 1/9  ━━━━━━━━━━━━━━━━━━━━ 45/100 0:00:09 • 0:00:11 4.87it/s v_num: 0 train_loss: 0.512",
     Reading(145, 100, 0.512, 4.87, "it/s", "lightning")),
    # Hugging Face Trainer: the bar has the step, the log dict the loss
    (" 30%|███       | 300/1000 [01:02<02:25,  4.81it/s]", Reading(300, 1000, None, 4.81, "it/s", "tqdm")),
    ("{'loss': 0.5123, 'grad_norm': 1.234, 'learning_rate': 4.9e-05, 'epoch': 0.3}",
     Reading(None, None, 0.5123, None, "", "hf_trainer")),
    # Megatron-LM
    (" iteration      100/  500000 | consumed samples:        51200 | elapsed time per iteration (ms): 250.0 | "
     "learning rate: 1.500E-04 | global batch size:   512 | lm loss: 6.789E+00 | loss scale: 65536.0 | "
     "grad norm: 1.234 | number of skipped iterations:   0 | number of nan iterations:   0 |",
     Reading(100, 500000, 6.789, 4.0, "it/s", "megatron")),
    # DeepSpeed
    ("[2024-05-01 10:00:00,123] [INFO] [logging.py:96:log_dist] [Rank 0] step=100, skipped=0, lr=[0.0001], "
     "mom=[(0.9, 0.999)]", Reading(100, None, None, None, "", "deepspeed")),
    ("steps: 100 loss: 2.3456 iter time (s): 0.512 samples/sec: 62.5",
     Reading(100, None, 2.3456, 62.5, "samples/s", "deepspeed")),
    # nanoGPT
    ("iter 100: loss 2.3456, time 250.00ms, mfu 12.34%", Reading(100, None, 2.3456, 4.0, "it/s", "nanogpt")),
    ("step 500: train loss 2.1000, val loss 2.3000", Reading(500, None, 2.1, None, "", "step")),
    # hand-written loops
    ("Step 42 | loss=0.731 | 1234.5 tokens/s", Reading(42, None, 0.731, 1234.5, "tokens/s", "step")),
    ("iteration 7/100 loss: inf", Reading(7, 100, math.inf, None, "", "step")),
    ("global_step=17 loss=0.25", Reading(17, None, 0.25, None, "", "step")),
]


@pytest.mark.parametrize(("line", "expected"), CASES, ids=[c[1].fmt + ":" + c[0][:30] for c in CASES])
def test_each_format_gives_its_step_loss_and_throughput(line: str, expected: Reading) -> None:
    got = P.parse(line)
    assert got is not None
    assert (got.step, got.total, got.fmt, got.unit) == (expected.step, expected.total, expected.fmt, expected.unit)
    assert got.loss == pytest.approx(expected.loss) if expected.loss is not None else got.loss is None
    if expected.throughput is None:
        assert got.throughput is None
    else:
        assert got.throughput == pytest.approx(expected.throughput, rel=0.02)


@pytest.mark.parametrize("line", [
    "Downloading: 45%|████▌     | 45.0M/100M [00:09<00:11, 4.87MB/s]",          # bytes, not steps
    "Map: 100%|██████████| 1000/1000 [00:00<00:00, 5000.00 examples/s]",       # examples, not steps
    "NCCL WARN Timeout waiting for connect from peer 3",
    "Traceback (most recent call last):",
    "loss scale: 65536.0",
    "",
])
def test_lines_without_progress_are_not_read_as_progress(line: str) -> None:
    assert P.parse(line) is None


def test_a_nan_loss_is_read_as_nan_in_every_place_it_is_printed() -> None:
    for line in ("{'loss': nan, 'grad_norm': nan, 'learning_rate': 4.9e-05, 'epoch': 0.3}",
                 "iter 12: loss nan, time 40.00ms, mfu 1.00%", "step 3 loss=NaN"):
        reading = P.parse(line)
        assert reading is not None and reading.loss is not None and math.isnan(reading.loss), line


def test_a_custom_pattern_is_tried_first_and_knows_epochs() -> None:
    parser = ProgressParser(r"\[E(?P<epoch>\d+) B(?P<step>\d+)/(?P<total>\d+)\] obj=(?P<loss>\S+)")
    assert parser.parse("[E3 B10/50] obj=0.25") == Reading(160, 50, 0.25, None, "", "custom")
    assert parser.parse("iter 5: loss 1.0") is not None  # the built-in formats still apply


@pytest.mark.parametrize(("pattern", "problem"), [
    ("(", "not a valid regular expression"),
    (r"epoch (\d+)", "needs a named group"),
    (r"(?P<step>\d+) (?P<lr>\S+)", "unknown groups ['lr']"),
])
def test_a_bad_pattern_is_refused_saying_why(pattern: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        compile_pattern(pattern)


def test_the_readme_example_pattern_reads_its_example_line() -> None:
    import re as _re

    import yaml

    from testkit import REPO

    readme = (REPO / "README.md").read_text()
    block = _re.search(r"```yaml\n(progress_pattern: .*?)\n```", readme, _re.S)
    assert block is not None
    pattern = yaml.safe_load(block.group(1))["progress_pattern"]
    got = ProgressParser(pattern).parse("[ep 3 | batch 120/500] objective=0.4213 (812 samples/s)")
    assert got == Reading(1620, 500, 0.4213, 812.0, "/s", "custom")
