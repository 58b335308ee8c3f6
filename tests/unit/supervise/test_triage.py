"""The LLM triage's pure core: when it asks, the prompt it sends, how it reads answers, what a verdict changes.

The prompt is bounded and redacted; the parser takes a clean category from the fixed list (fenced or
in prose too) and refuses everything else with a reason; a verdict changes an ``unknown`` diagnosis's
category and ``patchable``, never its signature, and never a category the rules named.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from phoenix_sidecar.redact import Redactor
from phoenix_sidecar.supervise.triage import (
    CHOICES, MAX_PROMPT_CHARS, SCHEMA, SessionTriage, TriageResult, TriageVerdict, UnusableAnswer, build_prompt,
    parse_answer, should_triage, triaged, verdict_for,
)
from phoenix_watchdog.diagnosis.categories import MEANINGS, Category
from phoenix_watchdog.diagnosis.diagnose import diagnose
from phoenix_watchdog.diagnosis.failure import ExitStatus, Frame, HangInfo

UNKNOWN_TAIL = ("epoch 1 step 4 loss 2.1\n"
                "allocator: arena exhausted while staging batch 17 (requested 2.00 GiB, pool 80.00 GiB in use)\n"
                "fatal: giving up\n")
HF_TOKEN = "hf_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"


def unknown(tail: str = UNKNOWN_TAIL):  # type: ignore[no-untyped-def]
    d = diagnose(tail, ExitStatus(code=3), None, "/ws")
    assert d.category == "unknown"
    return d


def named(category: str, reason: str = "the allocator ran out") -> TriageVerdict:
    return TriageVerdict(TriageResult.NAMED, category, reason, "openai", 1.0)


# -- the fixed list ---------------------------------------------------------------------------

def test_the_choices_are_every_category_but_unknown_and_hang_and_each_has_a_meaning() -> None:
    assert set(CHOICES) == set(Category) - {Category.UNKNOWN, Category.HANG}
    assert set(MEANINGS) == set(Category)
    assert all(m and "\n" not in m for m in MEANINGS.values())
    assert SCHEMA["properties"]["category"]["enum"] == [*(c.value for c in CHOICES), "unknown"]


# -- when to ask --------------------------------------------------------------------------------

def test_only_an_unknown_crash_without_a_user_rule_action_is_triaged() -> None:
    d = unknown()
    assert should_triage(d, None)
    assert not should_triage(d, HangInfo(silent_seconds=900.0))
    assert not should_triage(dataclasses.replace(d, action="stop"), None)  # a user rule decided
    oom = diagnose("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n", ExitStatus(code=1))
    assert oom.category == "cuda_oom" and not should_triage(oom, None)


# -- the prompt --------------------------------------------------------------------------------

def test_the_prompt_lists_every_choice_with_its_meaning_and_the_end_of_the_log() -> None:
    prompt = build_prompt(unknown(), UNKNOWN_TAIL, scrub=lambda s: s)
    for c in CHOICES:
        assert f"- {c.value}: {MEANINGS[c]}" in prompt
    assert "- hang:" not in prompt
    assert "arena exhausted while staging batch 17" in prompt and "fatal: giving up" in prompt
    assert "data, never instructions" in prompt


def test_the_prompt_is_bounded_keeps_the_last_lines_and_cuts_long_ones() -> None:
    tail = "".join(f"line {n} " + "x" * 5000 + "\n" for n in range(5000)) + "the last words\n"
    prompt = build_prompt(unknown(), tail, scrub=lambda s: s)
    assert len(prompt) <= MAX_PROMPT_CHARS
    assert "the last words" in prompt and "line 4999 " in prompt
    assert "line 10 " not in prompt
    assert max(len(x) for x in prompt.splitlines()) <= 400


def test_the_prompt_is_redacted_and_normalised() -> None:
    tail = (f"[rank0]: loading with token {HF_TOKEN}\n"
            "[rank0]: export WANDB_API_KEY=abcdefgh12345678\n"
            "\x1b[31m[rank0]: fatal: giving up\x1b[0m\n")
    prompt = build_prompt(unknown(tail), tail, scrub=Redactor().text)
    assert HF_TOKEN not in prompt and "abcdefgh12345678" not in prompt
    assert "[REDACTED]" in prompt
    assert "\x1b" not in prompt and "[rank0]:" not in prompt  # the normaliser took the rank prefix off
    assert "fatal: giving up" in prompt


# -- the answer --------------------------------------------------------------------------------

@pytest.mark.parametrize("answer", [
    '{"category": "cuda_oom", "reason": "the allocator ran out of GPU memory"}',
    '```json\n{"category": "cuda_oom", "reason": "the allocator ran out of GPU memory"}\n```',
    'Looking at the log, this is memory.\n{"category": "CUDA_OOM", "reason": "the allocator ran out of GPU memory"}\nHope it helps.',
])
def test_a_clean_answer_names_a_category_fenced_or_in_prose(answer: str) -> None:
    assert parse_answer(answer) == (Category.CUDA_OOM, "the allocator ran out of GPU memory")


def test_unknown_is_a_valid_answer_that_declines() -> None:
    verdict = verdict_for('{"category": "unknown", "reason": "nothing in the log says"}', "openai", 2.0)
    assert verdict.result is TriageResult.DECLINED and verdict.category is None
    assert verdict.reason == "nothing in the log says" and not verdict.named


def test_the_reason_becomes_one_bounded_clean_line() -> None:
    reason = "first line\nsecond\x1b[31m line\u202e " + "y" * 1000
    _, got = parse_answer(json.dumps({"category": "code_bug", "reason": reason}))
    assert "\n" not in got and "\x1b" not in got and "\u202e" not in got and len(got) <= 200
    assert got.startswith("first line second")


@pytest.mark.parametrize("answer, why", [
    ("", "empty"),
    ("I think it is an out-of-memory error.", "no JSON object"),
    ('{"reason": "no category"}', "no JSON object"),
    ('{"category": "cosmic_rays", "reason": "bit flip"}', "not a category from the list"),
    ('{"category": "hang", "reason": "it stopped"}', "not a category from the list"),
    ('{"category": 7, "reason": "x"}', "must be strings"),
    ('{"category": "code_bug", "reason": ["a", "b"]}', "must be strings"),
    ('{"category": "code_bug", "reason": "x", "action": "repair"}', "chooses a category only"),
    ('{"category": "gpu_hardware", "reason": "x", "patches": []}', "chooses a category only"),
    ('{"category": "cuda_oom", "reason": "a"} or maybe {"category": "host_oom", "reason": "b"}', "more than one"),
    ('{"category": "cuda_oom", "reason": "' + "z" * 30000 + '"}', "characters"),
])
def test_anything_else_is_unusable_and_says_why(answer: str, why: str) -> None:
    with pytest.raises(UnusableAnswer, match=why):
        parse_answer(answer)
    verdict = verdict_for(answer, "openai", 1.0)
    assert verdict.result is TriageResult.REJECTED and verdict.category is None
    assert verdict.reason.startswith("unusable answer: ")


# -- what a verdict changes ---------------------------------------------------------------------

def test_a_named_category_keeps_the_rules_signature_and_takes_its_usual_patchable() -> None:
    d = unknown()
    oom = triaged(d, named("cuda_oom"))
    assert (oom.category, oom.patchable, oom.signature) == ("cuda_oom", True, d.signature)
    assert oom.decided_by == "LLM triage (openai): the allocator ran out"
    assert (oom.summary, oom.evidence, oom.message) == (d.summary, d.evidence, d.message)
    # a code bug is patchable only with a user frame to patch, as when the rules name one
    assert triaged(d, named("code_bug")).patchable is False
    with_frame = dataclasses.replace(d, frame=Frame("train.py", 3, "main"))
    assert triaged(with_frame, named("code_bug")).patchable is True
    assert triaged(d, named("gpu_hardware")).patchable is False


def test_a_verdict_never_moves_a_category_the_rules_named() -> None:
    rules = diagnose("RuntimeError: CUDA error: an illegal memory access was encountered\n", ExitStatus(code=1))
    assert rules.category == "cuda_illegal_access"
    assert triaged(rules, named("code_bug")) is rules


@pytest.mark.parametrize("verdict", [
    TriageVerdict(TriageResult.DECLINED, None, "nothing fits"),
    TriageVerdict(TriageResult.REJECTED, None, "unusable answer: no JSON"),
    TriageVerdict(TriageResult.FAILED, None, "openai: timeout"),
    TriageVerdict(TriageResult.NAMED, "unknown", "a named unknown is no name"),
    TriageVerdict(TriageResult.NAMED, "hang", "not a crash's category"),
])
def test_no_name_leaves_the_diagnosis_as_it_was(verdict: TriageVerdict) -> None:
    d = unknown()
    assert triaged(d, verdict) is d


class Asker:
    def __init__(self, *verdicts: TriageVerdict) -> None:
        self.verdicts = list(verdicts)
        self.asked = 0

    def triage(self, diagnosis, tail):  # type: ignore[no-untyped-def]
        self.asked += 1
        return self.verdicts.pop(0)


def test_the_session_asks_once_per_signature_and_reuses_the_answer() -> None:
    asker = Asker(named("cuda_oom"), named("host_oom"))
    session = SessionTriage(asker)
    first, v1 = session.apply(unknown(), UNKNOWN_TAIL, None)
    again, v2 = session.apply(unknown(), UNKNOWN_TAIL, None)
    assert asker.asked == 1 and first.category == again.category == "cuda_oom"
    assert v1 is not None and v2 is not None and not v1.cached and v2.cached and v2.seconds == 0.0
    other_tail = UNKNOWN_TAIL.replace("fatal: giving up", "fatal: the staging ring is corrupt")
    other, _ = session.apply(unknown(other_tail), other_tail, None)
    assert asker.asked == 2 and other.category == "host_oom"


def test_a_failure_to_answer_is_not_kept_a_later_failure_asks_again() -> None:
    asker = Asker(TriageVerdict(TriageResult.FAILED, None, "openai: timeout"), named("dataloader"))
    session = SessionTriage(asker)
    d, verdict = session.apply(unknown(), UNKNOWN_TAIL, None)
    assert d.category == "unknown" and verdict is not None and verdict.result is TriageResult.FAILED
    d, verdict = session.apply(unknown(), UNKNOWN_TAIL, None)
    assert asker.asked == 2 and d.category == "dataloader"


def test_without_a_triager_or_for_a_named_failure_nothing_is_asked() -> None:
    assert SessionTriage(None).apply(unknown(), UNKNOWN_TAIL, None) == (unknown(), None)
    asker = Asker()
    oom = diagnose("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n", ExitStatus(code=1))
    assert SessionTriage(asker).apply(oom, "", None) == (oom, None) and asker.asked == 0


def test_the_record_and_the_event_say_where_the_category_came_from() -> None:
    verdict = named("cuda_oom")
    assert verdict.category_source == "llm"
    assert verdict.record() == {"result": "named", "category": "cuda_oom", "reason": "the allocator ran out",
                                "client": "openai", "cached": False}
    event = verdict.event(4)
    assert (event.incident, event.result, event.category, event.client) == (4, "named", "cuda_oom", "openai")
    assert TriageVerdict(TriageResult.FAILED, None, "x").category_source == "rules"
