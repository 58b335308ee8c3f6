"""Gives every Phoenix alert a ``runbook_url`` (its section of docs/observability.md's runbook), in the
rules file and in the expected annotations of the promtool tests. Re-run it after adding or
merging an alert; ``--check`` only says whether a file would change (a test runs it).

    python scripts/runbook_urls.py [--check] [--base URL]

The default base is the repository path ``docs/observability.md``; to make the links clickable in
your Alertmanager, point ``--base`` at your copy of that file (``https://git.example/phoenix/blob/
main/docs/observability.md``). The anchor of an alert is its name in lower case, as GitHub and
GitLab make it from the runbook's ``### PhoenixDown`` heading.

Text is edited line by line (no YAML round trip), so comments and layout stay as they are.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "deploy" / "prometheus" / "rules" / "phoenix.rules.yml"
TESTS = REPO / "deploy" / "prometheus" / "tests"
DEFAULT_BASE = "docs/observability.md"
ALERT = re.compile(r"^\s*- alert:\s*(\S+)\s*$")
ALERTNAME = re.compile(r"^\s*(?:- )?alertname:\s*(\S+)\s*$")
RUNBOOK = re.compile(r"^\s*runbook_url:")


def url(base: str, alert: str) -> str:
    return f"{base}#{alert.lower()}"


def _insert_after(lines: list[str], where: int, key_line: str, base: str, alert: str) -> None:
    """Put (or replace) the runbook_url line right after the line ``where`` (an ``annotations:`` key)."""
    indent = len(key_line) - len(key_line.lstrip()) + 2
    line = " " * indent + f'runbook_url: "{url(base, alert)}"\n'
    if where + 1 < len(lines) and RUNBOOK.match(lines[where + 1]):
        lines[where + 1] = line
    else:
        lines.insert(where + 1, line)


def fix_rules(text: str, base: str) -> str:
    lines = text.splitlines(keepends=True)
    alert, i = None, 0
    while i < len(lines):
        if m := ALERT.match(lines[i]):
            alert = m.group(1)
        elif alert and lines[i].strip() == "annotations:":
            _insert_after(lines, i, lines[i], base, alert)
            alert = None
        i += 1
    return "".join(lines)


def fix_tests(text: str, base: str) -> str:
    lines = text.splitlines(keepends=True)
    alert, i = None, 0
    while i < len(lines):
        if m := ALERTNAME.match(lines[i]):
            alert = m.group(1)
        elif alert and lines[i].strip() == "exp_annotations:":
            _insert_after(lines, i, lines[i], base, alert)
        i += 1
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")
    parser.add_argument("--base", default=DEFAULT_BASE, help=f"the runbook's address (default {DEFAULT_BASE})")
    args = parser.parse_args(argv)
    stale = []
    for path, fix in [(RULES, fix_rules), *((p, fix_tests) for p in sorted(TESTS.glob("*.test.yml")))]:
        text = path.read_text(encoding="utf-8")
        new = fix(text, args.base)
        if new != text:
            stale.append(path.relative_to(REPO))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for path in stale:
        print(f"{'would change' if args.check else 'changed'}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
