"""LLM over HTTP: the request seam (`post_json`, `get_json`), rate-limit waits, and the Gemini API client.

The Gemini API client asks for JSON constrained by the answer schema, stays within
``llm_timeout_seconds`` per call (retries included), and waits out rate limits only as long as the
server asks and a bound allows. The OpenAI-compatible client (`openai_compat`) builds on the same
seam. Keys travel in headers only, never in URLs, and no message built here contains one.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from phoenix_sidecar.errors import LlmError
from phoenix_sidecar.repair.llm.base import REPAIR, Task, config_error, gemini_schema
from phoenix_sidecar.config.schema import Settings, secret

MAX_REPLY_BYTES = 8 * 1024 * 1024
MAX_RETRY_DELAY = 300.0  # a longer delay than this is a quota, not a hiccup (Gemini CLI's rule)
MAX_TOTAL_WAIT = 120.0
MAX_ATTEMPTS = 6
_RETRY_IN = re.compile(r"retry in ([\d.]+)\s*(ms|s)\b", re.I)


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8", "replace"))
        except ValueError:
            return None


def post_json(url: str, payload: dict[str, Any], headers: Mapping[str, str], *, deadline: float,
              client: str) -> HttpReply:
    """POST JSON and read the reply, all before ``deadline`` (time.monotonic)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise LlmError("timeout", "no time left for the request", client=client)
    data = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json",
                                              "User-Agent": "phoenix-supervisor", **headers})
    host = urllib.parse.urlsplit(url).hostname or url
    try:
        response = _opener(host).open(request, timeout=remaining)
        status = response.status
    except urllib.error.HTTPError as exc:
        response, status = exc, exc.code
    except (TimeoutError, socket.timeout):
        raise LlmError("timeout", f"{host} did not answer within {remaining:.0f} s", client=client) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise LlmError("timeout", f"{host} did not answer within {remaining:.0f} s", client=client) from None
        raise LlmError("http", f"cannot reach {host}: {reason}", client=client) from None
    try:
        body = _read(response, deadline, host, client)
    finally:
        response.close()
    return HttpReply(status, {k.lower(): v for k, v in response.headers.items()}, body)


def get_json(url: str, headers: Mapping[str, str], *, timeout: float) -> Any:
    """GET ``url`` and its JSON body, or None on any failure (a probe: what a server can tell about itself)."""
    request = urllib.request.Request(url, method="GET", headers={"Accept": "application/json",
                                                                 "User-Agent": "phoenix-supervisor", **headers})
    host = urllib.parse.urlsplit(url).hostname or url
    try:
        with _opener(host).open(request, timeout=timeout) as response:
            body = response.read(MAX_REPLY_BYTES)
        return json.loads(body.decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError):
        return None


