"""`phoenix run` with ``llm_triage`` on: a real job whose failure no rule names, a real OpenAI-compatible
server on 127.0.0.1 (the repair kit's `ScriptedServer`), and the real triage deciding nothing but the category.

The server's answer names a category; the action is the policy's for it (restart for ``dataloader``,
stop for ``gpu_hardware``), and state.json, ``phoenix history`` and the console say the category came
from the LLM, with its reason. A server that answers garbage or not in time leaves the failure
``unknown`` (restarted, as without triage), and the record says why.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from kits.repairkit import ScriptedServer, openai_reply
from testkit import run_phoenix

# Fails once with a message no rule knows, then finishes: the second run proves the restart.
JOB = """import pathlib, sys
print("epoch 1 step 4 loss 2.1", flush=True)
marker = pathlib.Path("failed-once")
if not marker.exists():
    marker.write_text("1")
    print("allocator: arena exhausted while staging batch 17 (requested 2.00 GiB)", file=sys.stderr, flush=True)
    print("fatal: giving up", file=sys.stderr, flush=True)
    sys.exit(3)
print("training finished", flush=True)
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "job.py").write_text(JOB)
    return ws


def run(ws: Path, server: ScriptedServer, *extra: str) -> Any:
    # Triage switched on through its environment variable; repair off: triage needs only the clients.
    return run_phoenix(["run", "--no-repair", "--set", "primary=openai", "--set", f"openai_url={server.url}/v1",
                        "--set", "openai_model=local-triage", "--set", "backoff_initial_seconds=0.1", *extra,
                        "--", sys.executable, "job.py"], cwd=ws, env={"PHOENIX_LLM_TRIAGE": "true"}, timeout=120)


def incidents(ws: Path) -> list[dict[str, Any]]:
    return json.loads((ws / ".phoenix_cli" / "state.json").read_text())["incidents"]


def test_an_unknown_failure_the_llm_names_dataloader_is_restarted_and_recorded(ws: Path) -> None:
    answer = {"category": "dataloader", "reason": "the staging allocator that feeds batches ran dry"}
    with ScriptedServer([openai_reply(json.dumps(answer))]) as server:
        result = run(ws, server)
    err = result.stderr.decode()
    assert result.returncode == 0, err[-3000:]
    assert b"training finished" in result.stdout

    (incident,) = incidents(ws)
    assert (incident["category"], incident["category_source"], incident["action"]) == ("dataloader", "llm", "restart")
    assert incident["signature"].startswith("unknown-")  # the rules' signature: the LLM never changes it
    assert incident["triage"] == {"result": "named", "category": "dataloader", "client": "openai", "cached": False,
                                  "reason": "the staging allocator that feeds batches ran dry"}
    assert "dataloader (named by the LLM triage)" in err
    assert "triage: the LLM (openai) named it dataloader: the staging allocator that feeds batches ran dry" in err

    (request,) = server.requests  # one failure, one question
    body = request["body"]
    assert request["path"] == "/v1/chat/completions" and body["model"] == "local-triage"
    assert body["response_format"]["json_schema"]["name"] == "phoenix_triage"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["category", "reason"]
    system, user = body["messages"]
    assert "patch" not in system["content"] and "category" in system["content"]
    assert "arena exhausted while staging batch 17" in user["content"] and "- dataloader:" in user["content"]

    history = json.loads(run_phoenix(["history", "--json", "-w", str(ws)], cwd=ws).stdout)
    assert [(h["category"], h["category_source"]) for h in history] == [("dataloader", "llm")]


def test_a_stop_category_the_llm_names_stops_the_job(ws: Path) -> None:
    answer = {"category": "gpu_hardware", "reason": "the allocator lost the device"}
    with ScriptedServer([openai_reply(json.dumps(answer))]) as server:
        result = run(ws, server)
    assert result.returncode == 4, result.stderr.decode()[-3000:]  # gave up: gpu_hardware is a stop category
    assert b"training finished" not in result.stdout
    (incident,) = incidents(ws)
    assert (incident["category"], incident["category_source"], incident["action"]) == ("gpu_hardware", "llm", "stop")
    assert "category:    gpu_hardware (named by the LLM triage: the allocator lost the device)" in \
        result.stderr.decode()
    status = json.loads(run_phoenix(["status", "--json", "-w", str(ws)], cwd=ws).stdout)
    assert status["incident"]["category_source"] == "llm"
    assert status["incident"]["triage"]["reason"] == "the allocator lost the device"
    text = run_phoenix(["status", "-w", str(ws)], cwd=ws).stdout.decode()
    assert "category named by the LLM triage (openai): the allocator lost the device" in text


def test_an_unusable_answer_leaves_the_failure_unknown_and_restarted(ws: Path) -> None:
    with ScriptedServer([openai_reply('{"category": "code_bug", "reason": "x", "action": "stop"}')]) as server:
        result = run(ws, server)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    (incident,) = incidents(ws)
    assert (incident["category"], incident["category_source"], incident["action"]) == ("unknown", "rules", "restart")
    assert incident["triage"]["result"] == "rejected"
    assert "the model chooses a category only" in incident["triage"]["reason"]
    assert "triage: the failure stays unknown" in result.stderr.decode()


def test_a_server_that_does_not_answer_in_time_leaves_the_failure_unknown(ws: Path) -> None:
    release = threading.Event()

    def stall(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        release.wait(60)  # far past the triage limit; released when the test ends
        return openai_reply(json.dumps({"category": "cuda_oom", "reason": "too late"}))

    try:
        with ScriptedServer([stall]) as server:
            result = run(ws, server, "--set", "llm_triage_timeout_seconds=1")
    finally:
        release.set()
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    (incident,) = incidents(ws)
    assert (incident["category"], incident["action"]) == ("unknown", "restart")
    assert incident["triage"]["result"] == "failed"
    assert "did not answer" in incident["triage"]["reason"] or "stalled" in incident["triage"]["reason"]


def test_phoenix_diagnose_triage_asks_the_same_way_and_says_so(tmp_path: Path) -> None:
    log = tmp_path / "crash.log"
    log.write_text("epoch 1 step 4 loss 2.1\nallocator: arena exhausted while staging batch 17\nfatal: giving up\n")
    known = tmp_path / "oom.log"
    known.write_text("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n")
    answer = {"category": "dataloader", "reason": "the batch stager ran dry"}
    with ScriptedServer([openai_reply(json.dumps(answer))]) as server:
        args = ["diagnose", "--triage", "--exit-code", "3", "--set", "primary=openai",
                "--set", f"openai_url={server.url}/v1", "-w", str(tmp_path)]
        as_json = run_phoenix([*args, "--json", str(log), str(known)], cwd=tmp_path)
        text = run_phoenix([*args, "--explain", str(log)], cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr.decode()
    unknown_row, oom_row = (json.loads(line) for line in as_json.stdout.decode().splitlines())
    assert (unknown_row["category"], unknown_row["category_source"]) == ("dataloader", "llm")
    assert unknown_row["signature"].startswith("unknown-") and unknown_row["triage"]["reason"] == answer["reason"]
    assert oom_row["category"] == "cuda_oom" and "triage" not in oom_row  # a rule named it: nothing asked
    assert len(server.requests) == 2  # one per command: the OOM log was never asked about
    out = text.stdout.decode()
    assert "triage      category named by the LLM (openai): the batch stager ran dry" in out
    assert "decided by  LLM triage (openai): the batch stager ran dry" in out
