"""The production triager's logic on in-process clients: order, fallbacks, the one time limit, the events.

The clients here are plain objects with the `LlmClient` shape on a fake clock; the real clients
against a real HTTP server are in ``tests/integration/repair/test_triage_run.py``.
"""

from __future__ import annotations

from pathlib import Path

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.errors import LlmError
from phoenix_sidecar.events import EventBus, LlmCalled, StepProgress
from phoenix_sidecar.redact import Redactor
from phoenix_sidecar.repair.llm import CLIENTS
from phoenix_sidecar.supervise.triage import TriageResult
from phoenix_sidecar.supervise.triage_llm import TASK, LlmTriager
from phoenix_watchdog.diagnosis.diagnose import diagnose
from phoenix_watchdog.diagnosis.failure import ExitStatus

TAIL = "allocator: arena exhausted while staging batch 17\nfatal: giving up\n"
SECRET = "sk-" + "abcdefghijklmnopqrstuvwx"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Client:
    """Answers ``answer`` (or raises it) after ``seconds`` of fake time; records its prompts and limits."""

    def __init__(self, name: str, answer: str | Exception, clock: Clock, seconds: float = 1.0) -> None:
        self.name = name
        self.answer = answer
        self.clock = clock
        self.seconds = seconds
        self.settings = Settings()
        self.limits: list[float] = []
        self.prompts: list[str] = []

    def complete(self, prompt: str) -> str:
        self.prompts.append(prompt)
        self.limits.append(self.settings.llm_timeout_seconds)
        self.clock.now += self.seconds
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def triager(clients: list[Client], clock: Clock, **settings: object) -> tuple[LlmTriager, list[object]]:
    events: list[object] = []
    bus = EventBus()
    bus.subscribe(events.append)
    s = Settings(llm_triage=True, **settings)  # type: ignore[arg-type]
    return LlmTriager(s, bus, {}, Path("."), scrub=Redactor([SECRET]).text, clients=clients, clock=clock), events


def unknown():  # type: ignore[no-untyped-def]
    return diagnose(TAIL, ExitStatus(code=3))


def test_the_first_usable_answer_wins_after_failures_and_unusable_answers() -> None:
    clock = Clock()
    down = Client("gemini_api", LlmError("http", "cannot reach the server", client="gemini_api"), clock)
    chatty = Client("openai", "I would say memory.", clock)
    good = Client("command", '{"category": "cuda_oom", "reason": "the allocator ran out"}', clock)
    t, events = triager([down, chatty, good], clock)

    verdict = t.triage(unknown(), TAIL)

    assert (verdict.result, verdict.category, verdict.client) == (TriageResult.NAMED, "cuda_oom", "command")
    assert verdict.seconds == 3.0
    assert [(e.client, e.ok, e.error) for e in events if isinstance(e, LlmCalled)] == [
        ("gemini_api", False, "http"), ("openai", True, ""), ("command", True, "")]
    steps = [e for e in events if isinstance(e, StepProgress)]
    assert steps[0].detail == "asking the LLM (gemini_api) to name the failure's category"
    assert [s.done for s in steps] == [False, True] * 3


def test_all_clients_together_stay_within_the_triage_limit() -> None:
    clock = Clock()
    slow = Client("gemini_api", LlmError("timeout", "no answer within 12 s", client="gemini_api"), clock, seconds=12)
    slower = Client("openai", LlmError("timeout", "no answer within 7.5 s", client="openai"), clock, seconds=7.5)
    never = Client("command", '{"category": "cuda_oom", "reason": "x"}', clock)
    t, _ = triager([slow, slower, never], clock, llm_triage_timeout_seconds=20)

    verdict = t.triage(unknown(), TAIL)

    assert slow.limits == [20.0] and slower.limits == [8.0]  # each call gets what is left of the limit
    assert never.prompts == []  # 0.5 s left: no call could finish in it
    assert verdict.result is TriageResult.FAILED and verdict.category is None and verdict.seconds == 19.5
    assert "gemini_api: no answer within 12 s" in verdict.reason
    assert "command: not asked, the 20 s triage limit was spent" in verdict.reason


def test_only_unusable_answers_is_rejected_with_each_reason() -> None:
    clock = Clock()
    a = Client("openai", '{"category": "cosmic_rays", "reason": "x"}', clock)
    b = Client("command", '{"category": "code_bug", "reason": "x", "action": "repair"}', clock)
    verdict = triager([a, b], clock)[0].triage(unknown(), TAIL)
    assert verdict.result is TriageResult.REJECTED and verdict.category is None
    assert "openai: unusable answer: 'cosmic_rays' is not a category" in verdict.reason
    assert "command: unusable answer: the answer carries more than a category" in verdict.reason


def test_a_declining_answer_ends_the_asking() -> None:
    clock = Clock()
    a = Client("openai", '{"category": "unknown", "reason": "the log says too little"}', clock)
    b = Client("command", '{"category": "code_bug", "reason": "x"}', clock)
    verdict = triager([a, b], clock)[0].triage(unknown(), TAIL)
    assert (verdict.result, verdict.reason) == (TriageResult.DECLINED, "the log says too little")
    assert b.prompts == []


def test_no_client_and_a_client_bug_are_failures_not_crashes() -> None:
    clock = Clock()
    assert triager([], clock)[0].triage(unknown(), TAIL).result is TriageResult.FAILED
    buggy = Client("openai", KeyError("choices"), clock)
    verdict = triager([buggy], clock)[0].triage(unknown(), TAIL)
    assert verdict.result is TriageResult.FAILED and "openai: KeyError" in verdict.reason


def test_the_prompt_and_the_recorded_reasons_are_redacted() -> None:
    clock = Clock()
    leak = Client("openai", LlmError("http", f"server said: bad key {SECRET}", client="openai"), clock)
    echo = Client("command", '{"category": "config_error", "reason": "key ' + SECRET + ' was refused"}', clock)
    verdict = triager([leak, echo], clock)[0].triage(unknown(), f"using key {SECRET}\n" + TAIL)
    assert SECRET not in leak.prompts[0] and SECRET not in echo.prompts[0]
    assert verdict.category == "config_error" and SECRET not in verdict.reason


def test_the_configured_http_clients_ask_for_a_category_not_patches(tmp_path: Path) -> None:
    built = {name: factory(Settings(), {}, tmp_path, TASK) for name, factory in CLIENTS.items()}
    assert built["openai"].task is TASK and built["gemini_api"].task is TASK  # type: ignore[attr-defined]
    assert TASK.schema["required"] == ["category", "reason"]
    assert "category" in TASK.instruction and "patch" not in TASK.instruction


def test_the_first_client_is_asked_with_whatever_is_left_a_fallback_only_with_a_second_left() -> None:
    clock = Clock()
    first = Client("openai", LlmError("timeout", "no answer", client="openai"), clock, seconds=0.5)
    second = Client("command", '{"category": "cuda_oom", "reason": "x"}', clock)
    verdict = triager([first, second], clock, llm_triage_timeout_seconds=1)[0].triage(unknown(), TAIL)
    assert first.limits == [1.0] and second.prompts == []
    assert verdict.result is TriageResult.FAILED
