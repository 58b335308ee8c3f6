"""The LLM clients tried in order until one gives a usable answer.

A client (`base.LlmClient`) turns a prompt into answer text or raises `LlmError`; `registry`
builds the configured ones. `LlmChain` tries the primary client, then each fallback: a client
fails on an error, a timeout, or an answer that cannot be parsed. Every call is reported as an ``LlmCalled`` event, and every answer is handed to the
caller's ``on_answer`` (to be kept in the repair record) before it is judged. A client that can tell
how much prompt fits its model (``prompt_chars``) gets a prompt rebuilt to fit (the caller's
``refit``), also after a refusal that taught it the model's window; what a client negotiated with its
server (``protocol``) goes into each attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from phoenix_sidecar.errors import AnswerRejected, LlmError
from phoenix_sidecar.events import EventBus, LlmCalled, PatchRejected, StepProgress
from phoenix_sidecar.repair.llm.base import LlmClient

T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    client: str
    seconds: float
    ok: bool
    error: str = ""  # bounded kind
    message: str = ""
    protocol: str = ""  # what the client negotiated with its server (response format, window)


@dataclass
class ChainResult(Generic[T]):
    client: str | None = None
    answer: str | None = None
    parsed: T | None = None
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.parsed is not None

    def failure(self) -> str:
        return "; ".join(f"{a.client}: {a.message}" for a in self.attempts) or "no LLM client is configured"


class LlmChain(Generic[T]):
    """Asks each client in turn; the first answer that parses wins."""

    def __init__(self, clients: list[LlmClient], bus: EventBus, parse: Callable[[str], T], *,
                 scrub: Callable[[str], str] = lambda s: s,
                 on_answer: Callable[[str, str], None] | None = None) -> None:
        self.clients = clients
        self.bus = bus
        self.parse = parse
        self.scrub = scrub
        self.on_answer = on_answer

    def prompt_chars(self, default: int) -> int:
        """The longest prompt every client's model can take: ``default`` or less."""
        return min([default, *(n for n in (_fit(c) for c in self.clients) if n)])

    def ask(self, prompt: str, refit: Callable[[int], str] | None = None) -> ChainResult[T]:
        """The first answer that parses. ``refit(chars)`` rebuilds the prompt at most ``chars`` long."""
        result: ChainResult[T] = ChainResult()
        for client in self.clients:
            text = prompt
            step = f"asking the LLM ({client.name}) for a patch"
            settings = getattr(client, "settings", None)  # the built-in clients carry theirs
            timeout = float(getattr(settings, "llm_timeout_seconds", 0.0) or 0.0)
            for _ in range(2):  # a second try only with a prompt cut to a window the first one taught
                started = time.monotonic()
                self.bus.emit(StepProgress(step="llm", detail=step, limit_seconds=timeout))
                try:
                    answer = client.complete(text)
                except LlmError as exc:
                    self._record(result, client, started, exc.kind, self.scrub(str(exc)))
                    limit = _fit(client) if refit is not None else None
                    if refit is None or limit is None or len(text) <= limit:
                        break
                    text = refit(limit)
                    continue
                finally:
                    self.bus.emit(StepProgress(step="llm", detail=step, limit_seconds=timeout, done=True))
                if self.on_answer is not None:
                    self.on_answer(client.name, answer)
                try:
                    parsed = self.parse(answer)
                except AnswerRejected as exc:
                    self.bus.emit(PatchRejected(reason=exc.reason))
                    self._record(result, client, started, "parse", f"unusable answer: {self.scrub(exc.detail)}")
                    break
                seconds = time.monotonic() - started
                result.attempts.append(Attempt(client.name, seconds, True, protocol=_protocol(client)))
                self.bus.emit(LlmCalled(client=client.name, seconds=seconds, ok=True))
                result.client, result.answer, result.parsed = client.name, answer, parsed
                return result
        return result

    def _record(self, result: ChainResult[T], client: LlmClient, started: float, kind: str, message: str) -> None:
        seconds = time.monotonic() - started
        result.attempts.append(Attempt(client.name, seconds, False, kind, message, _protocol(client)))
        self.bus.emit(LlmCalled(client=client.name, seconds=seconds, ok=False, error=kind))


def _fit(client: LlmClient) -> int | None:
    """Prompt characters the client's model takes, where the client can tell (optional protocol)."""
    fit = getattr(client, "prompt_chars", None)
    return fit() if callable(fit) else None


def _protocol(client: LlmClient) -> str:
    return str(getattr(client, "protocol", "") or "")
