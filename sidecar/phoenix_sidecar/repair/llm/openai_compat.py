"""The OpenAI-compatible chat completions client, and what it learns about the server it talks to.

Servers that speak this protocol differ in what they accept as ``response_format``:
llama-cpp-python's server answers HTTP 500 to ``json_schema`` but turns a ``json_object`` that
carries a ``schema`` into a grammar; llama.cpp's ``llama-server`` and vLLM take ``json_schema`` (older
builds refuse it with a 400); Ollama's compatibility layer may ignore it silently. So the client
negotiates: ``json_schema``, then ``json_object`` (with the schema, which servers that cannot use it
ignore), then plain text, stepping down on any refusal (4xx or 5xx) whose message names the
response format, and after an answer to ``json_schema`` that is not the JSON object asked for (the
schema was ignored). What it learns is kept per server and model for the process (the session) and
reported in `OpenAiClient.protocol`, which the chain puts in the repair record.

It always sends ``max_tokens`` (``llm_max_tokens``, lowered to a third of a known context window),
and tells the caller how many prompt characters fit the model's window (`prompt_chars`): from vLLM's
``max_model_len``, llama-server's ``/props``, the window a context-length refusal names, or an
answer cut short of ``max_tokens`` (llama-cpp-python gives the answer only what the prompt left of
the window: prompt plus answer tokens is the window). Characters per token are measured from the
server's ``usage`` counts once it has answered.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from phoenix_sidecar.config.schema import Settings, secret
from phoenix_sidecar.errors import LlmError
from phoenix_sidecar.repair.llm.base import REPAIR, Task, config_error
from phoenix_sidecar.repair.llm.http import HttpReply, RetryBudget, get_json, post_json

FORMATS: tuple[str | None, ...] = ("json_schema", "json_object", None)
CHARS_PER_TOKEN = 3  # code and English run 3.5 to 4 characters a token in Qwen/Llama vocabularies: err short
OVERHEAD_TOKENS = 160  # the system instruction and the chat template around the prompt
PROBE_SECONDS = 5.0
MIN_ANSWER_TOKENS = 256

# "This model's maximum context length is 2048 tokens" (OpenAI, vLLM, llama-cpp-python);
# "exceed context window of 2048" (llama-cpp-python's own); "available context size (2048 tokens)" (llama-server).
_WINDOW = re.compile(r"maximum context length is (\d+)|context window of (\d+)|context size \((\d+) tokens\)"
                     r"|n_ctx(?:_slot)?\s*[=:]\s*(\d+)", re.I)


@dataclass
class ServerFacts:
    """What one server (base URL and model) has shown it accepts."""

    format: int = 0  # index into FORMATS
    learned: str = ""  # how the format was learned, for the record
    n_ctx: int | None = None
    window_from: str = ""
    probed: bool = False
    chars_per_token: float = 0.0  # measured from the server's usage counts; 0: not yet


_SERVERS: dict[str, ServerFacts] = {}
_LOCK = threading.Lock()


def facts_for(url: str, model: str) -> ServerFacts:
    """The session's facts about the server at ``url`` serving ``model`` (created empty)."""
    with _LOCK:
        return _SERVERS.setdefault(f"{url.rstrip('/')}|{model}", ServerFacts())


