"""Re-run corpus programs with the installed PyTorch and diagnose their fresh output.

The committed corpus logs were produced the same way (tests/data/make_torch_logs.py); a fresh run
in another workspace, with other pids, temporary directories and timings, must give the same
diagnosis and the *same signature* as the committed log. Skipped when torch is not installed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from phoenix_watchdog.diagnosis.diagnose import diagnose
from phoenix_watchdog.diagnosis.failure import ExitStatus
from tests.kits.corpus import load_spec

pytest.importorskip("torch", exc_type=ImportError)  # absent or broken: skip

DATA = Path(__file__).resolve().parents[2] / "data"
EXPECTED = load_spec(DATA / "logs")["cases"]


def _generator():
    spec = importlib.util.spec_from_file_location("make_torch_logs", DATA / "make_torch_logs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_torch_logs"] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


GEN = _generator()
RUNS = {run.name: run for run in GEN.RUNS}


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize("name", ["torch_shape_mismatch_b17", "torch_dataset_index_error", "torch_config_keyerror",
                                  "torch_missing_checkpoint", "torch_segfault_faulthandler", "torch_ddp_rank_fail",
                                  "torch_gloo_timeout", "torch_logging_prefixed", "torch_teardown_ignored"])
def test_a_fresh_run_diagnoses_like_the_committed_log(name: str, tmp_path: Path) -> None:
    run = RUNS[name]
    ws = GEN.prepare_workspace(tmp_path)
    output, returncode = GEN.run_program(run, ws)
    assert returncode == run.returncode, output[-2000:]
    exit = ExitStatus.from_returncode(returncode)
    fresh = diagnose(output, exit, workspace=str(ws))
    spec = EXPECTED[name]
    assert (fresh.category, fresh.patchable, fresh.exception) == (spec["category"], spec["patchable"], spec["exception"])
    assert (fresh.frame.function if fresh.frame else None, fresh.frame.file if fresh.frame else None) == (
        spec["function"], spec["file"])
    committed = (DATA / "logs" / f"{name}.log").read_text()
    assert fresh.signature == diagnose(committed, exit, workspace="/workspace").signature


@pytest.mark.torch
@pytest.mark.slow
def test_a_fresh_run_from_a_directory_phoenix_does_not_know_keeps_the_signature(tmp_path: Path) -> None:
    """The job ran under another mount than the workspace Phoenix was told: same failure, same signature."""
    run = RUNS["torch_shape_mismatch_b32"]
    ws = GEN.prepare_workspace(tmp_path)
    output, returncode = GEN.run_program(run, ws)
    exit = ExitStatus.from_returncode(returncode)
    committed = (DATA / "logs" / "torch_shape_mismatch_b32.log").read_text()
    assert diagnose(output, exit, workspace="/elsewhere").signature == diagnose(committed, exit, workspace="/workspace").signature
