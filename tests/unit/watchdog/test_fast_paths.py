"""The fast paths of the diagnosis give what the straightforward algorithms they replaced give.

`markers.scan_markers` searches digit-folded line shapes once each and classifies each distinct
text once; the straightforward scan searched every line and classified every hit. Both are run
here on corpus lines and on lines drawn by hypothesis from the triggers, digits and noise, and
must find the same evidence, line for line.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoenix_watchdog.diagnosis import markers as M
from phoenix_watchdog.diagnosis.logtext import LogLine, split_log
from phoenix_watchdog.diagnosis.pytrace import parse_tracebacks
from phoenix_watchdog.diagnosis.rules import BUILTIN, NEEDLES, user_rules

LOGS = Path(__file__).resolve().parents[2] / "data" / "logs"
CORPUS = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in sorted(LOGS.glob("*.log"))}
CORPUS_LINES = sorted({ln.text for text in CORPUS.values() for ln in split_log(text)})
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_scan(lines: list[LogLine], skip: set[int], rules=BUILTIN) -> list[M.Finding]:
    """Every line searched for a trigger, every hit classified: what `scan_markers` must equal."""
    user = M._user_trigger(rules)
    hits = {i for i, ln in enumerate(lines) if not ln.text.startswith("frame #") and M._TRIGGER.search(ln.text)}
    if user is not None:
        hits |= {i for i, ln in enumerate(lines) if not ln.text.startswith("frame #") and user.search(ln.text)}
    return [f for i in sorted(hits - skip) if (f := M.classify_line(lines[i], rules)) is not None]


def as_lines(texts: list[str], streams: list[str | None]) -> list[LogLine]:
    return [LogLine(i, t, streams[i % len(streams)]) for i, t in enumerate(texts)]


def test_scan_equals_reference_on_every_corpus_log() -> None:
    for name, text in CORPUS.items():
        lines = split_log(text)
        code: set[int] = set()
        parse_tracebacks(lines, code)
        assert M.scan_markers(lines, code) == reference_scan(lines, code), name


words = st.sampled_from([*M.TRIGGERS, *NEEDLES, "Errno 5", "Errno 28", "Errno 12", "Signal 11", "exitcode: -9",
                         "frame #", "loss", "step", "Rank ", " ", ": ", "(", ")", "[", "]"])
digits = st.integers(0, 99999).map(str)
fragments = st.one_of(words, digits, st.text(alphabet="abcdefgINFOXid:-_ 0123456789", max_size=8))
made_up = st.lists(fragments, max_size=8).map("".join)
texts = st.lists(st.one_of(made_up, st.sampled_from(CORPUS_LINES)), max_size=60)


@SETTINGS
@given(base=texts, repeat=st.integers(1, 4), streams=st.lists(st.sampled_from([None, "rank0", "rank7"]), min_size=1, max_size=3))
def test_scan_equals_reference_on_drawn_lines(base: list[str], repeat: int, streams: list[str | None]) -> None:
    lines = as_lines(base * repeat, streams)  # repeats: the per-text memo must keep each line's own place
    skip = set(range(0, len(lines), 5))
    assert M.scan_markers(lines, skip) == reference_scan(lines, skip)


def test_scan_equals_reference_with_user_rules_and_newlines() -> None:
    rules = (*user_rules([{"pattern": r"^custom failure \d+$", "category": "code_bug"}]), *BUILTIN)
    texts_ = ["custom failure 12", "ok", "two\nlines with NCCL error", "Errno 5 here", "frame #3: NCCL error"]
    lines = as_lines(texts_ * 3, [None])
    assert M.scan_markers(lines, set(), rules) == reference_scan(lines, set(), rules)
