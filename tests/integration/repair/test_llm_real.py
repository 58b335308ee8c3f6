"""Repairs by a real small model: llama-cpp-python's server with Qwen2.5-Coder-1.5B (GGUF) on planted bugs.

Skipped unless both are present: ``PHOENIX_TEST_GGUF`` names the model file and
``PHOENIX_TEST_LLAMA_PYTHON`` a Python that has ``llama_cpp.server`` (``pip install
'llama-cpp-python[server]'``: about 11 minutes to build on 2 cores, so not in every CI run; run it,
and ``bench/bench_llm_repair.py``, before a change to repair/ is submitted). The server runs with
its own defaults (a 2048-token window, ``json_schema`` refused with HTTP 500): out of the box, every
repair must reach the model and have its answer judged, and the model's right answers must be
placed and promoted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kits.llmbugs import BUGS, expected_line, job_files
from kits.repairkit import build_harness, make_repo
from phoenix_sidecar.repair import RepairRequest
from phoenix_watchdog.diagnosis.diagnose import diagnose
from phoenix_watchdog.diagnosis.failure import ExitStatus

GGUF = os.environ.get("PHOENIX_TEST_GGUF", "")
SERVER_PYTHON = os.environ.get("PHOENIX_TEST_LLAMA_PYTHON", "")

pytestmark = [pytest.mark.llm_real, pytest.mark.slow, pytest.mark.skipif(
    not (GGUF and Path(GGUF).is_file() and SERVER_PYTHON and Path(SERVER_PYTHON).is_file()),
    reason="no real model: set PHOENIX_TEST_GGUF and PHOENIX_TEST_LLAMA_PYTHON")]

# Bugs this model gets right in intent (bench/bench_llm_repair.py measures the rest): its right answers
# must be placed, verified and promoted, whatever their quoting.
PLANTED = ("typo_name", "wrong_dict_key", "attribute_typo")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
    from bench_llm_repair import start_server  # the bench's own launcher: one way to start it

    proc, url = start_server(SERVER_PYTHON, GGUF, None, tmp_path_factory.mktemp("llm") / "server.log")
    yield url
    proc.terminate()
    proc.wait(30)


@pytest.mark.parametrize("name", PLANTED)
def test_a_real_small_model_repairs_a_planted_bug(server: str, name: str, tmp_path: Path) -> None:
    bug = next(b for b in BUGS if b.name == name)
    ws = make_repo(tmp_path / "job", job_files(bug, expected_line(bug, tmp_path / "fixed")))
    run = subprocess.run([sys.executable, "train.py"], cwd=ws, capture_output=True, text=True, timeout=120)
    log = run.stdout + run.stderr
    h = build_harness(ws, primary="openai", openai_url=server, llm_timeout_seconds=600,
                      test_cmd=[sys.executable, "check.py"])
    outcomes = []
    for _ in range(3):  # as the supervisor would ask again, showing the previous answer
        outcome = h.engine.repair(RepairRequest(diagnose(log, ExitStatus.from_returncode(run.returncode),
                                                         workspace=str(ws)), log))
        outcomes.append((outcome.outcome, outcome.reason))
        assert outcome.outcome != "llm_failed", outcomes  # the protocol always reaches the model
        if outcome.outcome == "promoted":
            break
    assert outcomes[-1][0] == "promoted", outcomes
    assert subprocess.run([sys.executable, "check.py"], cwd=ws, capture_output=True, timeout=120).returncode == 0
