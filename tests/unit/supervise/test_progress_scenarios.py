"""Progress-aware supervision in whole scenarios on the fake clock: hangs that still print, busy GPUs
(read through the real NVML reader on the NVML fake), restarts that go nowhere, GPU memory reclaim,
and losses that diverge."""

from __future__ import annotations

from pathlib import Path

import pytest

from kits.fakenvml import GIB, FakeGpu, FakeNvml
from kits.supervise import FakeClock, Script, ScriptedGates, build_rig, crash, hang, succeed
from phoenix_sidecar import events as ev
from phoenix_sidecar.errors import GaveUp
from phoenix_sidecar.supervise.policy import GiveUpReason
from phoenix_watchdog.diagnosis.failure import ExitStatus
from phoenix_watchdog.probes.gpu import NvmlReader


def steps(first: int, last: int, every: float, start: float = 0.5, loss: str = "1.5") -> tuple[tuple[float, bytes], ...]:
    return tuple((start + i * every, f"step {n} loss={loss}\n".encode()) for i, n in enumerate(range(first, last + 1)))


def nvml_gates(gpu: FakeGpu) -> ScriptedGates:
    gates = ScriptedGates()
    reader = NvmlReader(FakeNvml([gpu]))
    gates.snapshot = reader.read
    return gates


def test_a_hang_while_a_thread_keeps_printing_is_stopped_within_the_learned_timeout(workspace: Path) -> None:
    clock = FakeClock()
    chatter = tuple((20.0 + 0.5 * i, b"[W ProcessGroupNCCL] still waiting\n") for i in range(4000))
    rig = build_rig(workspace, [Script(exit=None, output=steps(1, 20, every=1.0) + chatter), succeed()],
                    clock=clock, progress_timeout_min_seconds=1, progress_warmup_steps=2, backoff_initial_seconds=0)
    assert rig.supervisor.run() == 0
    [hung_at] = rig.when(ev.HangDetected)
    assert hung_at <= 19.5 + 5 * 1.0 + 1.0  # the last step, then the safety factor x the interval, + one interval
    [hung] = rig.of(ev.HangDetected)
    assert "while the output continued" in hung.detail
    incident = rig.store.load().incidents[0]
    assert incident.kind == "hang" and incident.evidence and "no new step" in incident.evidence and incident.step == 20


def test_a_silent_job_on_a_busy_gpu_is_not_killed_until_the_gpu_goes_idle(workspace: Path) -> None:
    clock = FakeClock()
    gpu = FakeGpu(0, util_gpu=97)
    gates = nvml_gates(gpu)
    clock.at(1800.0, lambda: setattr(gpu, "util_gpu", 0))
    rig = build_rig(workspace, [hang(None, tail="saving checkpoint...\n"), succeed()], clock=clock, gates=gates,
                    heartbeat_min=10, busy_grace_min=60, backoff_initial_seconds=0)
    assert rig.supervisor.run() == 0
    [hung_at] = rig.when(ev.HangDetected)
    assert 1800.0 <= hung_at <= 1800.0 + rig.supervisor.tick_seconds  # not at 600 s: the GPU was working
    assert "until they went idle" in rig.of(ev.HangDetected)[0].detail


def test_a_silent_job_on_an_idle_gpu_is_killed_at_the_heartbeat(workspace: Path) -> None:
    rig = build_rig(workspace, [hang(None), succeed()], gates=nvml_gates(FakeGpu(0, util_gpu=3)),
                    heartbeat_min=10, busy_grace_min=60, backoff_initial_seconds=0)
    assert rig.supervisor.run() == 0
    assert rig.when(ev.HangDetected) == [600.0]


def test_a_job_that_crashes_at_the_same_step_stops_after_max_no_progress_restarts(workspace: Path) -> None:
    tail = "step 50 loss=1.2\nRuntimeError: CUDA error: an illegal memory access was encountered\n"
    run = Script(tail=tail, exit=ExitStatus(code=1), seconds=12.0, output=steps(40, 50, every=1.0))
    rig = build_rig(workspace, [run] * 5, max_retries=10, max_no_progress_restarts=3, backoff_initial_seconds=0,
                    actions={"cuda_illegal_access": "restart", "unknown": "restart"})
    with pytest.raises(GaveUp) as raised:
        rig.supervisor.run()
    assert rig.runtime.starts == 4  # the first run set the best step; three more went nowhere
    assert [g.reason for g in rig.of(ev.GaveUp)] == [GiveUpReason.NO_PROGRESS]
    summary = str(raised.value)
    assert "3 runs in a row ended without passing the best step" in summary and "best step 50" in summary


