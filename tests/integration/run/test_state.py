"""state.json: atomic writes, nothing lost on a full disk, a corrupt file set aside."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kits.tmpfs import tmpfs
from phoenix_sidecar.errors import StateError
from phoenix_sidecar.fsutil import atomic_write_text
from phoenix_sidecar.supervise.state import Incident, StateStore, SupervisorState


@pytest.fixture
def tiny_fs(tmp_path: Path):
    """A real 64 KiB tmpfs: writes past it fail with ENOSPC like a full disk."""
    with tmpfs(tmp_path / "tiny") as mount:
        yield mount


def test_round_trip(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    state = SupervisorState()
    state.budgets.total_restarts = 2
    state.add_incident(Incident(id=1, kind="crash", opened_at=1.0, run=1, run_seconds=2.0, exit="exit code 1",
                                category="code_bug", signature="code_bug-abc"))
    store.save(state)
    again = store.load()
    assert again.budgets.total_restarts == 2
    assert again.incidents[0].signature == "code_bug-abc"
    assert again.next_incident_id() == 2


def test_corrupt_state_is_set_aside_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"budgets": {"total_restarts": ')
    state = StateStore(path).load()
    assert state.budgets.total_restarts == 0
    aside = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == '{"budgets": {"total_restarts": '


def test_full_disk_keeps_the_old_state_whole(tiny_fs: Path) -> None:
    store = StateStore(tiny_fs / "state.json")
    state = SupervisorState()
    store.save(state)
    before = (tiny_fs / "state.json").read_bytes()
    for n in range(400):
        state.add_incident(Incident(id=n, kind="crash", opened_at=1.0, run=1, run_seconds=1.0,
                                    exit="exit code 1", summary="x" * 400))
    with pytest.raises(StateError, match=r"the disk is full .*free some space"):
        store.save(state)
    assert (tiny_fs / "state.json").read_bytes() == before
    assert json.loads(before)  # still valid JSON
    assert [p.name for p in tiny_fs.iterdir()] == ["state.json"]  # no temporary file left behind


def test_atomic_write_keeps_permissions_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "train.py"
    target.write_text("old")
    os.chmod(target, 0o750)
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert (target.stat().st_mode & 0o777) == 0o750
    assert [p.name for p in tmp_path.iterdir()] == ["train.py"]
