"""JobState's transition table, checked move by move, and the job state as state.json saves and loads it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from kits.supervise import build_rig
from phoenix_sidecar.errors import PhoenixError
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.supervise.state import (
    TRANSITIONS,
    IllegalTransition,
    Incident,
    JobState,
    StateStore,
    SupervisorState,
    check_transition,
    read_state,
)

S = JobState
ENDS = {S.SUCCEEDED, S.GAVE_UP, S.INTERRUPTED}
ALLOWED = [(a, b) for a, targets in TRANSITIONS.items() for b in sorted(targets)]
FORBIDDEN = [(a, b) for a in TRANSITIONS for b in JobState if b not in TRANSITIONS[a]]


def _name(pair: tuple[JobState | None, JobState]) -> str:
    return f"{pair[0].value if pair[0] else 'session-start'}->{pair[1].value}"


@pytest.mark.parametrize("move", ALLOWED, ids=_name)
def test_every_listed_move_is_allowed(move: tuple[JobState | None, JobState]) -> None:
    assert check_transition(*move) is move[1]


@pytest.mark.parametrize("move", FORBIDDEN, ids=_name)
def test_every_other_move_fails_loudly(move: tuple[JobState | None, JobState]) -> None:
    with pytest.raises(IllegalTransition, match="illegal job state transition") as info:
        check_transition(*move)
    assert (info.value.current, info.value.new) == move


def test_the_table_covers_every_state_and_its_shape_holds() -> None:
    assert set(TRANSITIONS) == {None, *JobState}
    assert TRANSITIONS[None] == {S.STARTING}  # a session always begins by starting the job
    assert all(not TRANSITIONS[s] for s in ENDS)  # the ends of a session are final
    assert all(TRANSITIONS[s] for s in set(JobState) - ENDS)  # nothing else is a dead end
    assert all(S.INTERRUPTED in TRANSITIONS[s] for s in (S.RUNNING, S.STOPPING, S.BACKOFF, S.SAFETY_STOP))
    reachable, todo = set(), [None]
    while todo:
        for nxt in TRANSITIONS[todo.pop()] - reachable:
            reachable.add(nxt)
            todo.append(nxt)
    assert reachable == set(JobState)


def test_an_illegal_move_is_an_internal_error_not_a_phoenix_error() -> None:
    # The CLI maps PhoenixError to user-facing exit codes; anything else is reported as a bug (70).
    assert not issubclass(IllegalTransition, PhoenixError)
    with pytest.raises(IllegalTransition, match=r"\(session start\) -> running"):
        check_transition(None, S.RUNNING)


def test_the_supervisor_checks_its_moves_from_the_start_of_its_session(workspace: Path) -> None:
    last = SupervisorState()
    last.job.state = S.GAVE_UP  # the last session gave up; this one may start the job again
    StateStore(StatePaths(workspace).ensure().state).save(last)
    rig = build_rig(workspace, [])
    assert rig.supervisor.state.job.state is S.GAVE_UP
    with pytest.raises(IllegalTransition, match=r"\(session start\) -> succeeded"):
        rig.supervisor._set_state(S.SUCCEEDED)  # a session's first move must be STARTING
    rig.supervisor._set_state(S.STARTING)
    with pytest.raises(IllegalTransition, match="starting -> backoff"):
        rig.supervisor._set_state(S.BACKOFF)


def test_the_state_is_saved_as_its_plain_value_and_loaded_as_the_enum(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    state = SupervisorState()
    state.job.state = S.GAVE_UP
    store.save(state)
    assert json.loads((tmp_path / "state.json").read_text())["job"]["state"] == "gave_up"
    assert store.load().job.state is S.GAVE_UP
    assert f"{S.SAFETY_STOP}" == "safety_stop" and S.RUNNING == "running"  # a StrEnum: labels, text, JSON


def test_an_unknown_saved_state_loads_as_unknown_and_keeps_the_budgets(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({
        "version": 1, "budgets": {"total_restarts": 4, "failures_in_a_row": 1},
        "incidents": [{"id": 7, "kind": "crash", "opened_at": 1.0, "run": 3, "run_seconds": 2.0, "exit": "exit code 1"}],
        "job": {"state": "draining", "target": "pid 42", "run": 3}}))
    with caplog.at_level(logging.WARNING):
        state = StateStore(path).load()
    assert state.job.state is None and state.job.target == "pid 42"
    assert state.budgets.total_restarts == 4 and state.next_incident_id() == 8
    assert "'draining'" in caplog.text and "another version" in caplog.text
    assert state.current_incident is not None and state.current_incident.id == 7  # status still shows it
    assert list(tmp_path.iterdir()) == [path]  # not mistaken for a corrupt file
    assert read_state(path) is not None


def test_a_newer_phoenix_state_is_read_as_far_as_this_one_understands_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.json"
    newer = SupervisorState()
    newer.budgets.total_restarts = 3
    newer.add_incident(Incident(id=1, kind="crash", opened_at=1.0, run=1, run_seconds=2.0, exit="exit code 1"))
    data = newer.to_json()
    data["version"] = 99
    data["incidents"][0]["progress"] = {"step": 1200}  # fields a later version added
    data["job"]["state"] = "backoff"
    data["job"]["eta"] = 30
    path.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        state = StateStore(path).load()
    assert "version 99" in caplog.text
    assert state.budgets.total_restarts == 3 and state.incidents[0].id == 1 and state.job.state is S.BACKOFF
    assert list(tmp_path.iterdir()) == [path]


def test_a_malformed_record_is_still_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"incidents": ["not an object"], "budgets": {"total_restarts": 5}}))
    assert StateStore(path).load().budgets.total_restarts == 0
    assert len(list(tmp_path.glob("state.json.corrupt-*"))) == 1
