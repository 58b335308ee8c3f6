"""The diagnosis of every log in tests/data/logs against its expected*.yaml files (tests/kits/corpus.py).

Each case checks what a user of `phoenix diagnose` reads first: the category, whether a patch
could help, the root exception and the innermost user frame. The signature groups check the
property the retry budget rests on: recurrences share one signature, different failures do not.
"""

from __future__ import annotations

import re
from functools import cache

import pytest

from phoenix_watchdog.diagnosis.diagnose import diagnose
from phoenix_watchdog.diagnosis.failure import Diagnosis, ExitStatus, HangInfo
from phoenix_watchdog.diagnosis.categories import Category

from tests.kits.corpus import LOGS, load_spec

SPEC = load_spec()
CASES: dict[str, dict] = SPEC["cases"]


def run_case(name: str) -> Diagnosis:
    spec = CASES[name]
    text = (LOGS / spec.get("log", f"{name}.log")).read_text(encoding="utf-8", errors="replace")
    exit = ExitStatus(**spec["exit"]) if spec.get("exit") else None
    hang = None
    if spec.get("hang"):
        h = spec["hang"]
        stack = (LOGS / h["stack"]).read_text() if h.get("stack") else None
        hang = HangInfo(float(h["silent_seconds"]), stack)
    return diagnose(text, exit, hang, workspace=spec.get("workspace", "/workspace"))


@cache
def signature(name: str) -> str:
    return run_case(name).signature


def test_the_corpus_is_big_and_covers_every_category() -> None:
    logs = {p.name for p in LOGS.glob("*.log")}
    assert len(logs) >= 40
    used = {spec.get("log", f"{name}.log") for name, spec in CASES.items()}
    assert logs <= used, f"logs without an expected result: {sorted(logs - used)}"
    assert {spec["category"] for spec in CASES.values()} == set(Category)
    torch_logs = [n for n in logs if n.startswith("torch_")]
    assert len(torch_logs) >= 20


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(name: str) -> None:
    spec = CASES[name]
    d = run_case(name)
    got = {"category": d.category, "patchable": d.patchable, "exception": d.exception,
           "function": d.frame.function if d.frame else None, "file": d.frame.file if d.frame else None}
    want = {k: spec[k] for k in got}
    assert got == want, d.summary
    assert re.fullmatch(rf"{d.category}-[0-9a-f]{{16}}", d.signature)
    assert d.summary and "\n" not in d.summary and len(d.summary) <= 300
    assert d.evidence and all("\n" not in e and len(e) <= 300 for e in d.evidence) and len(d.evidence) <= 8
    if d.frame is not None:
        assert d.files and d.files[-1] == d.frame.file, "files must end with the innermost user file"
        assert not d.frame.file.startswith("/workspace/"), "user files are shown relative to the workspace"


@pytest.mark.parametrize("group", SPEC["same_signature"], ids=lambda g: g[0])
def test_recurrences_share_a_signature(group: list[str]) -> None:
    sigs = {name: signature(name) for name in group}
    assert len(set(sigs.values())) == 1, sigs


@pytest.mark.parametrize("group", SPEC["different_signature"], ids=lambda g: g[0])
def test_different_failures_differ(group: list[str]) -> None:
    sigs = {name: signature(name) for name in group}
    assert len(set(sigs.values())) == len(group), sigs


def test_groups_name_known_cases() -> None:
    for group in SPEC["same_signature"] + SPEC["different_signature"]:
        assert set(group) <= set(CASES), set(group) - set(CASES)
