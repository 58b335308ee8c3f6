"""The OpenAI-compatible client against stand-ins for the servers people run locally, each answering as it really does.

Each stand-in is a real HTTP server on 127.0.0.1 that answers ``response_format``, ``/v1/models``,
``/props`` and an over-long prompt the way its original does (wording and status codes taken from
their sources): llama-cpp-python's server (HTTP 500 naming the literal ``'text' or 'json_object'`` for
``json_schema``; a schema inside ``json_object`` honoured; a 400 ``context_length_exceeded`` that
names the window), vLLM (``max_model_len`` in ``/v1/models``; older builds 400 on ``json_schema``),
Ollama (``json_schema`` silently ignored, the answer in prose and a fence) and llama.cpp's
``llama-server`` (``/props`` with ``n_ctx``; older builds 400 on ``json_schema``). Done means: the
answer reaches the parser, never ``llm_failed`` from a protocol mismatch.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.events import EventBus
from phoenix_sidecar.repair.llm import LlmChain
from phoenix_sidecar.repair.llm.openai_compat import OpenAiClient
from phoenix_sidecar.repair.patch.answer import parse_answer

ANSWER = {"patches": [{"file_path": "train.py", "mode": "search_replace", "search": "lr = 1e3", "replace": "lr = 1e-3"}]}

Reply = tuple[int, Any]


class StandIn:
    """A real server on 127.0.0.1: ``post(body) -> (status, json)`` and ``gets[path] -> (status, json)``."""

    def __init__(self, post: Callable[[dict[str, Any]], Reply], gets: dict[str, Reply] | None = None) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        outer, routes = self, dict(gets or {})

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status: int, payload: Any) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(("GET", self.path, None))
                self._send(*routes.get(self.path, (404, {"detail": "Not Found"})))

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                outer.requests.append(("POST", self.path, body))
                self._send(*post(body))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def posts(self) -> list[dict[str, Any]]:
        return [body for method, _, body in self.requests if method == "POST"]


def completion(text: str, finish: str = "stop") -> Reply:
    return 200, {"id": "chatcmpl-1", "object": "chat.completion", "model": "local",
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}]}


def _kind(body: dict[str, Any]) -> str | None:
    return (body.get("response_format") or {}).get("type")


# -- how each server answers ------------------------------------------------------------------------
def llama_cpp_python(n_ctx: int = 2048) -> Callable[[dict[str, Any]], Reply]:
    """llama_cpp/server: the request model takes type 'text' | 'json_object'; errors become 500 unless matched."""
    def post(body: dict[str, Any]) -> Reply:
        if _kind(body) not in (None, "text", "json_object"):
            return 500, {"error": {"message": "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
                                              "'msg': \"Input should be 'text' or 'json_object'\", 'input': "
                                              f"'{_kind(body)}'}}]", "type": "internal_server_error",
                                   "param": None, "code": None}}
        tokens = sum(len(m["content"]) for m in body["messages"]) // 3
        if tokens >= n_ctx:
            return 400, {"error": {"message": f"This model's maximum context length is {n_ctx} tokens. However, you "
                                              f"requested {tokens + body.get('max_tokens', 0)} tokens ({tokens} in the "
                                              f"messages, {body.get('max_tokens')} in the completion). Please reduce "
                                              "the length of the messages or completion.",
                                   "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}
        room = min(body.get("max_tokens") or n_ctx, n_ctx - tokens)  # the answer gets what is left of the window
        answer = json.dumps(ANSWER)
        cut = len(answer) // 3 > room
        code, reply = completion(answer[: room * 3] if cut else answer, "length" if cut else "stop")
        reply["usage"] = {"prompt_tokens": tokens, "completion_tokens": min(room, len(answer) // 3)}
        return code, reply
    return post


LLAMA_CPP_PYTHON_GETS = {"/v1/models": (200, {"object": "list", "data": [{"id": "qwen", "object": "model",
                                                                           "owned_by": "me", "permissions": []}]})}


def vllm_old(body: dict[str, Any]) -> Reply:
    if _kind(body) == "json_schema":
        return 400, {"object": "error", "message": "1 validation error for ChatCompletionRequest\nresponse_format.type\n"
                                                   "  Input should be 'text' or 'json_object'", "type": "BadRequestError",
                     "param": None, "code": 400}
    return completion(json.dumps(ANSWER))


VLLM_GETS = {"/v1/models": (200, {"object": "list", "data": [{"id": "Qwen/Qwen2.5-Coder-1.5B-Instruct", "object": "model",
                                                               "owned_by": "vllm", "max_model_len": 4096}]})}


def ollama(body: dict[str, Any]) -> Reply:
    if _kind(body) == "json_object":
        return completion(json.dumps(ANSWER))
    # Unknown response_format types are ignored: the model writes as it likes.
    return completion("Here is the fix:\n```json\n" + json.dumps(ANSWER, indent=2) + "\n```\nThis changes the rate.")


OLLAMA_GETS = {"/v1/models": (200, {"object": "list", "data": [{"id": "qwen2.5-coder:1.5b", "object": "model",
                                                                 "created": 1733000000, "owned_by": "library"}]})}


def llama_server_old(body: dict[str, Any]) -> Reply:
    if _kind(body) not in (None, "text", "json_object"):
        return 400, {"error": {"code": 400, "type": "invalid_request_error",
                               "message": "response_format type must be one of \"text\" or \"json_object\", but got: "
                                          + str(_kind(body))}}
    return completion(json.dumps(ANSWER))


LLAMA_SERVER_GETS = {"/props": (200, {"default_generation_settings": {"n_ctx": 4096, "model": "qwen"},
                                      "total_slots": 1, "chat_template": "..."}),
                     "/v1/models": (200, {"object": "list", "data": [{"id": "qwen", "object": "model", "owned_by": "llamacpp",
                                                                      "meta": {"n_ctx_train": 32768, "n_vocab": 151936}}]})}


def _client(url: str, **kw: Any) -> OpenAiClient:
    return OpenAiClient(Settings(openai_url=url + "/v1", llm_timeout_seconds=30, **kw), {})


@pytest.mark.parametrize("post,gets,formats", [
    (llama_cpp_python(), LLAMA_CPP_PYTHON_GETS, ["json_schema", "json_object"]),
    (vllm_old, VLLM_GETS, ["json_schema", "json_object"]),
    (ollama, OLLAMA_GETS, ["json_schema"]),
    (llama_server_old, LLAMA_SERVER_GETS, ["json_schema", "json_object"]),
], ids=["llama-cpp-python", "vllm-old", "ollama", "llama-server-old"])
def test_every_server_gets_the_answer_judged_and_the_format_learned_is_kept(post, gets, formats) -> None:  # type: ignore[no-untyped-def]
    with StandIn(post, gets) as server:
        chain = LlmChain([_client(server.url)], EventBus(), parse_answer)
        result = chain.ask("fix it")
        assert result.ok, result.failure()
        assert [_kind(b) for b in server.posts] == formats
        assert result.attempts[-1].protocol.startswith("response_format=json_object")
        assert all(b["max_tokens"] > 0 for b in server.posts)
        again = LlmChain([_client(server.url)], EventBus(), parse_answer).ask("fix it again")  # a later repair
        assert again.ok and _kind(server.posts[-1]) == "json_object"
        assert len(server.posts) == len(formats) + 1


def test_llama_cpp_python_gets_the_schema_inside_json_object() -> None:
    with StandIn(llama_cpp_python(), LLAMA_CPP_PYTHON_GETS) as server:
        _client(server.url).complete("x")
    assert server.posts[-1]["response_format"]["schema"]["required"] == ["patches"]


def test_the_context_window_is_asked_of_servers_that_can_tell() -> None:
    with StandIn(vllm_old, VLLM_GETS) as vllm, StandIn(llama_server_old, LLAMA_SERVER_GETS) as llama_server:
        for server in (vllm, llama_server):
            client = _client(server.url, llm_max_tokens=4096)
            chars = client.prompt_chars()
            assert chars is not None and 2000 <= chars < 4096 * 3  # the window is 4096 tokens, not n_ctx_train
            assert client.max_tokens() == 4096 // 3
            assert "context window 4096 tokens" in client.protocol


def test_a_prompt_too_long_for_the_window_is_rebuilt_to_fit_and_answered() -> None:
    with StandIn(llama_cpp_python(n_ctx=2048), LLAMA_CPP_PYTHON_GETS) as server:
        client = _client(server.url)
        assert client.prompt_chars() is None  # llama-cpp-python's /v1/models does not tell
        built: list[int] = []

        def refit(chars: int) -> str:
            built.append(chars)
            return "y" * (chars - 100)

        result = LlmChain([client], EventBus(), parse_answer).ask("x" * 9000, refit=refit)
        assert result.ok, result.failure()
        assert built and built[0] < 2048 * 3
        assert "context window 2048 tokens" in result.attempts[-1].protocol
        assert server.posts[-1]["max_tokens"] <= 2048 // 3
        assert [a.ok for a in result.attempts] == [False, True]


def test_an_answer_cut_off_at_max_tokens_is_reported_as_such() -> None:
    with StandIn(lambda body: completion('{"patches": [{"file_path": "train.py", "mode": "sear', "length")) as server:
        with pytest.raises(Exception) as info:
            _client(server.url, llm_max_tokens=100).complete("x")
    assert "max_tokens=100" in str(info.value)


def test_a_server_error_that_does_not_name_the_format_is_not_taken_for_a_refusal() -> None:
    with StandIn(lambda body: (500, {"error": {"message": "CUDA error: out of memory", "type": "internal_server_error"}})) as server:
        result = LlmChain([_client(server.url)], EventBus(), parse_answer).ask("x")
    assert not result.ok and "out of memory" in result.failure()
    assert [_kind(b) for b in server.posts] == ["json_schema"]


def test_a_prompt_that_leaves_no_room_for_the_answer_teaches_the_window_and_is_rebuilt() -> None:
    """llama-cpp-python caps the answer at what the prompt left of the window, and says only "length"."""
    with StandIn(llama_cpp_python(n_ctx=2048), LLAMA_CPP_PYTHON_GETS) as server:
        client = _client(server.url)
        built: list[int] = []

        def refit(chars: int) -> str:
            built.append(chars)
            return "y" * (chars - 100)

        result = LlmChain([client], EventBus(), parse_answer).ask("x" * 5950, refit=refit)  # 2040 tokens: fits, barely
        assert result.ok, result.failure()
        assert "cut off" in result.attempts[0].message and result.attempts[1].ok
        assert "context window 2048 tokens (an answer the server cut short)" in result.attempts[-1].protocol
        assert built and built[0] <= (2048 - 2048 // 3) * 3
