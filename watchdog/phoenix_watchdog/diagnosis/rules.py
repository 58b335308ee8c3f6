"""Rules as data: regex -> category, strength and signature key, each with real example lines.

The table shipped with the package (`rulebook.BUILTIN`) is and consulted before the built-in rules of `classify`
(exception messages) and `markers` (log lines), so a specific message (``/dev/shm`` full) is named
before a generic one (a full disk) claims it. Users add rules of their own in ``phoenix.yaml``
(``rules:``; see `phoenix_sidecar.config.schema`): theirs are consulted first of all.

A rule says what goes into the signature with ``key``:

- ``"kind"``: the rule's ``kind`` (default: its name) only: every match is the same failure (an OOM,
  a timeout). Where a built-in rule names the same failure the two share the kind;
- ``"match"``: the matched text, normalised (``cudaErrorIllegalAddress`` vs ``...MisalignedAddress``);
- ``"message"``: the whole line or exception message, normalised.

``examples`` are lines the rule must match (a test runs every one), written in each tool's own
format; ``needles`` are literal substrings one of which any match contains: the log scan looks for
those first, so a rule costs nothing on lines that cannot match it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from phoenix_watchdog.diagnosis.categories import Category
from phoenix_watchdog.diagnosis.signature import normalise

KEYS = ("kind", "match", "message")
# Strengths (see `classify`): the same scale as the built-in rules.
HARDWARE, DISK, LINE, NCCL_TIMEOUT, USER, NATIVE_CRASH, KILLED = 90, 80, 60, 42, 75, 50, 30


@dataclass(frozen=True)
class Rule:
    """One pattern and what a match means. ``action`` (user rules only) overrides the category's action."""

    name: str
    pattern: str
    category: Category
    strength: int = LINE
    key: str = "kind"
    examples: tuple[str, ...] = ()
    needles: tuple[str, ...] = ()
    action: str | None = None
    source: str = "builtin"   # "builtin", or where a user rule came from ("phoenix.yaml rules[2]")
    kind: str = ""            # the signature key of a "kind" rule (default: its name), shared with built-in rules
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.key not in KEYS:
            raise ValueError(f"rule {self.name}: key must be one of {', '.join(KEYS)}, not {self.key!r}")
        object.__setattr__(self, "regex", re.compile(self.pattern))

    def signature_key(self, m: re.Match[str], text: str) -> str:
        if self.key == "match":
            return f"{self.name}:{normalise(m.group(0))}"
        if self.key == "message":
            return f"{self.name}:{normalise(text)}"
        return self.kind or self.name

    def describe(self) -> str:
        return f"rule {self.name} ({self.source}): /{self.pattern}/ -> {self.category}"


def match_line(rules: tuple[Rule, ...], text: str) -> tuple[Rule, re.Match[str]] | None:
    """The first rule that matches ``text`` (a log line or an exception's text), with its match."""
    gate = _gate(rules)
    if gate is not None and gate.search(text) is None:
        return None  # no needle of any rule here, and every rule names needles
    for rule in rules:
        if rule.needles and not any(n in text for n in rule.needles):
            continue
        if m := rule.regex.search(text):
            return rule, m
    return None


def _gate(rules: tuple[Rule, ...]) -> re.Pattern[str] | None:
    """One regex for all the rules' needles; None when some rule has none (it must always be tried)."""
    global _last_gate
    last = _last_gate  # a log scan passes the same tuple for every line: hashing its rules each time costs
    if last[0] is not rules:
        _last_gate = last = (rules, _gate_of(rules))
    return last[1]


_last_gate: tuple[tuple[Rule, ...] | None, re.Pattern[str] | None] = (None, None)


@functools.lru_cache(maxsize=8)
def _gate_of(rules: tuple[Rule, ...]) -> re.Pattern[str] | None:
    if any(not r.needles for r in rules):
        return None
    return trie_regex(tuple(dict.fromkeys(n for r in rules for n in r.needles)))


def trie_regex(words: tuple[str, ...]) -> re.Pattern[str]:
    """One regex matching any of ``words``, factored as a trie so each position costs one branch."""
    trie: dict = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        if "" in node:  # a word ends here: whatever follows, the shorter match suffices
            return ""
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items())]
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return re.compile(build(trie))



def user_rules(raw: object, actions: Iterable[str] | None = None, where: str = "rules") -> tuple[Rule, ...]:
    """The user's rules from their configuration (a list of mappings), validated.

    Each entry: ``pattern`` (a regex, required), ``category`` (required), and optionally ``action``
    (one of ``actions``), ``name``, ``key`` (kind / match / message; default match), ``strength``
    (default `USER`: above an exception that ended the run, below a full disk and hardware) and
    ``examples`` (lines the pattern must match: checked here). Raises ValueError naming the entry.
    """
    if raw is None or raw == []:
        return ()
    if not isinstance(raw, list):
        raise ValueError(f"{where}: expected a list of rules ({{pattern: ..., category: ...}}), got {type(raw).__name__}")
    allowed = {"pattern", "category", "action", "name", "key", "strength", "examples"}
    out = []
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{at}: expected a mapping with pattern and category, got {entry!r}")
        if unknown := sorted(set(entry) - allowed):
            raise ValueError(f"{at}: unknown field {unknown[0]!r}; fields: {', '.join(sorted(allowed))}")
        pattern, category = entry.get("pattern"), entry.get("category")
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"{at}: pattern must be a non-empty regular expression")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{at}: pattern {pattern!r} is not a valid regular expression: {exc}") from None
        if category not in {c.value for c in Category}:
            raise ValueError(f"{at}: unknown category {category!r}; categories: {', '.join(c.value for c in Category)}")
        action = entry.get("action")
        if action is not None and actions is not None and action not in set(actions):
            raise ValueError(f"{at}: unknown action {action!r}; actions: {', '.join(actions)}")
        key = entry.get("key", "match")
        if key not in KEYS:
            raise ValueError(f"{at}: key must be one of {', '.join(KEYS)}, got {key!r}")
        strength = entry.get("strength", USER)
        if isinstance(strength, bool) or not isinstance(strength, int) or not 0 < strength < 100:
            raise ValueError(f"{at}: strength must be an integer 1-99, got {strength!r}")
        examples = entry.get("examples", [])
        if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
            raise ValueError(f"{at}: examples must be a list of log lines")
        rule = Rule(str(entry.get("name") or f"user{i}"), pattern, Category(category), strength, key,
                    tuple(examples), (), str(action) if action is not None else None, f"phoenix.yaml {at}")
        if bad := [e for e in examples if not rule.regex.search(e)]:
            raise ValueError(f"{at}: pattern does not match its example {bad[0]!r}")
        out.append(rule)
    return tuple(out)
