"""The documented vocabularies match their owners' enums: the README's action table, the metric label lists."""

from __future__ import annotations

import re

from phoenix_sidecar.config.schema import DEFAULT_ACTIONS, Action
from phoenix_sidecar.repair import Outcome, RejectReason
from phoenix_sidecar.supervise.policy import GiveUpReason
from phoenix_sidecar.supervise.triage import TriageResult
from phoenix_watchdog.diagnosis.categories import Category
from testkit import REPO

README = (REPO / "README.md").read_text()
OBSERVABILITY = (REPO / "docs" / "observability.md").read_text()


def _label_list(metric: str, label: str) -> list[str]:
    """The ``label ∈ a, b, c`` list in the docs' row of ``metric``."""
    row = next(line for line in OBSERVABILITY.splitlines() if line.startswith(f"| `{metric}`"))
    listed = re.search(rf"`{label}` ∈ ([^|(]+)", row)
    assert listed, row
    return [w.strip() for w in listed.group(1).split(",") if w.strip() and w.strip() != "…"]


def test_the_readme_action_table_is_the_default_actions_table() -> None:
    rows = {"repair": Action.REPAIR, "restart as is, with backoff": Action.RESTART, "stop and alert": Action.STOP}
    documented = {}
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] in rows:
            for name in re.findall(r"`([a-z_]+)`", cells[1]):
                documented[name] = rows[cells[0]]
    assert documented == dict(DEFAULT_ACTIONS)
    assert set(documented) == set(Category)


def test_the_metric_docs_list_every_give_up_reason_and_outcome() -> None:
    assert _label_list("phoenix_gave_up_total", "reason") == [r.value for r in GiveUpReason]
    assert _label_list("phoenix_repairs_total", "outcome") == [o.value for o in Outcome]
    assert _label_list("phoenix_triage_total", "result") == [r.value for r in TriageResult]
    assert _label_list("phoenix_decisions_total", "action")[:3] == [a.value for a in Action]
    assert set(_label_list("phoenix_patches_rejected_total", "reason")) <= set(RejectReason)
    assert "the 16 diagnosis categories" in OBSERVABILITY and len(Category) == 16
