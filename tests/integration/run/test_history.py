"""`phoenix history` lists every incident (crashes, hangs, safety stops, with the decision) beside
the repairs, with full signatures, in aligned columns, and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.supervise.state import Incident, StateStore
from testkit import run_phoenix

SIGNATURE = "segfault-0123456789abcdef0123"


def workspace_with_incidents(ws: Path) -> None:
    store = StateStore(StatePaths(ws).ensure().state)
    state = store.load()
    for incident in (
        Incident(id=1, kind="crash", opened_at=1_764_870_000.0, run=1, run_seconds=12.0, exit="exit code 139 (SIGSEGV)",
                 category="segfault", signature=SIGNATURE, summary="Fatal Python error", action="restart"),
        Incident(id=2, kind="hang", opened_at=1_764_870_600.0, run=2, run_seconds=900.0, exit="exit code 143",
                 category="hang", signature="hang-ffff", summary="no output for 900 s", action="repair",
                 repair={"id": "20251204T180000-000001", "outcome": "verify_failed", "reason": "", "files": []}),
        Incident(id=3, kind="safety", opened_at=1_764_871_200.0, run=3, run_seconds=5.0, exit="exit code 143",
                 category="gpu_temperature", signature="safety-gpu_temperature", summary="GPU 0 at 96 °C",
                 action="wait"),
    ):
        state.add_incident(incident)
    store.save(state)


def test_history_lists_every_incident_with_its_full_signature_aligned(tmp_path: Path) -> None:
    workspace_with_incidents(tmp_path)
    result = run_phoenix(["history", "-w", str(tmp_path)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0].split() == ["TIME", "KIND", "ID", "CATEGORY", "WHAT", "SIGNATURE", "DETAIL"]
    assert [line.split()[1] for line in lines[1:]] == ["crash", "hang", "safety"]
    assert SIGNATURE in lines[1]  # whole, not cut
    assert "repair -> repair verify_failed" in lines[2] and "wait" in lines[3]
    for column in ("KIND", "CATEGORY", "SIGNATURE", "DETAIL"):  # every row's column starts where its title does
        start = lines[0].index(column)
        assert all(line[start - 2:start] == "  " and line[start] != " " for line in lines[1:]), column


def test_history_json_has_every_incident_and_repairs_only_on_request(tmp_path: Path) -> None:
    workspace_with_incidents(tmp_path)
    rows = json.loads(run_phoenix(["history", "--json", "-w", str(tmp_path)], cwd=tmp_path).stdout)
    assert [(r["kind"], r["id"], r["action"]) for r in rows] == [("crash", 1, "restart"), ("hang", 2, "repair"),
                                                                 ("safety", 3, "wait")]
    assert rows[0]["signature"] == SIGNATURE and rows[0]["time"].startswith("2025-12-04T")
    assert json.loads(run_phoenix(["history", "--json", "--repairs", "-w", str(tmp_path)], cwd=tmp_path).stdout) == []
    last = json.loads(run_phoenix(["history", "--json", "-n", "1", "-w", str(tmp_path)], cwd=tmp_path).stdout)
    assert [r["id"] for r in last] == [3]
