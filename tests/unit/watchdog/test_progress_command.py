"""`phoenix progress FILE`: what Phoenix recognises in a log, through the real command line (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phoenix_sidecar.cli import main

HF_LOG = (
    b"***** Running training *****\n"
    + b"".join(f"\r  {n}%|\xe2\x96\x88         | {n}/100 [00:0{n % 10}<00:20,  4.9{n % 10}it/s]".encode()
               for n in range(1, 11))
    + b"\n{'loss': 2.5, 'grad_norm': 3.1, 'learning_rate': 4.9e-05, 'epoch': 0.1}\n"
    + b"{'loss': nan, 'grad_norm': nan, 'learning_rate': 4.8e-05, 'epoch': 0.2}\n"
)


def test_it_shows_the_format_the_steps_and_a_nan_loss(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(HF_LOG)
    assert main(["progress", "--lines", str(log)]) == 0
    out = capsys.readouterr().out
    assert "tqdm (10), hf_trainer (2)" in out and "10 distinct, 1 -> 10 (best 10)" in out
    assert "1 NaN/inf" in out and "the loss is nan at step 10" in out
    assert "tqdm step 10/100" in out


def test_a_custom_pattern_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "train.log"
    log.write_text("[E0 B1/5] obj=0.9\n[E0 B2/5] obj=0.8\nunrelated\n")
    assert main(["progress", "--json", "--pattern", r"\[E(?P<epoch>\d+) B(?P<step>\d+)/(?P<total>\d+)\] "
                 r"obj=(?P<loss>\S+)", str(log)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["formats"] == {"custom": 2} and report["last_step"] == 2 and report["last_loss"] == 0.8


def test_a_log_without_progress_says_what_to_do_and_a_bad_pattern_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "train.log"
    log.write_text("loading data\nstill loading\n")
    assert main(["progress", str(log)]) == 0
    assert "set progress_pattern" in capsys.readouterr().out
    assert main(["progress", "--pattern", "(", str(log)]) == 2
    assert "not a valid regular expression" in capsys.readouterr().err
