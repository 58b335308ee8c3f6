"""Every alert links its runbook entry, and the entry exists: the rule applies to every alert,
including ones added later (`scripts/runbook_urls.py` writes the links; `--check` must be clean)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "deploy" / "prometheus" / "rules" / "phoenix.rules.yml"
RUNBOOK = REPO / "docs" / "observability.md"
sys.path.insert(0, str(REPO / "scripts"))

import runbook_urls  # noqa: E402


def alerts() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def anchors() -> set[str]:
    """GitHub's anchors of the runbook's headings (lower case, spaces to hyphens, punctuation dropped)."""
    text = RUNBOOK.read_text(encoding="utf-8")
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_every_alert_links_an_existing_runbook_section() -> None:
    known = anchors()
    assert alerts()
    for alert in alerts():
        link = alert.get("annotations", {}).get("runbook_url", "")
        path, _, anchor = link.partition("#")
        assert path.endswith("docs/observability.md"), f"{alert['alert']}: runbook_url {link!r}"
        assert anchor == alert["alert"].lower(), f"{alert['alert']}: runbook_url {link!r}"
        assert anchor in known, f"{alert['alert']}: docs/observability.md has no section '### {alert['alert']}'"


def test_the_rules_and_the_promtool_expectations_are_as_the_script_writes_them() -> None:
    for path, fix in [(RULES, runbook_urls.fix_rules),
                      *((p, runbook_urls.fix_tests) for p in sorted(runbook_urls.TESTS.glob("*.test.yml")))]:
        text = path.read_text(encoding="utf-8")
        assert fix(text, runbook_urls.DEFAULT_BASE) == text, f"run: python scripts/runbook_urls.py ({path.name})"


def test_the_script_adds_a_link_to_a_new_alert_and_its_expectations() -> None:
    rules = "groups:\n  - name: g\n    rules:\n      - alert: PhoenixNew\n        expr: vector(1)\n        annotations:\n          summary: s\n"
    fixed = runbook_urls.fix_rules(rules, "B")
    assert '        annotations:\n          runbook_url: "B#phoenixnew"\n          summary: s\n' in fixed
    assert runbook_urls.fix_rules(fixed, "B") == fixed
    tests = ("      - eval_time: 1m\n        alertname: PhoenixNew\n        exp_alerts:\n          - exp_labels: {}\n"
             "            exp_annotations:\n              summary: s\n")
    assert '            exp_annotations:\n              runbook_url: "B#phoenixnew"\n' in runbook_urls.fix_tests(tests, "B")
