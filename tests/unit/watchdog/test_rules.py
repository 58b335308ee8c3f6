"""The rule table: every shipped rule matches its own examples; user rules are validated and win.

The loader test here checks the ``rules:`` setting end to end (phoenix.yaml -> Settings -> the
diagnosis), since the validation it runs is the diagnosis's own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoenix_sidecar.config.loader import load
from phoenix_sidecar.config.schema import ACTIONS
from phoenix_sidecar.errors import ConfigError
from phoenix_watchdog.diagnosis import ExitStatus, diagnose, explain, user_rules
from phoenix_watchdog.diagnosis.logtext import LogLine
from phoenix_watchdog.diagnosis.markers import classify_line
from phoenix_watchdog.diagnosis.rulebook import BUILTIN
from phoenix_watchdog.diagnosis.rules import match_line

EXAMPLES = [(rule, ex) for rule in BUILTIN for ex in rule.examples]


def test_every_shipped_rule_has_examples_and_needles() -> None:
    assert all(rule.examples and rule.needles for rule in BUILTIN)
    assert len({rule.name for rule in BUILTIN}) == len(BUILTIN)


@pytest.mark.parametrize(("rule", "example"), EXAMPLES, ids=[f"{r.name}-{i}" for i, (r, _) in enumerate(EXAMPLES)])
def test_a_rule_decides_its_own_examples(rule, example: str) -> None:
    assert any(n in example for n in rule.needles), "the scan would never look at this line"
    found = match_line(BUILTIN, example)
    assert found is not None and found[0] is rule
    f = classify_line(LogLine(0, example, None))
    assert f is not None and f.category == rule.category and rule.name in f.rule


def test_a_user_rule_decides_before_the_shipped_ones_and_names_its_action() -> None:
    rules = user_rules([{"pattern": r"ShardChecksumError: shard \d+", "category": "unknown", "action": "restart",
                         "examples": ["ShardChecksumError: shard 7 is corrupt"]}], ACTIONS)
    log = "step 1\nShardChecksumError: shard 7 is corrupt\n"
    assert diagnose(log, ExitStatus(code=1)).category == "code_bug"
    d = diagnose(log, ExitStatus(code=1), rules=rules)
    assert (d.category, d.action) == ("unknown", "restart")
    assert d.decided_by and "rules[0]" in d.decided_by
    assert "rules[0]" in "\n".join(explain(log, ExitStatus(code=1), rules=rules))


def test_a_user_rule_reads_exceptions_in_tracebacks_too() -> None:
    rules = user_rules([{"pattern": "QuotaExceeded", "category": "disk_full"}], ACTIONS)
    log = 'Traceback (most recent call last):\n  File "/w/t.py", line 3, in save\nstore.QuotaExceeded: bucket full\n'
    assert diagnose(log, ExitStatus(code=1), workspace="/w", rules=rules).category == "disk_full"


@pytest.mark.parametrize(("raw", "words"), [
    ({"pattern": "x"}, "rules: expected a list"),
    ([{"category": "unknown"}], "rules[0]: pattern"),
    ([{"pattern": "(unclosed", "category": "unknown"}], "not a valid regular expression"),
    ([{"pattern": "x", "category": "gremlins"}], "unknown category 'gremlins'"),
    ([{"pattern": "x", "category": "unknown", "action": "pray"}], "unknown action 'pray'"),
    ([{"pattern": "x", "category": "unknown", "colour": "red"}], "unknown field 'colour'"),
    ([{"pattern": "abc", "category": "unknown", "examples": ["xyz"]}], "does not match its example 'xyz'"),
    ([{"pattern": "x", "category": "unknown", "strength": 500}], "strength must be"),
])
def test_bad_user_rules_are_refused_with_a_clear_message(raw: object, words: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        user_rules(raw, ACTIONS)
    assert words in str(info.value)


def test_the_loader_validates_rules_in_phoenix_yaml(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("rules:\n  - pattern: 'bucket full'\n    category: disk_full\n    action: stop\n")
    settings = load(config_file=str(good), environ={}, cwd=str(tmp_path)).settings
    assert user_rules(settings.rules, ACTIONS)[0].action == "stop"
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - pattern: 'bucket full'\n    category: full_bucket\n")
    with pytest.raises(ConfigError) as info:
        load(config_file=str(bad), environ={}, cwd=str(tmp_path))
    assert "rules" in str(info.value) and "full_bucket" in str(info.value)
