"""Verification that proves something: the three trivial passes found in trials are refused or reported."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kits.repairkit import build_harness, make_repo

MODEL = "def scale(x):\n    return x * 3  # bug: should double\n"
TEST = "from model import scale\n\n\ndef test_scale():\n    assert scale(2) == 4\n"
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def _sr(path: str, search: str, replace: str) -> str:
    return json.dumps({"patches": [{"file_path": path, "mode": "search_replace", "search": search, "replace": replace}]})


def _ws(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    return make_repo(tmp_path / "ws", {"model.py": MODEL, "tests/test_model.py": TEST, **(extra or {})})


def test_a_module_that_exits_0_under_pytest_is_refused_twice_over(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    cheat = _sr("model.py", "def scale(x):\n", 'import os, sys\nif "pytest" in sys.modules:\n    os._exit(0)\n\n\n'
                                                "def scale(x):\n")
    guarded = build_harness(ws, test_cmd=[*PYTEST, "tests"]).engine.apply_answer(cheat)
    assert guarded.outcome == "rejected" and guarded.reason_code == "capability", guarded
    # With the guard off, the exit code 0 still proves nothing: pytest wrote no report.
    report = build_harness(ws, test_cmd=[*PYTEST, "tests"], allow_capabilities=True).engine.apply_answer(cheat)
    assert report.outcome == "verify_failed" and "no report" in report.reason, report
    assert (ws / "model.py").read_text() == MODEL
    # The honest fix passes, with tests that ran.
    fixed = build_harness(ws, test_cmd=[*PYTEST, "tests"]).engine.apply_answer(_sr("model.py", "x * 3", "x * 2"))
    assert fixed.outcome == "promoted" and fixed.unverified is None, fixed


def test_the_script_the_test_command_runs_is_protected(tmp_path: Path) -> None:
    ws = _ws(tmp_path, {"smoke.py": "from model import scale\nassert scale(2) == 4, 'wrong'\nprint('ok')\n"})
    h = build_harness(ws, test_cmd=["python3", "smoke.py"])
    report = h.engine.apply_answer(_sr("smoke.py", "assert scale(2) == 4, 'wrong'", "pass"))
    assert report.outcome == "rejected" and report.reason_code == "denylist", report
    assert "named by the test command" in report.reason
    assert "pass" not in (ws / "smoke.py").read_text()


def test_a_test_file_named_by_the_command_is_protected_whatever_its_name(tmp_path: Path) -> None:
    ws = _ws(tmp_path, {"checks.py": TEST.replace("test_scale", "test_scale_checks")})
    h = build_harness(ws, test_cmd=[*PYTEST, "checks.py"])
    report = h.engine.apply_answer(_sr("checks.py", "assert scale(2) == 4", "assert True"))
    assert report.outcome == "rejected" and report.reason_code == "denylist", report


def test_a_test_command_that_passes_without_the_fix_is_reported_as_proving_nothing(tmp_path: Path) -> None:
    ws = _ws(tmp_path, {"tests/test_other.py": "def test_nothing():\n    assert True\n"})
    h = build_harness(ws, test_cmd=[*PYTEST, "tests/test_other.py"])
    report = h.engine.apply_answer(_sr("model.py", "x * 3", "x * 2"))
    assert report.outcome == "promoted" and report.unverified == "the test command passes without the fix", report
    assert "unverified" in report.reason
    outcome = json.loads((ws / ".phoenix_cli" / "repairs" / report.repair_id / "outcome.json").read_text())
    assert outcome["unverified"] == "the test command passes without the fix"
    assert outcome["sandbox"].startswith("sandbox: ")


def test_pytest_that_collects_nothing_verifies_nothing(tmp_path: Path) -> None:
    ws = _ws(tmp_path, {"tests/test_empty.py": "# no tests here\n"})
    report = build_harness(ws, test_cmd=[*PYTEST, "tests/test_empty.py"]).engine.apply_answer(
        _sr("model.py", "x * 3", "x * 2"))
    assert report.outcome == "verify_failed", report
