"""Whole repairs of a small training script with a planted bug: real crash, real LLM stand-ins, real verification."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from phoenix_sidecar.events import LlmCalled, RepairFinished, RepairPromoted, VerificationFinished
from phoenix_sidecar.repair import RepairRequest
from phoenix_watchdog.diagnosis.failure import Diagnosis, Frame
from kits.repairkit import ScriptedServer, build_harness, make_repo, openai_reply

TRAIN = textwrap.dedent('''\
    """A tiny training loop."""
    import argparse
    import json
    import math
    import random


    def load_config(path):
        with open(path) as fh:
            return json.load(fh)


    def train(cfg, steps):
        random.seed(0)
        w, total_loss = 0.0, 0.0
        for step in range(steps):
            x = random.random()
            pred, y = w * x, 3.0 * x
            loss = (pred - y) ** 2
            w -= cfg["lr"] * 2 * (pred - y) * x
            total_loss += los
            print(f"step {step} batch {cfg['batch_size']} loss {loss:.4f}", flush=True)
        return total_loss / steps


    def main():
        parser = argparse.ArgumentParser()
        parser.add_argument("--steps", type=int, default=20)
        args = parser.parse_args()
        avg = train(load_config("config.json"), args.steps)
        assert math.isfinite(avg)
        print(f"done avg loss {avg:.4f}")


    if __name__ == "__main__":
        main()
''')
CONFIG = '{"lr": 0.1, "batch_size": 64}\n'
RIGHT = {"file_path": "train.py", "mode": "search_replace", "search": "        total_loss += los\n",
         "replace": "        total_loss += loss\n"}
WRONG = {"file_path": "train.py", "mode": "search_replace", "search": "        total_loss += los\n",
         "replace": "        total_loss += loss_value\n"}

# The LLM stand-in: reads the prompt on stdin, keeps it, and answers according to what it was shown.
FIXER = textwrap.dedent('''\
    import json, pathlib, sys
    state = pathlib.Path(sys.argv[1])
    prompt = sys.stdin.read()
    n = len(list(state.glob("prompt-*.txt"))) + 1
    (state / f"prompt-{n}.txt").write_text(prompt)
    plan = json.loads((state / "plan.json").read_text())
    answer = plan[min(n, len(plan)) - 1]
    needs = answer.pop("_needs", [])
    if all(s in prompt for s in needs):
        print("Here is the fix:\\n```json\\n" + json.dumps({"patches": [answer]}) + "\\n```")
    else:
        print("I could not find what I was told to look for: " + repr([s for s in needs if s not in prompt]))
''')


def _crash(ws: Path) -> tuple[str, int]:
    run = subprocess.run([sys.executable, "train.py", "--steps", "2"], cwd=ws, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 1 and "NameError" in run.stderr
    line = int(re.findall(r'File ".*train.py", line (\d+)', run.stderr)[-1])
    return run.stdout + run.stderr, line


def _diagnosis(ws: Path, line: int, **kw) -> Diagnosis:  # type: ignore[no-untyped-def]
    fields = dict(signature="c0ffee00", category="code_bug", patchable=True, exception="NameError",
                  message="name 'los' is not defined", frame=Frame(str(ws / "train.py"), line, "train"),
                  summary="NameError: name 'los' is not defined in train()", files=(str(ws / "train.py"),))
    fields.update(kw)
    return Diagnosis(**fields)  # type: ignore[arg-type]


# The test command's own script (which it names, so no patch may change it) runs three steps of training.
SMOKE = "import subprocess, sys\nsys.exit(subprocess.call([sys.executable, 'train.py', '--steps', '3']))\n"


@pytest.fixture
def job(tmp_path: Path) -> tuple[Path, Path]:
    ws = make_repo(tmp_path / "job", {"train.py": TRAIN, "config.json": CONFIG, "smoke.py": SMOKE})
    state = tmp_path / "llm"
    state.mkdir()
    (tmp_path / "fixer.py").write_text(FIXER)
    return ws, state


def _engine(ws: Path, state: Path, plan: list[dict], **kw):  # type: ignore[no-untyped-def, type-arg]
    (state / "plan.json").write_text(json.dumps(plan))
    return build_harness(ws, primary="command", llm_cmd=[sys.executable, str(state.parent / "fixer.py"), str(state)],
                         test_cmd=[sys.executable, "smoke.py"], **kw)


def test_a_planted_bug_is_repaired_end_to_end(job: tuple[Path, Path]) -> None:
    ws, state = job
    log, line = _crash(ws)
    h = _engine(ws, state, [{**RIGHT, "_needs": ["total_loss += los", "NameError", f"{line:>5} | "]}])

    outcome = h.engine.repair(RepairRequest(_diagnosis(ws, line), log))

    assert outcome.outcome == "promoted" and outcome.ok, outcome
    assert outcome.files == ("train.py",)
    assert (ws / "train.py").read_text() == TRAIN.replace("total_loss += los\n", "total_loss += loss\n")
    rerun = subprocess.run([sys.executable, "train.py", "--steps", "5"], cwd=ws, capture_output=True, text=True,
                           timeout=60)
    assert rerun.returncode == 0 and "done avg loss" in rerun.stdout
    assert [(e.client, e.ok) for e in h.of(LlmCalled)] == [("command", True)]
    assert [(e.stage, e.ok) for e in h.of(VerificationFinished)] == [("py_compile", True), ("test_cmd", True)]
    assert [e.files for e in h.of(RepairPromoted)] == [1]
    assert [(e.category, e.outcome) for e in h.of(RepairFinished)] == [("code_bug", "promoted")]
    record = ws / ".phoenix_cli" / "repairs" / outcome.repair_id
    assert json.loads((record / "outcome.json").read_text())["far_from_failure"] is None
    for name in ("meta.json", "diagnosis.json", "prompt.txt", "answer.txt", "llm.json", "patch.diff", "verify.log",
                 "outcome.json"):
        assert (record / name).is_file(), name
    assert (record / "prompt.txt").read_text() == (state / "prompt-1.txt").read_text()  # the prompt as sent
    assert "Traceback" in (record / "prompt.txt").read_text()
    [row] = h.engine.history()
    assert (row.signature, row.category, row.outcome, row.client) == ("c0ffee00", "code_bug", "promoted", "command")
    assert row.commit


def test_a_patch_far_from_every_frame_of_the_failure_is_flagged_in_the_record(tmp_path: Path) -> None:
    filler = "".join(f"\n\ndef helper_{n}():\n    return {n}\n" for n in range(30))
    ws = make_repo(tmp_path / "job", {"train.py": TRAIN.replace("import random\n", "import random\n" + filler),
                                      "config.json": CONFIG, "smoke.py": SMOKE})
    state = tmp_path / "llm"
    state.mkdir()
    (tmp_path / "fixer.py").write_text(FIXER)
    log, line = _crash(ws)
    far = {"file_path": "train.py", "mode": "search_replace", "search": "    return 0\n", "replace": "    return -1\n"}
    h = _engine(ws, state, [far])

    outcome = h.engine.repair(RepairRequest(_diagnosis(ws, line), log))

    assert outcome.outcome == "verify_failed"  # it fixed nothing: the smoke run still crashes
    recorded = json.loads((ws / ".phoenix_cli" / "repairs" / outcome.repair_id / "outcome.json").read_text())
    [flag] = recorded["far_from_failure"]
    assert flag["file"] == "train.py" and flag["nearest_frame"] == line and flag["distance"] > 40


def test_a_failed_attempt_is_shown_to_the_next_one(job: tuple[Path, Path]) -> None:
    ws, state = job
    log, line = _crash(ws)
    h = _engine(ws, state, [WRONG, {**RIGHT, "_needs": ["It failed verification", "loss_value"]}])

    first = h.engine.repair(RepairRequest(_diagnosis(ws, line), log))
    assert first.outcome == "verify_failed" and "loss_value" in first.reason
    assert (ws / "train.py").read_text() == TRAIN
    second = h.engine.repair(RepairRequest(_diagnosis(ws, line), log))

    assert second.outcome == "promoted", second
    second_prompt = (state / "prompt-2.txt").read_text()
    assert "NameError: name 'loss_value' is not defined" in second_prompt


def test_nothing_patchable_in_the_traceback_means_no_llm_call(job: tuple[Path, Path]) -> None:
    ws, state = job
    h = _engine(ws, state, [RIGHT])
    lib = "/usr/lib/python3.11/json/decoder.py"
    diagnosis = _diagnosis(ws, 3, frame=Frame(lib, 355, "raw_decode"), files=(lib,), category="config_error")
    outcome = h.engine.repair(RepairRequest(diagnosis, "json.decoder.JSONDecodeError: Expecting value"))
    assert outcome.outcome == "no_target" and not outcome.ok
    assert not list(state.glob("prompt-*")) and not h.of(LlmCalled)
    assert [(e.category, e.outcome) for e in h.of(RepairFinished)] == [("config_error", "no_target")]


def test_a_container_path_in_the_traceback_maps_to_the_workspace(job: tuple[Path, Path]) -> None:
    ws, state = job
    log, line = _crash(ws)
    container_log = log.replace(str(ws), "/workspace")
    diagnosis = _diagnosis(ws, line, frame=Frame("/workspace/train.py", line, "train"), files=("/workspace/train.py",))
    answer = {**RIGHT, "file_path": "/workspace/train.py", "_needs": ["You may change only these files: train.py."]}
    outcome = _engine(ws, state, [answer]).engine.repair(RepairRequest(diagnosis, container_log))
    assert outcome.outcome == "promoted", outcome


def test_out_of_memory_is_repaired_in_an_allowlisted_config(job: tuple[Path, Path]) -> None:
    ws, state = job
    (ws / "train.py").write_text(TRAIN.replace("total_loss += los\n", "total_loss += loss\n"))
    fix = {"file_path": "config.json", "mode": "search_replace", "search": '"batch_size": 64',
           "replace": '"batch_size": 32', "_needs": ["batch size", "## Source of config.json", '"batch_size": 64']}
    h = _engine(ws, state, [fix], allowlist=["*.py", "*.json"])
    oom = _diagnosis(ws, 19, category="cuda_oom", exception="torch.OutOfMemoryError",
                     message="CUDA out of memory. Tried to allocate 2.00 GiB", summary="CUDA OOM")
    outcome = h.engine.repair(RepairRequest(oom, "torch.OutOfMemoryError: CUDA out of memory."))
    assert outcome.outcome == "promoted", outcome
    assert json.loads((ws / "config.json").read_text())["batch_size"] == 32


def test_dry_run_repairs_nothing_but_records_everything(job: tuple[Path, Path]) -> None:
    ws, state = job
    log, line = _crash(ws)
    h = _engine(ws, state, [RIGHT], dry_run=True)
    outcome = h.engine.repair(RepairRequest(_diagnosis(ws, line), log))
    assert outcome.outcome == "dry_run" and outcome.ok and outcome.files == ("train.py",)
    assert (ws / "train.py").read_text() == TRAIN
    assert "+        total_loss += loss" in (ws / ".phoenix_cli" / "repairs" / outcome.repair_id / "patch.diff").read_text()


def test_llm_keys_never_appear_in_any_artefact(job: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    ws, state = job
    gemini_key = "AIzaSyC-leaky-key-0123456789abcdefghijkl"
    openai_key = "sk-local-leaky-key-0123456789abcdefgh"
    log, line = _crash(ws)
    log = f"env: GEMINI_API_KEY={gemini_key}\nOPENAI_API_KEY={openai_key}\n{log}"
    echo = (400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                            "message": f"API key {gemini_key} not valid. Please pass a valid API key."}})
    events: list = []  # type: ignore[type-arg]
    caplog.set_level(logging.DEBUG)
    with ScriptedServer([echo]) as gemini, ScriptedServer([openai_reply(json.dumps({"patches": [RIGHT]}))]) as local:
        environ = {"GEMINI_API_KEY": gemini_key, "OPENAI_API_KEY": openai_key, "PATH": "/usr/bin:/bin"}
        h = build_harness(ws, environ=environ, primary="gemini_api", fallback=["openai"],
                          gemini_api_base_url=gemini.url, openai_url=local.url, llm_timeout_seconds=10,
                          test_cmd=[sys.executable, "-c", "import os; print(dict(os.environ))"])
        h.engine.bus.subscribe(events.append)
        outcome = h.engine.repair(RepairRequest(_diagnosis(ws, line, message=f"bad key {gemini_key}"), log))
    assert outcome.outcome == "promoted", outcome
    assert gemini.requests[0]["headers"]["x-goog-api-key"] == gemini_key  # it was used, where it belongs
    assert local.requests[0]["headers"]["authorization"] == f"Bearer {openai_key}"
    places = {"outcome": repr(outcome), "events": repr(h.events + events), "logs": caplog.text,
              "prompt sent to gemini": gemini.requests[0]["raw"].decode(),
              "prompt sent to the local model": local.requests[0]["raw"].decode()}
    for path in (ws / ".phoenix_cli").rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_bytes().decode("utf-8", "replace")
    for place, text in places.items():
        assert gemini_key not in text, f"the Gemini key leaked into {place}"
        assert openai_key not in text, f"the OpenAI key leaked into {place}"
    assert "[REDACTED]" in (ws / ".phoenix_cli" / "repairs" / outcome.repair_id / "prompt.txt").read_text()
    attempts = json.loads((ws / ".phoenix_cli" / "repairs" / outcome.repair_id / "llm.json").read_text())["attempts"]
    assert "API key [REDACTED] not valid" in attempts[0]["message"]


def test_all_llm_clients_failing_is_recorded_as_llm_failed(job: tuple[Path, Path]) -> None:
    ws, state = job
    log, line = _crash(ws)
    h = build_harness(ws, primary="command", fallback=["openai"], llm_cmd=[sys.executable, "-c", "print('no idea')"])
    outcome = h.engine.repair(RepairRequest(_diagnosis(ws, line), log))
    assert outcome.outcome == "llm_failed" and "command: unusable answer" in outcome.reason
    assert "openai_url" in outcome.reason
    record = ws / ".phoenix_cli" / "repairs" / outcome.repair_id
    assert (record / "answer-1-command.txt").read_text().strip() == "no idea"
    assert (ws / "train.py").read_text() == TRAIN


def test_an_llm_answer_may_only_touch_the_files_it_was_shown(job: tuple[Path, Path]) -> None:
    ws, state = job
    (ws / "helpers.py").write_text("SCALE = 1\n")
    log, line = _crash(ws)
    sneaky = {"file_path": "helpers.py", "mode": "search_replace", "search": "SCALE = 1", "replace": "SCALE = 2"}
    outcome = _engine(ws, state, [sneaky]).engine.repair(RepairRequest(_diagnosis(ws, line), log))
    assert outcome.outcome == "rejected" and "not one of the files shown" in outcome.reason
    assert (ws / "helpers.py").read_text() == "SCALE = 1\n"


def test_a_hang_is_repaired_from_its_stack_dump(job: tuple[Path, Path]) -> None:
    ws, state = job
    (ws / "train.py").write_text(TRAIN.replace("total_loss += los\n", "total_loss += loss\n"))
    stack = ('Thread 0x7F3A2C1B4740 (active): "MainThread"\n'
             "    _wait_for_tstate_lock (threading.py:1132)\n"
             "    join (threading.py:1112)\n"
             "    train (train.py:19)\n"
             "    main (train.py:30)\n"
             "    <module> (train.py:35)\n")
    fix = {"file_path": "train.py", "mode": "search_replace", "search": '    w, total_loss = 0.0, 0.0\n',
           "replace": '    w, total_loss = 0.0, 0.0  # no lock held here\n',
           "_needs": ["## Stack dump of the hung job", "train (train.py:19)", "   19 | "]}
    hang = Diagnosis(signature="hang0001", category="hang", patchable=True, exception=None, message=None,
                     frame=None, summary="no output for 15 min")
    outcome = _engine(ws, state, [fix]).engine.repair(RepairRequest(hang, "step 3 loss 0.1\n", stack))
    assert outcome.outcome == "promoted", outcome


def test_the_watchdogs_own_diagnosis_drives_the_repair(job: tuple[Path, Path]) -> None:
    from phoenix_watchdog.diagnosis.diagnose import diagnose
    from phoenix_watchdog.diagnosis.failure import ExitStatus

    ws, state = job
    log, line = _crash(ws)
    diagnosis = diagnose(log, ExitStatus(code=1), workspace=str(ws))
    assert diagnosis.category == "code_bug" and diagnosis.patchable
    outcome = _engine(ws, state, [{**RIGHT, "_needs": [f"{line:>5} | "]}]).engine.repair(RepairRequest(diagnosis, log))
    assert outcome.outcome == "promoted", (diagnosis, outcome)
    assert subprocess.run([sys.executable, "train.py"], cwd=ws, capture_output=True, timeout=60).returncode == 0


def test_an_answer_naming_the_file_by_its_base_name_reaches_the_one_file_shown(tmp_path: Path) -> None:
    ws = make_repo(tmp_path / "job", {"src/train.py": TRAIN, "src/config.json": CONFIG, "train.py": ""})
    (ws / "train.py").unlink()  # no root train.py: "train.py" can only mean src/train.py
    state = tmp_path / "llm"
    state.mkdir()
    (tmp_path / "fixer.py").write_text(FIXER)
    run = subprocess.run([sys.executable, "train.py", "--steps", "2"], cwd=ws / "src", capture_output=True, text=True,
                         timeout=60)
    line = int(re.findall(r'File ".*train.py", line (\d+)', run.stderr)[-1])
    container_log = (run.stdout + run.stderr).replace(str(ws), "/app")
    diagnosis = _diagnosis(ws, line, frame=Frame("/app/src/train.py", line, "train"), files=("/app/src/train.py",))
    (state / "plan.json").write_text(json.dumps([{**RIGHT, "file_path": "train.py"}]))
    h = build_harness(ws, primary="command", llm_cmd=[sys.executable, str(tmp_path / "fixer.py"), str(state)])
    outcome = h.engine.repair(RepairRequest(diagnosis, container_log))
    assert outcome.outcome == "promoted" and outcome.files == ("src/train.py",), outcome
    assert "total_loss += loss\n" in (ws / "src" / "train.py").read_text()
