"""Verification in the isolated copy: compile, then the test command, with a time limit that kills the whole group."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from phoenix_sidecar.events import RepairPromoted, VerificationFinished
from kits.waiting import HANG_GUARD
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.repair import isolation
from kits.repairkit import TRAIN, build_harness, fingerprint, git, make_repo
from testkit import process_alive


def _answer(search: str, replace: str, path: str = "train.py") -> str:
    return json.dumps({"patches": [{"file_path": path, "mode": "search_replace", "search": search, "replace": replace}]})


def test_a_patch_that_does_not_compile_fails_verification(ws: Path) -> None:
    h = build_harness(ws, test_cmd=[sys.executable, "-c", "raise SystemExit(0)"])
    before = fingerprint(ws)
    report = h.engine.apply_answer(_answer('print("Hello!")', 'print("Hello!"'))
    assert report.outcome == "verify_failed" and report.accepted and not report.verified
    assert "does not compile" in report.reason
    assert [(e.stage, e.ok) for e in h.of(VerificationFinished)] == [("py_compile", False)]  # tests never ran
    assert fingerprint(ws) == before
    log = (ws / ".phoenix_cli" / "repairs" / report.repair_id / "verify.log").read_text()
    assert "SyntaxError" in log and "train.py" in log


def test_compilation_happens_in_a_child_interpreter(ws: Path, tmp_path: Path) -> None:
    # Code at module level must never run at compile time, in Phoenix or anywhere.
    marker = tmp_path / "ran"
    h = build_harness(ws, allow_capabilities=True)  # (an absolute write is a capability the guard refuses)
    report = h.engine.apply_answer(_answer("import sys\n", f"import sys\nopen({str(marker)!r}, 'w')\n"))
    assert report.promoted and not marker.exists()


def test_a_failing_test_command_fails_verification(ws: Path) -> None:
    test = [sys.executable, "-c", "import sys; print('3 tests, 1 failed: test_loss'); sys.exit(3)"]
    h = build_harness(ws, test_cmd=test)
    before = fingerprint(ws)
    report = h.engine.apply_answer(_answer('print("Hello!")', 'print("Bye!")'))
    assert report.outcome == "verify_failed"
    assert "test_loss" in report.reason
    assert [(e.stage, e.ok) for e in h.of(VerificationFinished)] == [("py_compile", True), ("test_cmd", False)]
    assert not h.of(RepairPromoted)
    assert fingerprint(ws) == before
    assert list((ws / ".phoenix_cli" / "worktrees").iterdir()) == []


def test_the_test_command_runs_against_the_patched_copy(ws: Path) -> None:
    test = [sys.executable, "-c", "import train; assert 'Bye' in open('train.py').read()"]
    report = build_harness(ws, test_cmd=test).engine.apply_answer(_answer('print("Hello!")', 'print("Bye!")'))
    assert report.promoted, report


def test_a_hanging_test_command_is_killed_with_its_whole_group(ws: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = ("import os, subprocess, sys, time\n"
              "child = subprocess.Popen(['sleep', '300'])\n"
              "grand = subprocess.Popen(['sh', '-c', 'trap \"\" TERM; sleep 300'])\n"
              f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}} {{grand.pid}}')\n"
              "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
              "time.sleep(300)\n")
    # Only the limit can end it: every process sleeps 300 s, past the hang guard. On a machine so
    # loaded that the command was killed before it wrote its pids, try again with twice the limit.
    limit = 1
    while True:
        h = build_harness(ws, test_cmd=[sys.executable, "-c", script], test_timeout_seconds=limit,
                          sandbox="detect")
        started = time.monotonic()
        report = h.engine.apply_answer(_answer('print("Hello!")', 'print("Bye!")'))
        assert time.monotonic() - started < HANG_GUARD, "hang guard: the limit did not end the test command"
        assert report.outcome == "verify_failed" and "timed out" in report.reason
        if pids.exists() and len(pids.read_text().split()) == 3:
            break
        limit *= 2
        assert limit < HANG_GUARD, "hang guard: the test command never got to start"
    for pid in map(int, pids.read_text().split()):
        assert not process_alive(pid), f"process {pid} of the test command outlived it"
    log = (ws / ".phoenix_cli" / "repairs" / report.repair_id / "verify.log").read_text()
    assert f"did not finish within {limit} s" in log


def test_the_test_command_gets_no_llm_secrets_and_a_pythonpath_into_the_copy(ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    script = f"import json, os; json.dump(dict(os.environ), open({str(out)!r}, 'w'))"
    environ = {**os.environ, "GEMINI_API_KEY": "AIzaSyD-secret-gemini-key-000000000000000", "MY_LLM_KEY": "sk-mine",
               "OPENAI_API_KEY": "sk-openai", "PYTHONPATH": f"{ws}:{ws}/lib:/opt/other", "HF_HOME": "/data/hf"}
    h = build_harness(ws, environ=environ, openai_api_key_env="MY_LLM_KEY",
                      test_cmd=[sys.executable, "-c", script], sandbox="detect")
    assert h.engine.apply_answer(_answer('print("Hello!")', 'print("Bye!")')).promoted
    env = json.loads(out.read_text())
    assert not {"GEMINI_API_KEY", "MY_LLM_KEY", "OPENAI_API_KEY"} & set(env)
    assert env["HF_HOME"] == "/data/hf"
    entries = env["PYTHONPATH"].split(":")
    assert entries[0].startswith(str(isolation.copies_dir(StatePaths(ws)))) and entries[1].endswith("/lib")
    assert Path(env["TMPDIR"]).is_relative_to(isolation.copies_dir(StatePaths(ws)))  # the copy's scratch
    assert entries[2] == "/opt/other"


def test_a_patch_that_breaks_a_config_file_fails_verification(tmp_path: Path) -> None:
    ws = make_repo(tmp_path / "ws", {"train.py": TRAIN, "config.yaml": "batch: 64\nlr: 0.1\n"})
    h = build_harness(ws, allowlist=["*.py", "*.yaml"])
    report = h.engine.apply_answer(_answer("batch: 64", "batch: [32", path="config.yaml"))
    assert report.outcome == "verify_failed" and "config.yaml" in report.reason
    good = h.engine.apply_answer(_answer("batch: 64", "batch: 32", path="config.yaml"))
    assert good.promoted and (ws / "config.yaml").read_text() == "batch: 32\nlr: 0.1\n"


def test_the_workspace_changing_during_verification_stops_the_promotion(ws: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # A human edits the REAL workspace file while the repair is verified (the test command cannot).
    from phoenix_sidecar.repair import pipeline
    real = pipeline.verify

    def edit_meanwhile(*args, **kwargs):  # type: ignore[no-untyped-def]
        with open(ws / "train.py", "a") as fh:
            fh.write("# edited by a human meanwhile\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "verify", edit_meanwhile)
    h = build_harness(ws, test_cmd=[sys.executable, "-c", "pass"])
    report = h.engine.apply_answer(_answer('print("Hello!")', 'print("Bye!")'))
    assert report.outcome == "error" and "changed in the workspace" in report.reason
    assert (ws / "train.py").read_text() == TRAIN + "# edited by a human meanwhile\n"
    assert not list((ws / ".phoenix_cli" / "backups").glob("*"))
    assert "train.py" in git(ws, "status", "--porcelain")
