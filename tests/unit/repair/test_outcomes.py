"""The repair wing's reason codes: every rule refuses with its own reason, and every reason raised is a known one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from phoenix_sidecar.errors import AnswerRejected
from phoenix_sidecar.repair import RejectReason
from phoenix_sidecar.repair.safety import PathPolicy
from testkit import REPO

REPAIR = REPO / "sidecar" / "phoenix_sidecar" / "repair"


def _workspace(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "model.py").write_text("x = 1\n")
    (tmp_path / "notes.md").write_text("notes\n")
    return tmp_path


def test_outside_the_allowlist_and_not_shown_are_two_reasons(tmp_path: Path) -> None:
    policy = PathPolicy(_workspace(tmp_path), ["*.py"]).narrowed(["train.py"])
    with pytest.raises(AnswerRejected) as outside:
        policy.check("notes.md")
    with pytest.raises(AnswerRejected) as unshown:
        policy.check("model.py")
    assert outside.value.reason == RejectReason.ALLOWLIST
    assert unshown.value.reason == RejectReason.NOT_SHOWN
    assert policy.check("train.py").rel == "train.py"


def _raised_reasons() -> list[tuple[str, ast.expr]]:
    """The first argument of every ``AnswerRejected(...)`` call in the repair wing."""
    found = []
    for path in REPAIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "AnswerRejected":
                found.append((f"{path.relative_to(REPO)}:{node.lineno}", node.args[0]))
    return found


def test_every_refusal_names_a_reject_reason_member() -> None:
    # A string literal would be a code nobody owns; a member is checked by Python and by this test.
    reasons = _raised_reasons()
    assert len(reasons) > 40
    loose = [where for where, arg in reasons if isinstance(arg, ast.Constant)]
    assert loose == []
    named = {arg.attr for _, arg in reasons
             if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id == "RejectReason"}
    assert named <= set(RejectReason.__members__)


def test_each_reason_is_raised_somewhere() -> None:
    # An unused reason is a documented label that can never appear.
    source = "\n".join(p.read_text() for p in REPAIR.rglob("*.py") if p.name != "outcomes.py")
    unused = [r.name for r in RejectReason if f"RejectReason.{r.name}" not in source]
    assert unused == []