class OpenAiClient:
    """``POST {openai_url}/chat/completions`` of an OpenAI-compatible server (vLLM, llama.cpp, Ollama...)."""

    name = "openai"

    def __init__(self, settings: Settings, environ: Mapping[str, str], *,
                 sleep: Callable[[float], None] = time.sleep, task: Task = REPAIR) -> None:
        self.settings = settings
        self.environ = environ
        self.sleep = sleep
        self.task = task

    @property
    def facts(self) -> ServerFacts:
        return facts_for(self.settings.openai_url, self.settings.openai_model)

    @property
    def protocol(self) -> str:
        """What was negotiated with the server, in one line for the repair record."""
        f = self.facts
        parts = [f"response_format={FORMATS[f.format] or 'text'}"]
        if f.learned:
            parts.append(f.learned)
        if f.n_ctx:
            parts.append(f"context window {f.n_ctx} tokens ({f.window_from})")
        parts.append(f"max_tokens={self.max_tokens()}")
        return "; ".join(parts)

    def max_tokens(self) -> int:
        n = self.settings.llm_max_tokens
        if self.facts.n_ctx:
            n = min(n, max(MIN_ANSWER_TOKENS, self.facts.n_ctx // 3))
        return n

    def prompt_chars(self) -> int | None:
        """Prompt characters that fit the model's context window beside the answer; None when unknown."""
        f = self.facts
        if not f.probed and self.settings.openai_url:
            self._probe()
        if not f.n_ctx:
            return None
        ratio = min(f.chars_per_token * 0.9, 4.0) if f.chars_per_token else CHARS_PER_TOKEN
        return max(2000, int((f.n_ctx - self.max_tokens() - OVERHEAD_TOKENS) * ratio))

    def _probe(self) -> None:
        """Ask the server for its context window where it can tell (vLLM, llama-server); silent otherwise."""
        f = self.facts
        f.probed = True
        base = self.settings.openai_url.rstrip("/")
        headers = self._headers()
        timeout = min(PROBE_SECONDS, self.settings.llm_timeout_seconds)
        models = get_json(base + "/models", headers, timeout=timeout)
        for entry in (models.get("data") or []) if isinstance(models, dict) else []:
            if isinstance(entry, dict) and _positive(entry.get("max_model_len")):
                self._window(int(entry["max_model_len"]), "the server's /models")
                return
        root = base[: -len("/v1")] if base.endswith("/v1") else base
        props = get_json(root + "/props", headers, timeout=timeout)
        if isinstance(props, dict):
            settings = props.get("default_generation_settings")
            n = (settings or {}).get("n_ctx") if isinstance(settings, dict) else None
            n = n if _positive(n) else props.get("n_ctx")
            if _positive(n):
                self._window(int(n), "the server's /props")

    def _window(self, n: int, source: str) -> None:
        f = self.facts
        if f.n_ctx is None or n < f.n_ctx:
            f.n_ctx, f.window_from = n, source

    def _headers(self) -> dict[str, str]:
        key = secret(self.settings, "openai_api_key", self.environ)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def complete(self, prompt: str) -> str:
        s = self.settings
        if not s.openai_url:
            raise config_error(self.name, "no server: set openai_url (e.g. http://localhost:8000/v1)")
        url = s.openai_url.rstrip("/") + "/chat/completions"
        host = urllib.parse.urlsplit(url).netloc
        headers = self._headers()
        deadline = time.monotonic() + s.llm_timeout_seconds
        budget = RetryBudget(deadline, self.sleep)
        f = self.facts
        while True:
            fmt = FORMATS[f.format]
            reply = self._post(url, prompt, fmt, headers, deadline, budget)
            if reply.status == 200:
                text = self._text(reply, len(self.task.instruction) + len(prompt))
                if fmt == "json_schema" and not _schema_shaped(text, self.task.schema):
                    self._step_down(f"{fmt} was ignored (the answer was not the JSON object asked for)")
                return text
            detail = _openai_error(reply)
            window = _context_window(detail)
            if window:
                self._window(window, "a context-length refusal")
                raise LlmError("http", f"the prompt does not fit the model's context window of {window} tokens "
                                       f"({host} answered {reply.status}); prompts are now cut to fit", client=self.name)
            if fmt is not None and 400 <= reply.status < 600 and _about_format(detail):
                self._step_down(f"{fmt} refused with HTTP {reply.status}: {' '.join(detail.split())[:120]}")
                continue
            raise LlmError("http", f"{host} answered {reply.status}: {detail}", client=self.name)

    def _step_down(self, why: str) -> None:
        f = self.facts
        if f.format + 1 < len(FORMATS):
            f.format += 1
            f.learned = f"{f.learned}; {why}" if f.learned else why

    def _post(self, url: str, prompt: str, fmt: str | None, headers: Mapping[str, str], deadline: float,
              budget: RetryBudget) -> HttpReply:
        payload: dict[str, Any] = {
            "messages": [{"role": "system", "content": self.task.instruction}, {"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": self.max_tokens(),
        }
        if self.settings.openai_model:
            payload["model"] = self.settings.openai_model
        if fmt == "json_schema":
            payload["response_format"] = {"type": "json_schema",
                                          "json_schema": {"name": self.task.name, "schema": self.task.schema}}
        elif fmt == "json_object":
            # llama-cpp-python builds a grammar from "schema"; servers that cannot use it ignore it.
            payload["response_format"] = {"type": "json_object", "schema": self.task.schema}
        for attempt in range(6):
            reply = post_json(url, payload, headers, deadline=deadline, client=self.name)
            if reply.status not in (429, 503):
                return reply
            after = reply.headers.get("retry-after", "")
            delay = float(after) if re.fullmatch(r"\s*[\d.]+\s*", after) else min(30.0, 2.0 * 2 ** attempt)
            budget.wait(delay, f"the server answered {reply.status}: {_openai_error(reply)}", self.name)
        raise LlmError("rate_limited", "the server still refused after 6 attempts", client=self.name)

    def _text(self, reply: HttpReply, prompt_chars: int) -> str:
        data = reply.json()
        usage = data.get("usage") if isinstance(data, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        prompt_tokens, answer_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if _positive(prompt_tokens):
            self.facts.chars_per_token = prompt_chars / prompt_tokens
        try:
            message = data["choices"][0]["message"]
        except (TypeError, KeyError, IndexError):
            raise LlmError("parse", "the reply has no choices[0].message", client=self.name) from None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # some servers send content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str) or not content.strip():
            refusal = message.get("refusal") if isinstance(message, dict) else None
            raise LlmError("parse", f"the model gave no answer{f' (refused: {refusal})' if refusal else ''}",
                           client=self.name)
        finish = data["choices"][0].get("finish_reason") if isinstance(data["choices"][0], dict) else None
        if finish == "length" and not _schema_shaped(content, self.task.schema):
            if _positive(prompt_tokens) and isinstance(answer_tokens, int) and answer_tokens < self.max_tokens():
                # Cut short of max_tokens: the prompt filled the window (llama-cpp-python caps the
                # answer at what is left of it). Now the window is known, and the prompt is cut to fit.
                self._window(prompt_tokens + answer_tokens, "an answer the server cut short")
            raise LlmError("parse", f"the answer was cut off at max_tokens={self.max_tokens()} before it ended "
                                    f"(it began {content[:160]!r} and ended {content[-80:]!r})", client=self.name)
        return content


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _schema_shaped(text: str, schema: dict[str, Any]) -> bool:
    """The answer is the JSON object asked for: an object with every key the schema requires."""
    try:
        data = json.loads(text.strip())
    except ValueError:
        return False
    return isinstance(data, dict) and all(key in data for key in schema.get("required", ()))


def _context_window(detail: str) -> int | None:
    m = _WINDOW.search(detail)
    if not m:
        return None
    return int(next(g for g in m.groups() if g))


def _openai_error(reply: HttpReply) -> str:
    data = reply.json()
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return str(error.get("message", error))[:500]
        if isinstance(error, str):
            return error[:500]
        if "detail" in data:
            return str(data["detail"])[:500]
        if "message" in data:  # vLLM: {"object": "error", "message": ...}
            return str(data["message"])[:500]
    return reply.body[:300].decode("utf-8", "replace").strip()


def _about_format(detail: str) -> bool:
    low = detail.lower()
    return any(w in low for w in ("response_format", "json_schema", "json_object", "schema", "grammar",
                                  "'text'", '"text"'))
