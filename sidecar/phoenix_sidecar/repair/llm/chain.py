"""The LLM clients tried in order until one gives a usable answer.

A client (`base.LlmClient`) turns a prompt into answer text or raises `LlmError`; `registry`
builds the configured ones. `LlmChain` tries the primary client, then each fallback: a client
fails on an error, a timeout, or an answer that cannot be parsed. Every call is reported as an ``LlmCalled`` event, and every answer is handed to the
caller's ``on_answer`` (to be kept in the repair record) before it is judged.
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

    def ask(self, prompt: str) -> ChainResult[T]:
        result: ChainResult[T] = ChainResult()
        for client in self.clients:
            started = time.monotonic()
            step = f"asking the LLM ({client.name}) for a patch"
            settings = getattr(client, "settings", None)  # the built-in clients carry theirs
            limit = float(getattr(settings, "llm_timeout_seconds", 0.0) or 0.0)
            self.bus.emit(StepProgress(step="llm", detail=step, limit_seconds=limit))
            try:
                answer = client.complete(prompt)
            except LlmError as exc:
                self._record(result, client.name, started, exc.kind, self.scrub(str(exc)))
                continue
            finally:
                self.bus.emit(StepProgress(step="llm", detail=step, limit_seconds=limit, done=True))
            if self.on_answer is not None:
                self.on_answer(client.name, answer)
            try:
                parsed = self.parse(answer)
            except AnswerRejected as exc:
                self.bus.emit(PatchRejected(reason=exc.reason))
                self._record(result, client.name, started, "parse", f"unusable answer: {self.scrub(exc.detail)}")
                continue
            seconds = time.monotonic() - started
            result.attempts.append(Attempt(client.name, seconds, True))
            self.bus.emit(LlmCalled(client=client.name, seconds=seconds, ok=True))
            result.client, result.answer, result.parsed = client.name, answer, parsed
            return result
        return result

    def _record(self, result: ChainResult[T], client: str, started: float, kind: str, message: str) -> None:
        seconds = time.monotonic() - started
        result.attempts.append(Attempt(client, seconds, False, kind, message))
        self.bus.emit(LlmCalled(client=client, seconds=seconds, ok=False, error=kind))
