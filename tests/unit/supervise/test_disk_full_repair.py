"""A full disk during a repair is not the failure's fault: the attempt is given back and Phoenix
stops with exit 7 (state not writable), so the next start, once space is freed, still has it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kits.supervise import ScriptedRepair, build_rig, crash, succeed
from phoenix_sidecar.errors import GaveUp, StateError
from phoenix_sidecar.repair.model import RepairOutcome
from phoenix_sidecar.repair.outcomes import Outcome


def _code_bug(ws: Path) -> str:
    (ws / "train.py").write_text("import torch\n\nx = model(batch)\n")
    return (f'Traceback (most recent call last):\n  File "{ws / "train.py"}", line 3, in <module>\n'
            f"    x = model(batch)\nNameError: name 'model' is not defined\n")


def test_a_full_disk_during_the_repair_is_not_charged_to_the_budget(workspace: Path) -> None:
    full = RepairOutcome("r1", Outcome.ERROR, "promotion failed: cannot write outcome.json: the disk is full",
                         disk_full=True)
    rig = build_rig(workspace, [crash(_code_bug(workspace))], repair=ScriptedRepair([full]), max_retries=1)
    with pytest.raises(StateError, match="full disk.*not counted"):
        rig.supervisor.run()
    (incident,) = rig.supervisor.state.incidents
    assert rig.supervisor.state.budgets.attempts(incident.signature) == 0

    # The next start (space freed) still has its one attempt: it repairs instead of giving up.
    again = build_rig(workspace, [crash(_code_bug(workspace)), succeed()], repair=ScriptedRepair(["promoted"]),
                      max_retries=1)
    assert again.supervisor.run() == 0


def test_an_ordinary_repair_error_is_still_charged(workspace: Path) -> None:
    error = RepairOutcome("r1", Outcome.ERROR, "git failed")
    rig = build_rig(workspace, [crash(_code_bug(workspace))], repair=ScriptedRepair([error]), max_retries=1)
    with pytest.raises(GaveUp):
        rig.supervisor.run()
    (incident,) = rig.supervisor.state.incidents
    assert rig.supervisor.state.budgets.attempts(incident.signature) == 1