def _read(response: Any, deadline: float, host: str, client: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise LlmError("timeout", f"{host} was still sending its reply at the time limit", client=client)
            chunk = response.read(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise LlmError("http", f"{host} sent more than {MAX_REPLY_BYTES} bytes", client=client)
            chunks.append(chunk)
    except (TimeoutError, socket.timeout):
        raise LlmError("timeout", f"{host} stalled while sending its reply", client=client) from None
    except (OSError, http.client.HTTPException) as exc:
        raise LlmError("http", f"{host} broke off its reply: {exc}", client=client) from None


def _opener(host: str) -> urllib.request.OpenerDirector:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    # A local model server is reached directly, whatever proxy the environment names.
    return urllib.request.build_opener(urllib.request.ProxyHandler({})) if loopback else urllib.request.build_opener()


class RetryBudget:
    """How long rate limits may still be waited out within one call."""

    def __init__(self, deadline: float, sleep: Callable[[float], None]) -> None:
        self.deadline = deadline
        self.waited = 0.0
        self.sleep = sleep

    def wait(self, delay: float, why: str, client: str) -> None:
        if delay > MAX_RETRY_DELAY:
            raise LlmError("rate_limited", f"{why}; the server asks to wait {delay:.0f} s, longer than "
                                           f"{MAX_RETRY_DELAY:.0f} s", client=client)
        if self.waited + delay > MAX_TOTAL_WAIT or time.monotonic() + delay >= self.deadline:
            raise LlmError("rate_limited", f"{why}; waiting {delay:.1f} s more would pass the time limit",
                           client=client)
        self.sleep(delay)
        self.waited += delay


class GeminiApiClient:
    """``POST {base}/v1beta/models/{model}:generateContent`` with the key in ``x-goog-api-key``."""

    name = "gemini_api"

    def __init__(self, settings: Settings, environ: Mapping[str, str], *,
                 sleep: Callable[[float], None] = time.sleep, task: Task = REPAIR) -> None:
        self.settings = settings
        self.environ = environ
        self.sleep = sleep
        self.task = task

    def complete(self, prompt: str) -> str:
        s = self.settings
        key = secret(s, "gemini_api_key", self.environ)
        if not key:
            raise config_error(self.name, f"no Gemini API key: set the variable {s.gemini_api_key_env}")
        url = f"{s.gemini_api_base_url.rstrip('/')}/v1beta/models/{urllib.parse.quote(s.gemini_model)}:generateContent"
        payload = {
            "systemInstruction": {"parts": [{"text": self.task.instruction}]},
            "contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"temperature": 0.2, "responseMimeType": "application/json",
                                 "responseSchema": gemini_schema(self.task.schema)},
        }
        deadline = time.monotonic() + s.llm_timeout_seconds
        budget = RetryBudget(deadline, self.sleep)
        for attempt in range(MAX_ATTEMPTS):
            reply = post_json(url, payload, {"x-goog-api-key": key}, deadline=deadline, client=self.name)
            if reply.status == 200:
                return self._text(reply)
            status, message, details = _google_error(reply)
            why = f"Gemini API answered {reply.status} {status}: {message}".rstrip(": ")
            if reply.status in (429, 499, 503) or status == "RESOURCE_EXHAUSTED":
                delay = _retry_delay(message, details)
                if "limit: 0" in message or _daily_quota(details):
                    raise LlmError("rate_limited", f"{why} (a daily or zero quota: waiting will not help)",
                                   client=self.name)
                budget.wait(delay if delay is not None else min(30.0, 2.0 * 2 ** attempt), why, self.name)
                continue
            raise LlmError("http", why, client=self.name)
        raise LlmError("rate_limited", f"Gemini API still refused after {MAX_ATTEMPTS} attempts", client=self.name)

    def _text(self, reply: HttpReply) -> str:
        data = reply.json()
        if not isinstance(data, dict):
            raise LlmError("parse", "Gemini API sent a reply that is not JSON", client=self.name)
        candidates = data.get("candidates") or []
        if not candidates:
            block = (data.get("promptFeedback") or {}).get("blockReason", "no candidates")
            raise LlmError("parse", f"Gemini API gave no answer ({block})", client=self.name)
        first = candidates[0] if isinstance(candidates[0], dict) else {}
        parts = (first.get("content") or {}).get("parts") or []
        text = "".join(p.get("text", "") for p in parts if isinstance(p, dict) and not p.get("thought"))
        if not text.strip():
            raise LlmError("parse", f"Gemini API gave an empty answer (finishReason "
                                    f"{first.get('finishReason', 'unknown')})", client=self.name)
        return text


def _google_error(reply: HttpReply) -> tuple[str, str, list[Any]]:
    data = reply.json()
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return "", reply.body[:300].decode("utf-8", "replace").strip(), []
    details = error.get("details") if isinstance(error.get("details"), list) else []
    return str(error.get("status", "")), str(error.get("message", ""))[:500], details


def _retry_delay(message: str, details: list[Any]) -> float | None:
    for d in details:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            m = re.fullmatch(r"\s*([\d.]+)s\s*", str(d.get("retryDelay", "")))
            if m:
                return float(m.group(1))
    m = _RETRY_IN.search(message)
    if m:
        value = float(m.group(1))
        return value / 1000.0 if m.group(2).lower() == "ms" else value
    return None


def _daily_quota(details: list[Any]) -> bool:
    for d in details:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.QuotaFailure"):
            for v in d.get("violations") or []:
                quota = str((v or {}).get("quotaId", "")) if isinstance(v, dict) else ""
                if "PerDay" in quota or "Daily" in quota:
                    return True
    return False
