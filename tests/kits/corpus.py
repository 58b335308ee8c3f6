"""The diagnosis corpus's expected results, read from every ``expected*.yaml`` in its directory.

The corpus grows by framework, each part with its own generator and its own file of expectations
(``expected.yaml`` for PyTorch and the hand-built logs, ``expected_<part>.yaml`` for others); this
merges them into one spec with the shape of a single file: ``cases`` (a case name may appear in
one file only), ``same_signature`` and ``different_signature`` (the groups of every file; a group
may name cases of any file). Used by the corpus tests and by ``scripts/diagnosis_report.py``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

LOGS = Path(__file__).resolve().parents[1] / "data" / "logs"


def load_spec(logs: Path = LOGS) -> dict:
    """Every expectation file of the corpus at ``logs``, merged; a case named twice is an error."""
    cases: dict[str, dict] = {}
    same: list[list[str]] = []
    different: list[list[str]] = []
    files = sorted(logs.glob("expected*.yaml"))
    if not files:
        raise FileNotFoundError(f"no expected*.yaml in {logs}")
    for path in files:
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, case in (spec.get("cases") or {}).items():
            if name in cases:
                raise ValueError(f"{path.name}: case {name!r} is already defined in another expected*.yaml")
            cases[name] = case
        same += spec.get("same_signature") or []
        different += spec.get("different_signature") or []
    for group in same + different:
        unknown = [n for n in group if n not in cases]
        if unknown:
            raise ValueError(f"signature group {group} names cases no expected*.yaml defines: {unknown}")
    return {"cases": cases, "same_signature": same, "different_signature": different}
