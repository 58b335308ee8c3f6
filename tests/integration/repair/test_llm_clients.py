"""Each LLM client against a real stand-in: HTTP servers on 127.0.0.1 speaking the real wire formats, real programs."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from phoenix_sidecar.errors import LlmError
from phoenix_sidecar.events import EventBus, LlmCalled, PatchRejected
from phoenix_sidecar.repair.patch.answer import parse_answer
from phoenix_sidecar.repair.llm import LlmChain, build_clients
from phoenix_sidecar.repair.llm.http import GeminiApiClient
from phoenix_sidecar.repair.llm.openai_compat import OpenAiClient
from phoenix_sidecar.repair.llm.program import CommandClient, GeminiCliClient
from phoenix_sidecar.config.schema import Settings
from kits.waiting import HANG_GUARD
from kits.repairkit import ScriptedServer, gemini_reply, install_fake_gemini, openai_reply, quota_error
from testkit import process_alive

KEY = "AIzaSyA-test-key-0123456789abcdefghijklmn"
ANSWER = json.dumps({"patches": [{"file_path": "train.py", "mode": "search_replace", "search": "a", "replace": "b"}]})


# -- Gemini API ------------------------------------------------------------------------------------
def _gemini(server: ScriptedServer, **kw) -> GeminiApiClient:  # type: ignore[no-untyped-def]
    settings = Settings(gemini_api_base_url=server.url, llm_timeout_seconds=kw.pop("timeout", 20), **kw)
    return GeminiApiClient(settings, {"GEMINI_API_KEY": KEY})


def test_gemini_api_request_and_answer() -> None:
    with ScriptedServer([gemini_reply(ANSWER)]) as server:
        assert _gemini(server, gemini_model="gemini-2.5-flash").complete("fix it") == ANSWER
    [req] = server.requests
    assert req["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert req["headers"]["x-goog-api-key"] == KEY and KEY not in req["path"]
    config = req["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"]["type"] == "OBJECT"
    assert config["responseSchema"]["properties"]["patches"]["items"]["required"] == ["file_path", "mode"]
    assert req["body"]["contents"] == [{"role": "user", "parts": [{"text": "fix it"}]}]


def test_gemini_api_thought_parts_are_not_the_answer() -> None:
    reply = (200, {"candidates": [{"content": {"parts": [{"text": "thinking...", "thought": True}, {"text": ANSWER}]}}]})
    with ScriptedServer([reply]) as server:
        assert _gemini(server).complete("x") == ANSWER


@pytest.mark.parametrize("limited", [quota_error(retry="0.3s"),
                                     quota_error(message="Quota exceeded. Please retry in 300ms."),
                                     (503, {"error": {"code": 503, "message": "The model is overloaded.",
                                                      "status": "UNAVAILABLE"}})])
def test_gemini_api_waits_as_long_as_the_server_asks_then_retries(limited: tuple) -> None:  # type: ignore[type-arg]
    with ScriptedServer([limited, gemini_reply(ANSWER)]) as server:
        client = _gemini(server)
        slept: list[float] = []
        client.sleep = lambda s: (slept.append(s), time.sleep(min(s, 0.3)))  # type: ignore[assignment]
        assert client.complete("x") == ANSWER
    assert len(server.requests) == 2
    assert slept and slept[0] == pytest.approx({429: 0.3}.get(limited[0], slept[0]))


@pytest.mark.parametrize("terminal,why", [
    (quota_error(retry="20s", quota_id="GenerateRequestsPerDayPerProjectPerModel-FreeTier"), "daily"),
    (quota_error(retry="20s", message="Quota exceeded for metric: x, limit: 0, model: gemini-2.5-pro"), "zero"),
    (quota_error(retry="400s"), "longer than"),
])
def test_gemini_api_does_not_wait_out_quotas_that_will_not_recover(terminal: tuple, why: str) -> None:  # type: ignore[type-arg]
    with ScriptedServer([terminal, gemini_reply(ANSWER)]) as server:
        with pytest.raises(LlmError) as info:
            _gemini(server).complete("x")
    assert info.value.kind == "rate_limited" and why in str(info.value)
    assert len(server.requests) == 1


def test_gemini_api_retry_waits_stay_within_the_time_limit() -> None:
    with ScriptedServer([quota_error(retry="5s")]) as server:
        client = _gemini(server, timeout=2)
        slept: list[float] = []
        client.sleep = slept.append  # type: ignore[assignment]
        with pytest.raises(LlmError) as info:
            client.complete("x")
    assert info.value.kind == "rate_limited" and "would pass the time limit" in str(info.value)
    assert slept == [] and len(server.requests) == 1, "a 5 s wait does not fit in a 2 s limit: no wait at all"


def test_gemini_api_timeout() -> None:
    answer = threading.Event()

    def silent(_request):  # type: ignore[no-untyped-def]
        answer.wait(HANG_GUARD)  # no answer while the client waits: only its own time limit ends the call
        return gemini_reply(ANSWER)

    with ScriptedServer([silent]) as server:
        try:
            with pytest.raises(LlmError) as info:
                _gemini(server, timeout=1).complete("x")
        finally:
            answer.set()
    assert info.value.kind == "timeout" and len(server.requests) == 1


def test_gemini_api_errors_and_missing_key() -> None:
    with ScriptedServer([(400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                          "status": "INVALID_ARGUMENT"}})]) as server:
        with pytest.raises(LlmError) as info:
            _gemini(server).complete("x")
        assert info.value.kind == "http" and "API key not valid" in str(info.value) and KEY not in str(info.value)
        client = GeminiApiClient(Settings(gemini_api_base_url=server.url), {})
        with pytest.raises(LlmError) as missing:
            client.complete("x")
        assert missing.value.kind == "config" and "GEMINI_API_KEY" in str(missing.value)
    with pytest.raises(LlmError) as closed:
        GeminiApiClient(Settings(gemini_api_base_url=server.url, llm_timeout_seconds=5), {"GEMINI_API_KEY": KEY}).complete("x")
    assert closed.value.kind == "http" and "cannot reach" in str(closed.value)


def test_gemini_api_blocked_prompt() -> None:
    with ScriptedServer([(200, {"promptFeedback": {"blockReason": "SAFETY"}})]) as server:
        with pytest.raises(LlmError) as info:
            _gemini(server).complete("x")
    assert info.value.kind == "parse" and "SAFETY" in str(info.value)


# -- OpenAI-compatible -----------------------------------------------------------------------------
def test_openai_request_with_json_schema_and_bearer_key() -> None:
    with ScriptedServer([openai_reply(ANSWER)]) as server:
        settings = Settings(openai_url=server.url + "/v1", openai_model="qwen2.5-coder", llm_timeout_seconds=10)
        assert OpenAiClient(settings, {"OPENAI_API_KEY": "sk-local-0000000000000000"}).complete("fix") == ANSWER
    [req] = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == "Bearer sk-local-0000000000000000"
    body = req["body"]
    assert body["model"] == "qwen2.5-coder" and body["messages"][-1] == {"role": "user", "content": "fix"}
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["patches"]


def test_openai_falls_back_to_json_object_when_json_schema_is_refused() -> None:
    refuse = (400, {"error": {"code": 400, "type": "invalid_request_error",
                              "message": "response_format type must be one of \"text\" or \"json_object\""}})
    with ScriptedServer([refuse, openai_reply(ANSWER)]) as server:
        settings = Settings(openai_url=server.url, llm_timeout_seconds=10)
        assert OpenAiClient(settings, {}).complete("fix") == ANSWER
    assert [r["body"]["response_format"]["type"] for r in server.requests] == ["json_schema", "json_object"]
    assert "model" not in server.requests[0]["body"] and "authorization" not in server.requests[0]["headers"]


def test_openai_rate_limit_with_retry_after() -> None:
    with ScriptedServer([(429, {"error": {"message": "busy"}}, {"Retry-After": "0.2"}), openai_reply(ANSWER)]) as server:
        assert OpenAiClient(Settings(openai_url=server.url, llm_timeout_seconds=10), {}).complete("x") == ANSWER
    assert len(server.requests) == 2


def test_openai_unconfigured_and_empty_answers() -> None:
    with pytest.raises(LlmError) as info:
        OpenAiClient(Settings(), {}).complete("x")
    assert info.value.kind == "config" and "openai_url" in str(info.value)
    with ScriptedServer([(200, {"choices": [{"message": {"role": "assistant", "content": None,
                                                          "refusal": "I cannot help"}}]})]) as server:
        with pytest.raises(LlmError) as refused:
            OpenAiClient(Settings(openai_url=server.url), {}).complete("x")
    assert refused.value.kind == "parse" and "I cannot help" in str(refused.value)


# -- Gemini CLI ------------------------------------------------------------------------------------
@pytest.fixture
def fake_gemini(tmp_path: Path) -> tuple[dict[str, str], Path]:
    exe = install_fake_gemini(tmp_path / "bin")
    log = tmp_path / "gemini.log"
    env = {**os.environ, "PATH": f"{exe.parent}:{os.environ['PATH']}", "FAKE_GEMINI_LOG": str(log),
           "FAKE_GEMINI_ANSWER": ANSWER, "FAKE_GEMINI_PIDS": str(tmp_path / "pids"), "GEMINI_API_KEY": KEY,
           "OPENAI_API_KEY": "sk-not-for-gemini-000000000"}
    return env, log


def _runs(log: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_gemini_cli_runs_read_only_in_an_empty_scratch_directory(fake_gemini, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env, log = fake_gemini
    client = GeminiCliClient(Settings(workspace=str(tmp_path)), env)
    assert client.complete("PROMPT TEXT") == ANSWER
    [run] = _runs(log)
    argv = run["argv"]
    assert argv[argv.index("--approval-mode") + 1] == "plan"
    assert not {"--yolo", "-y", "yolo", "auto_edit"} & set(argv)
    assert argv[argv.index("--output-format") + 1] == "json" and "--skip-trust" in argv
    assert run["stdin"] == "PROMPT TEXT"
    assert run["cwd_entries"] == [] and Path(run["cwd"]) != tmp_path and not Path(run["cwd"]).exists()
    assert "OPENAI_API_KEY" not in run["env"]


def test_gemini_cli_without_plan_mode_uses_default_approval(fake_gemini, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env, log = fake_gemini
    assert GeminiCliClient(Settings(), {**env, "FAKE_GEMINI_HELP": "noplan"}).complete("x") == ANSWER
    argv = _runs(log)[0]["argv"]
    assert argv[argv.index("--approval-mode") + 1] == "default"


def test_gemini_cli_where_plan_mode_is_switched_off(fake_gemini) -> None:  # type: ignore[no-untyped-def]
    env, log = fake_gemini
    assert GeminiCliClient(Settings(), {**env, "FAKE_GEMINI_MODE": "plan_disabled"}).complete("x") == ANSWER
    modes = [r["argv"][r["argv"].index("--approval-mode") + 1] for r in _runs(log)]
    assert modes == ["plan", "default"]


def test_an_old_gemini_cli_gets_its_text_answer(fake_gemini) -> None:  # type: ignore[no-untyped-def]
    env, log = fake_gemini
    assert GeminiCliClient(Settings(), {**env, "FAKE_GEMINI_HELP": "old"}).complete("x").strip() == ANSWER
    assert "--approval-mode" not in _runs(log)[0]["argv"] and "--yolo" not in _runs(log)[0]["argv"]


def test_gemini_cli_exit_codes_are_reported(fake_gemini) -> None:  # type: ignore[no-untyped-def]
    env, _ = fake_gemini
    with pytest.raises(LlmError) as info:
        GeminiCliClient(Settings(), {**env, "FAKE_GEMINI_MODE": "exit41"}).complete("x")
    assert info.value.kind == "process" and "exited 41 (authentication failed)" in str(info.value)
    assert "Error authenticating" in str(info.value)


def timed_out(call: Callable[[float], object], pidfile: Path) -> list[int]:
    """Make a call that only its time limit can end, and return the pids its program wrote.

    On a loaded machine the program may be killed before it gets to write them: then the call is
    made again with twice the limit, until it does (the hang guard caps the limit)."""
    limit = 1.0
    while True:
        pidfile.unlink(missing_ok=True)
        with pytest.raises(LlmError) as info:
            call(limit)
        assert info.value.kind == "timeout"
        pids = pidfile.read_text().split() if pidfile.exists() else []
        if pids:
            return [int(pid) for pid in pids]
        limit *= 2
        assert limit <= HANG_GUARD, "hang guard: the program never got to start"


def test_gemini_cli_timeout_kills_its_process_group(fake_gemini, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env, _ = fake_gemini
    env = {**env, "FAKE_GEMINI_MODE": "sleep"}  # the fake and its child sleep 300 s
    pids = timed_out(lambda limit: GeminiCliClient(Settings(llm_timeout_seconds=limit), env).complete("x"),
                     tmp_path / "pids")
    assert len(pids) == 2
    for pid in pids:
        assert not process_alive(pid)


def test_gemini_cli_not_installed(tmp_path: Path) -> None:
    with pytest.raises(LlmError) as info:
        GeminiCliClient(Settings(gemini_cli_bin=str(tmp_path / "nope")), dict(os.environ)).complete("x")
    assert info.value.kind == "config" and "GEMINI_CLI_BIN" in str(info.value)


# -- command ---------------------------------------------------------------------------------------
def test_command_client_reads_stdin_and_prints_the_answer(tmp_path: Path) -> None:
    script = "import sys; data = sys.stdin.read(); print(data.upper())"
    client = CommandClient(Settings(llm_cmd=[sys.executable, "-c", script]), dict(os.environ), tmp_path)
    assert client.complete("abc").strip() == "ABC"


def test_command_client_failures(tmp_path: Path) -> None:
    fail = CommandClient(Settings(llm_cmd=[sys.executable, "-c", "import sys; sys.exit('no model loaded')"]),
                         dict(os.environ), tmp_path)
    with pytest.raises(LlmError) as info:
        fail.complete("x")
    assert info.value.kind == "process" and "no model loaded" in str(info.value)
    pidfile = tmp_path / "slow.pid"
    slow = ["sh", "-c", f"echo $$ > {pidfile}; exec sleep 300"]
    [pid] = timed_out(lambda limit: CommandClient(Settings(llm_cmd=slow, llm_timeout_seconds=limit),
                                                  dict(os.environ), tmp_path).complete("x"), pidfile)
    assert not process_alive(pid), "the timed-out program is killed, not waited out"
    with pytest.raises(LlmError) as unset:
        CommandClient(Settings(), {}, tmp_path).complete("x")
    assert unset.value.kind == "config"


# -- the chain -------------------------------------------------------------------------------------
def test_a_garbage_answer_falls_back_to_the_next_client(tmp_path: Path) -> None:
    events: list = []  # type: ignore[type-arg]
    bus = EventBus()
    bus.subscribe(events.append)
    kept: list[tuple[str, str]] = []
    with ScriptedServer([gemini_reply("Sure! I'd love to help. The bug is on line 3.")]) as gemini, \
            ScriptedServer([openai_reply(f"```json\n{ANSWER}\n```")]) as local:
        settings = Settings(primary="gemini_api", fallback=["openai"], gemini_api_base_url=gemini.url,
                            openai_url=local.url, llm_timeout_seconds=10)
        clients = build_clients(settings, {"GEMINI_API_KEY": KEY}, tmp_path)
        result = LlmChain(clients, bus, parse_answer, on_answer=lambda c, a: kept.append((c, a))).ask("fix")
    assert result.ok and result.client == "openai" and result.parsed[0].file_path == "train.py"  # type: ignore[index]
    calls = [(e.client, e.ok, e.error) for e in events if isinstance(e, LlmCalled)]
    assert calls == [("gemini_api", False, "parse"), ("openai", True, "")]
    assert [e.reason for e in events if isinstance(e, PatchRejected)] == ["invalid_json"]
    assert [c for c, _ in kept] == ["gemini_api", "openai"]


def test_every_client_failing_is_reported_with_each_reason(tmp_path: Path) -> None:
    settings = Settings(primary="command", fallback=["openai", "gemini_api"], llm_cmd=["false"])
    events: list = []  # type: ignore[type-arg]
    bus = EventBus()
    bus.subscribe(events.append)
    result = LlmChain(build_clients(settings, {}, tmp_path), bus, parse_answer).ask("x")
    assert not result.ok
    assert [(a.client, a.error) for a in result.attempts] == [("command", "process"), ("openai", "config"),
                                                              ("gemini_api", "config")]
    assert "openai_url" in result.failure() and "GEMINI_API_KEY" in result.failure()
    assert len([e for e in events if isinstance(e, LlmCalled) and not e.ok]) == 3
