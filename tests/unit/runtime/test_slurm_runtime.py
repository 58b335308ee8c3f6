"""`SlurmRuntime` against a scripted Slurm: which commands it sends, and how it ends each run."""

from __future__ import annotations

from pathlib import Path

import pytest

import phoenix_sidecar.runtime.slurm.runtime as slurm_runtime
from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.errors import RuntimeUnavailable
from phoenix_sidecar.runtime.slurm.client import JobInfo, job_from_fields, parse_fields
from phoenix_sidecar.runtime.slurm.runtime import SlurmRuntime
from phoenix_watchdog.heartbeat import Heartbeat

BASE = ("JobId=5 JobName=train JobState=RUNNING Reason=None Restarts=0 ExitCode=0:0 "
        "StartTime=2026-12-04T10:00:00 EndTime=Unknown PreemptTime=None NodeList=n[1-2] NumTasks=2 "
        "StdOut={out} StdErr={out} WorkDir=/ws BatchHost=n1")


class ScriptedSlurm:
    """Answers `job` from a script of readings (the last one repeats); records every action."""

    def __init__(self, out: Path, readings: list[dict[str, str]]) -> None:
        self.out = out
        self.readings = readings
        self.actions: list[tuple[str, ...]] = []

    def find(self, ident: str) -> str:
        return "5"

    def job(self, job_id: str) -> JobInfo:
        if self.readings[0] == {"down": ""}:
            self.readings.pop(0)
            raise RuntimeUnavailable("scontrol -o show job: Unable to contact slurm controller")
        fields = parse_fields(BASE.format(out=self.out))
        fields.update(self.readings.pop(0) if len(self.readings) > 1 else self.readings[0])
        return job_from_fields(fields)

    def hostnames(self, hostlist: str) -> list[str]:
        return ["n1", "n2"] if hostlist else []

    def node_states(self, nodes: list[str]) -> dict[str, str]:
        return {n: "IDLE" for n in nodes}

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        if name in ("requeue_hold", "hold", "exclude", "release", "start_now", "signal_steps", "drain"):
            return lambda *args: self.actions.append((name, *map(str, args)))
        raise AttributeError(name)


def runtime(tmp_path: Path, readings: list[dict[str, str]]) -> tuple[SlurmRuntime, ScriptedSlurm]:
    out = tmp_path / "slurm-5.out"
    out.write_text("")
    slurm = ScriptedSlurm(out, readings)
    settings = Settings(workspace=str(tmp_path), slurm_job="train", slurm_poll_seconds=0.5)
    return SlurmRuntime(settings, Heartbeat(60.0), client=slurm), slurm  # type: ignore[arg-type]


FAILED = {"JobState": "FAILED", "ExitCode": "1:0", "EndTime": "2026-12-04T10:05:00"}


def test_attaches_to_a_running_job_and_requeues_it_after_a_failure_on_the_trusted_nodes(tmp_path: Path) -> None:
    rt, slurm = runtime(tmp_path, [{}, {}, FAILED])
    try:
        rt.start()
        assert slurm.actions == []  # attached, not restarted
        end = rt.wait(None)
        assert end is not None and end.exit.code == 1 and end.stopped_for is None
        assert end.ranks == {"rank0": "n1", "rank1": "n2"}
        slurm.readings[:] = [FAILED, {"JobState": "PENDING", "Reason": "job_requeued_in_held_state"}]
        rt.start()
        assert [a[0] for a in slurm.actions] == ["requeue_hold", "release", "start_now"]
    finally:
        rt.close()


def test_a_hardware_line_excludes_the_node_before_the_release(tmp_path: Path) -> None:
    rt, slurm = runtime(tmp_path, [{}, {}, FAILED])
    try:
        rt.start()
        with (tmp_path / "slurm-5.out").open("a") as f:
            f.write("1: NVRM: Xid (PCI:0000:3b:00): 79, pid=1, GPU has fallen off the bus.\n")
        end = rt.wait(None)
        assert end is not None and end.stopped_for == "engine:hardware:n2"
        assert slurm.actions[0][:2] == ("drain", "n2")
        slurm.readings[:] = [FAILED]
        rt.start()
        assert [a[0] for a in slurm.actions[1:]] == ["requeue_hold", "exclude", "release", "start_now"]
        assert slurm.actions[2] == ("exclude", "5", "['n2']") and rt.excluded == ["n2"]
    finally:
        rt.close()


def test_a_run_failed_at_launch_is_retried_a_few_times_then_counts(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slurm_runtime, "LAUNCH_RETRY_PAUSE", 0.0)
    instant = {**FAILED, "EndTime": "2026-12-04T10:00:00"}  # no time, no output
    rt, _ = runtime(tmp_path, [{}, instant])
    try:
        causes = []
        for _ in range(slurm_runtime.MAX_LAUNCH_FAILURES + 1):
            if not causes:
                rt.start()
            else:  # the next run, as a requeue would bring it
                rt._begin(rt._read())  # noqa: SLF001
            end = rt.wait(None)
            assert end is not None
            causes.append(end.stopped_for)
    finally:
        rt.close()
    assert causes == ["engine:launch_failed"] * slurm_runtime.MAX_LAUNCH_FAILURES + [None]


def test_a_job_cancelled_outside_phoenix_ends_supervision(tmp_path: Path) -> None:
    rt, _ = runtime(tmp_path, [{}, {"JobState": "CANCELLED", "ExitCode": "0:15"}])
    try:
        rt.start()
        with pytest.raises(RuntimeUnavailable, match="cancelled outside Phoenix"):
            rt.wait(None)
    finally:
        rt.close()


def test_a_controller_outage_pauses_the_heartbeat_and_the_run_goes_on(tmp_path: Path) -> None:
    rt, _ = runtime(tmp_path, [{}, {"down": ""}, {}, FAILED])
    heartbeat = rt._heartbeat  # noqa: SLF001
    try:
        rt.start()
        assert rt.wait(0) is None  # the controller is away: no end, no error
        assert heartbeat.paused
        end = rt.wait(None)
        assert end is not None and end.exit.code == 1
        assert not heartbeat.paused
    finally:
        rt.close()


def test_a_job_that_completed_before_phoenix_watched_is_not_run_again(tmp_path: Path) -> None:
    rt, slurm = runtime(tmp_path, [{"JobState": "COMPLETED", "EndTime": "2026-12-04T10:05:00"}])
    try:
        rt.start()
        end = rt.wait(None)
    finally:
        rt.close()
    assert end is not None and end.exit.succeeded and slurm.actions == []


def test_the_engine_view_counts_only_real_requeues_and_names_the_run_nodes(tmp_path: Path) -> None:
    rt, slurm = runtime(tmp_path, [{"JobState": "PENDING", "Reason": "Priority", "NodeList": "(null)"}])
    try:
        rt.start()  # a queued job is only started now: no requeue
        assert [a[0] for a in slurm.actions] == ["start_now"]
        job = rt.engine_job()
        assert job is not None and (job.state, job.nodes, job.requeues) == ("PENDING", (), 0)
        slurm.readings[:] = [{}, FAILED]
        end = rt.wait(None)  # the run starts on n1, n2, and fails
        assert end is not None and end.exit.code == 1
        job = rt.engine_job()
        assert job is not None and job.nodes == ("n1", "n2") and job.engine == "slurm"
        slurm.readings[:] = [FAILED, {"JobState": "PENDING", "Reason": "job_requeued_in_held_state"}]
        rt.start()
        assert rt.engine_job().requeues == 1  # type: ignore[union-attr]
    finally:
        rt.close()