def test_a_run_that_passes_the_best_step_resets_the_count(workspace: Path) -> None:
    runs = [Script(tail="boom\n", exit=ExitStatus(code=1), seconds=12.0, output=steps(1 + 5 * k, 10 + 5 * k, 1.0))
            for k in range(5)] + [succeed()]
    rig = build_rig(workspace, runs, max_retries=10, max_no_progress_restarts=2, backoff_initial_seconds=0)
    assert rig.supervisor.run() == 0
    assert rig.store.load().progress.best_step == 30


def test_a_restart_waits_for_the_gpu_memory_to_be_reclaimed(workspace: Path) -> None:
    clock = FakeClock()
    gpu = FakeGpu(0, mem_used=1 * GIB)
    clock.at(0.1, lambda: setattr(gpu, "mem_used", 70 * GIB))   # the job allocates
    clock.at(20.0, lambda: setattr(gpu, "mem_used", 1 * GIB))   # the driver frees it well after the crash
    rig = build_rig(workspace, [crash("the data server went away; exiting\n", seconds=2.0), succeed()], clock=clock,
                    gates=nvml_gates(gpu), backoff_initial_seconds=0, gpu_reclaim_timeout_seconds=60)
    assert rig.supervisor.run() == 0
    first, second = rig.when(ev.JobStarted)
    assert first == 0.0 and 20.0 <= second <= 21.0


def test_the_reclaim_wait_is_bounded(workspace: Path) -> None:
    clock = FakeClock()
    gpu = FakeGpu(0, mem_used=1 * GIB)
    clock.at(0.1, lambda: setattr(gpu, "mem_used", 70 * GIB))  # never freed
    rig = build_rig(workspace, [crash("the data server went away; exiting\n", seconds=2.0), succeed()], clock=clock,
                    gates=nvml_gates(gpu), backoff_initial_seconds=0, gpu_reclaim_timeout_seconds=30)
    assert rig.supervisor.run() == 0
    assert 32.0 <= rig.when(ev.JobStarted)[1] <= 33.0


def test_a_nan_loss_stops_the_run_as_nan_divergence(workspace: Path) -> None:
    output = steps(1, 10, 1.0) + ((11.0, b"step 11 loss=nan\n"),)
    rig = build_rig(workspace, [Script(exit=None, output=output), succeed()], backoff_initial_seconds=0,
                    actions={"nan_divergence": "restart"})
    assert rig.supervisor.run() == 0
    incident = rig.store.load().incidents[0]
    assert incident.category == "nan_divergence" and "nan" in (incident.evidence or "")
    assert rig.runtime.stops[0]["reason"] == "divergence:nan" and rig.runtime.stops[0]["at"] <= 11.0 + 5.0


def test_a_loss_blowup_stops_for_a_human_by_default(workspace: Path) -> None:
    output = steps(1, 20, 1.0, loss="2.0") + steps(21, 30, 1.0, start=20.5, loss="900.0")
    rig = build_rig(workspace, [Script(exit=None, output=output)], backoff_initial_seconds=0)
    with pytest.raises(GaveUp, match="loss blow-up needs a human"):
        rig.supervisor.run()
    assert rig.runtime.stops[0]["reason"] == "divergence:blowup"


def test_the_learned_pace_and_the_best_step_survive_a_restart_of_phoenix(workspace: Path) -> None:
    run = Script(tail="RuntimeError: boom\n", exit=ExitStatus(code=1), seconds=30.0, output=steps(1, 25, every=1.0))
    first = build_rig(workspace, [run], max_retries=0)
    with pytest.raises(GaveUp):
        first.supervisor.run()
    saved = first.store.load().progress
    assert saved.best_step == 25 and len(saved.intervals) >= 10
    again = build_rig(workspace, [succeed()], progress_timeout_min_seconds=1)
    assert again.supervisor.progress is not None and again.supervisor.progress.timeout() == 5.0
