"""Attaching to a running container is not a run: a restarted sidecar that finds the run it last saw
keeps its number and its clock (the container's StartedAt); a run it never saw is counted."""

from __future__ import annotations

from pathlib import Path

from kits.supervise import build_rig, succeed
from phoenix_sidecar import events as ev


def started(rig) -> list[ev.JobStarted]:  # type: ignore[no-untyped-def]
    return [e for _, e in rig.timeline if isinstance(e, ev.JobStarted)]


def test_attaching_to_the_run_phoenix_last_saw_is_no_new_run(workspace: Path) -> None:
    first = build_rig(workspace, [succeed(seconds=100.0)])
    first.runtime.attach_to = 1_000.0  # the container was already running when the first Phoenix came
    first.supervisor.state.job.started_at = None
    first.supervisor._start(reason=None)
    assert first.supervisor.state.job.run == 1 and first.supervisor.state.job.started_at == 1_000.0
    # The sidecar is restarted (a new configuration); the trainer kept running: the same run.
    again = build_rig(workspace, [succeed(seconds=1.0)])
    again.runtime.attach_to = 1_000.0
    assert again.supervisor.run() == 0
    [event] = started(again)
    assert event.attached and event.run == 1 and event.started_at == 1_000.0
    assert again.supervisor.state.job.run == 1 and again.supervisor.state.budgets.total_restarts == 0


def test_attaching_to_a_run_started_meanwhile_counts_it(workspace: Path) -> None:
    first = build_rig(workspace, [succeed()])
    first.supervisor._start(reason=None)
    again = build_rig(workspace, [succeed()])
    again.runtime.attach_to = 5_000.0  # someone started the container while no Phoenix watched
    assert again.supervisor.run() == 0
    [event] = started(again)
    assert event.attached and event.run == 2 and again.supervisor.state.job.started_at == 5_000.0


def test_a_start_by_phoenix_is_a_new_run_timed_by_phoenix(workspace: Path) -> None:
    rig = build_rig(workspace, [succeed()])
    assert rig.supervisor.run() == 0
    [event] = started(rig)
    assert not event.attached and event.run == 1 and event.started_at == rig.supervisor.state.job.started_at


def test_stopping_a_hung_job_says_so_for_the_length_of_the_grace(workspace: Path) -> None:
    from kits.supervise import hang

    rig = build_rig(workspace, [hang(None), succeed()], kill_grace_seconds=30)
    assert rig.supervisor.run() == 0
    steps = rig.of(ev.StepProgress)
    assert [(s.step, s.done) for s in steps] == [("stop", False), ("stop", True)]
    assert steps[0].detail == "stopping the job: SIGTERM, SIGKILL after 30 s" and steps[0].limit_seconds == 30
