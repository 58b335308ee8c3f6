"""Progress under `phoenix run`, with real jobs: a hang while a thread keeps printing, and real
PyTorch (CPU) training whose loss turns NaN or blows up, printed in the common formats."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from testkit import run_phoenix

FAST = ["--set", "backoff_initial_seconds=0.05", "--set", "kill_grace_seconds=1", "--no-repair"]


def state(workspace: Path) -> dict:
    return json.loads((workspace / ".phoenix_cli" / "state.json").read_text())


def test_a_job_that_hangs_while_a_thread_keeps_printing_is_stopped_for_no_progress(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(textwrap.dedent("""
        import sys, threading, time
        for step in range(1, 31):
            time.sleep(0.1)
            print(f"step {step} loss={1.0 / step:.4f}", flush=True)
        def chatter():
            while True:
                print("[W ProcessGroupNCCL] waiting for the collective", file=sys.stderr, flush=True)
                time.sleep(0.05)
        threading.Thread(target=chatter, daemon=True).start()
        time.sleep(600)  # stuck in a collective
    """))
    result = run_phoenix(["run", *FAST, "--set", "progress_timeout_min_seconds=1", "--set", "progress_warmup_steps=2",
                          "--set", "max_retries=0", "--", sys.executable, "job.py"], cwd=tmp_path, timeout=120)
    assert result.returncode == 4, result.stderr[-3000:]
    incident = state(tmp_path)["incidents"][-1]
    assert incident["kind"] == "hang" and incident["step"] == 30
    assert "no new step" in incident["evidence"] and "while the output continued" in incident["evidence"]
    assert state(tmp_path)["progress"]["best_step"] == 30
    shown = run_phoenix(["status", "-w", str(tmp_path)], cwd=tmp_path)
    assert "progress:   step 30, best 30, loss 0.0333," in shown.stdout.decode(), shown.stdout.decode()
    report = json.loads(run_phoenix(["status", "--json", "-w", str(tmp_path)], cwd=tmp_path).stdout)
    assert report["progress"]["step"] == 30 and report["progress"]["timeout_seconds"] >= 1


TRAIN = """
import math, sys, time
import torch

torch.manual_seed(0)
x = torch.randn(256, 8)
y = x @ torch.randn(8, 1)
model = torch.nn.Linear(8, 1)
opt = torch.optim.SGD(model.parameters(), lr={lr})
for step in range(1, 100000):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    value = loss.item()
    {emit}
    time.sleep(0.02)
"""
EMIT = {
    "step": 'print(f"step {step} loss={value:.6g}", flush=True)',
    "nanogpt": 'print(f"iter {step}: loss {value:.4f}, time 20.00ms, mfu 1.00%", flush=True)',
    "hf_trainer": ('sys.stderr.write(f"\\r  {step % 100}%|#   | {step}/100000 [00:01<00:10,  9.50it/s]"); '
                   'sys.stderr.flush(); print({"loss": value, "learning_rate": 0.1, "epoch": step / 1000}, flush=True)'),
}


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize("fmt", sorted(EMIT))
def test_real_training_whose_loss_turns_nan_is_stopped_as_nan_divergence(tmp_path: Path, fmt: str) -> None:
    pytest.importorskip("torch", exc_type=ImportError)
    # A learning rate far past stable: the loss overflows to inf, then NaN, within a few dozen steps.
    (tmp_path / "train.py").write_text(TRAIN.format(lr=5.0, emit=EMIT[fmt]))
    result = run_phoenix(["run", *FAST, "--set", "loss_blowup_factor=0", "--", sys.executable, "train.py"],
                         cwd=tmp_path, timeout=180)
    assert result.returncode == 4, result.stderr[-3000:]
    incident = state(tmp_path)["incidents"][-1]
    assert incident["category"] == "nan_divergence", incident
    assert "the loss is" in incident["evidence"] and ("nan" in incident["evidence"] or "inf" in incident["evidence"])
    assert "repair is switched off" in incident["reason"]  # NaN follows the nan_divergence action (repair)


@pytest.mark.torch
@pytest.mark.slow
def test_real_training_whose_loss_blows_up_is_stopped_for_a_human(tmp_path: Path) -> None:
    pytest.importorskip("torch", exc_type=ImportError)
    # Just past the stable learning rate: the loss grows by a steady factor, finite for hundreds of steps.
    (tmp_path / "train.py").write_text(TRAIN.format(lr=1.05, emit=EMIT["step"]))
    result = run_phoenix(["run", *FAST, "--", sys.executable, "train.py"], cwd=tmp_path, timeout=180)
    assert result.returncode == 4, result.stderr[-3000:]
    incident = state(tmp_path)["incidents"][-1]
    assert incident["category"] == "nan_divergence" and "the loss blew up" in incident["evidence"], incident
    assert "loss blow-up needs a human" in incident["reason"]
