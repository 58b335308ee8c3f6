"""A fix that spans files: `phoenix run` repairs a training project with one bug in its training script and
one in its model module, found only once the first is fixed, and the job finishes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kits.repairkit import make_repo
from testkit import run_phoenix

pytest.importorskip("numpy", reason="the project trains a NumPy model")

DATA = Path(__file__).parent / "data" / "twobugs"
SMOKE = "import subprocess, sys\nsys.exit(subprocess.call([sys.executable, 'train.py', '--steps', '5']))\n"


def test_two_bugs_in_two_files_are_repaired_in_one_run(tmp_path: Path) -> None:
    ws = make_repo(tmp_path / "ws", {name: (DATA / name).read_text() for name in ("model.py", "train.py")}
                   | {"smoke.py": SMOKE})
    standin = tmp_path / "llm.py"
    shutil.copy(DATA / "standin_llm.py", standin)
    answers = tmp_path / "answers.jsonl"
    result = run_phoenix(["run", "--set", "primary=command", "--set", f"llm_cmd={sys.executable} {standin} {answers}",
                          "--set", "allowlist=model.py;train.py", "--set", f"test_cmd={sys.executable} smoke.py",
                          "--set", "backoff_initial_seconds=0.1", "--set", "max_retries=3",
                          "--", sys.executable, "train.py", "--steps", "200"], cwd=ws, timeout=600)

    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert b"training finished" in result.stdout
    # The first answer fixed train.py and failed verification in model.py; the next prompt showed
    # model.py, and the answer fixing both was verified and promoted.
    fixed = [json.loads(line) for line in answers.read_text().splitlines()]
    assert fixed[0] == ["train.py"] and fixed[-1] == ["train.py", "model.py"] and len(fixed) == 2
    assert 'cfg["lr"]' in (ws / "train.py").read_text()
    assert "(vocab_size, embed)" in (ws / "model.py").read_text()
    history = json.loads(run_phoenix(["history", "--json", "--repairs", "-w", str(ws)], cwd=ws).stdout)
    assert [r["outcome"] for r in history] == ["verify_failed", "promoted"]
    state = json.loads((ws / ".phoenix_cli" / "state.json").read_text())
    assert state["job"]["state"] == "succeeded"
    rerun = subprocess.run([sys.executable, "train.py", "--steps", "3"], cwd=ws, capture_output=True, timeout=120)
    assert rerun.returncode == 0
