"""The chain says which client it is waiting for, with the time limit, and that the wait is over
(the console repeats the step while it lasts), whether the client answers or fails."""

from __future__ import annotations

from phoenix_sidecar import events as ev
from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.errors import LlmError
from phoenix_sidecar.repair.llm import LlmChain


class Client:
    def __init__(self, name: str, answer: str | None) -> None:
        self.name, self.answer = name, answer
        self.settings = Settings(llm_timeout_seconds=42)

    def complete(self, prompt: str) -> str:
        if self.answer is None:
            raise LlmError("timeout", "no answer within 42 s", client=self.name)
        return self.answer


def test_each_client_wait_is_announced_and_closed() -> None:
    seen: list[ev.Event] = []
    bus = ev.EventBus()
    bus.subscribe(seen.append)
    chain = LlmChain([Client("gemini_api", None), Client("openai", "fixed")], bus, parse=lambda text: text)
    assert chain.ask("prompt").parsed == "fixed"
    steps = [(e.detail, e.limit_seconds, e.done) for e in seen if isinstance(e, ev.StepProgress)]
    assert steps == [("asking the LLM (gemini_api) for a patch", 42, False),
                     ("asking the LLM (gemini_api) for a patch", 42, True),
                     ("asking the LLM (openai) for a patch", 42, False),
                     ("asking the LLM (openai) for a patch", 42, True)]
