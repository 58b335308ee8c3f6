"""Hardware safety gates stop a real job and resume it, through the real supervisor loop.

The job is a real process under the local runtime; the GPU is faked only at the pynvml function
boundary, so the test can heat it up and cool it down.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from kits.waiting import HANG_GUARD
from kits.fakenvml import FakeGpu, FakeNvml
from phoenix_sidecar import events as ev
from phoenix_sidecar.config.loader import load
from phoenix_sidecar.errors import GaveUp
from phoenix_sidecar.events import EventBus
from phoenix_sidecar.runtime.local.runtime import LocalRuntime
from phoenix_sidecar.observe.observability import Observability
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.supervise.state import StateStore
from phoenix_sidecar.supervise.loop import Supervisor
from phoenix_watchdog.heartbeat import Heartbeat
from testkit import process_alive

# The job trains until the test lets it finish (a file named "finish"), not for a fixed time that a
# loaded machine could see run out before the gate trips; the step cap is only a hang guard.
JOB = ("import os, time\n"
       "for i in range(1200):\n"
       "    if os.path.exists('finish'):\n"
       "        break\n"
       "    print('step', i, flush=True)\n"
       "    time.sleep(0.05)\n")


def supervise(tmp_path: Path, gpu: FakeGpu, nvml: FakeNvml, **settings: str):  # type: ignore[no-untyped-def]
    (tmp_path / "job.py").write_text(JOB)
    loaded = load(environ={}, cwd=str(tmp_path), flags={
        "gpu_poll_seconds": "0.1", "metrics_addr": "", "min_free_disk_gb": "0", "kill_grace_seconds": "1",
        "repair": "false", **settings})
    paths = StatePaths(tmp_path).ensure()
    seen: list[ev.Event] = []
    bus = EventBus()
    bus.subscribe(seen.append)
    heartbeat = Heartbeat(loaded.settings.heartbeat_seconds)
    runtime = LocalRuntime([sys.executable, "job.py"], cwd=str(tmp_path), heartbeat=heartbeat,
                           stdout_fd=_devnull(), stderr_fd=_devnull())
    gates = Observability(loaded.settings, bus, heartbeat, target="job", disk_paths=[], nvml=nvml)
    gates.start()
    supervisor = Supervisor(loaded.settings, runtime, heartbeat, StateStore(paths.state), bus, paths, gates=gates)
    return supervisor, seen, gates, runtime


def _devnull() -> int:
    return os.open(os.devnull, os.O_WRONLY)


def wait_for(predicate, timeout: float = HANG_GUARD) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "hang guard: timed out"
        time.sleep(0.02)


def test_hot_gpu_stops_the_job_and_it_resumes_when_cool(tmp_path: Path) -> None:
    gpu = FakeGpu(0, temperature=50)
    nvml = FakeNvml([gpu])
    supervisor, seen, gates, runtime = supervise(tmp_path, gpu, nvml)
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", supervisor.run()))
    try:
        thread.start()
        wait_for(lambda: any(isinstance(e, ev.JobStarted) for e in seen))
        first_pid = runtime.pid
        gpu.temperature = 96
        wait_for(lambda: any(isinstance(e, ev.SafetyTripped) for e in seen))
        wait_for(lambda: supervisor.state.job.state == "safety_stop")
        assert first_pid is not None and not process_alive(first_pid)
        time.sleep(0.5)  # still hot: it stays stopped
        assert supervisor.state.job.state == "safety_stop"
    finally:
        gpu.temperature = 50
        (tmp_path / "finish").touch()  # the run after the pause completes
        thread.join(HANG_GUARD)
        gates.stop()
        runtime.close()
    assert result.get("code") == 0
    trip = next(e for e in seen if isinstance(e, ev.SafetyTripped))
    assert trip.gate == "gpu_temperature" and "96" in trip.detail
    assert any(isinstance(e, ev.SafetyCleared) for e in seen)
    starts = [e for e in seen if isinstance(e, ev.JobStarted)]
    assert len(starts) == 2
    assert [e.reason for e in seen if isinstance(e, ev.JobRestarted)] == ["safety"]
    incident = supervisor.state.incidents[-1]
    assert (incident.kind, incident.category, incident.action) == ("safety", "gpu_temperature", "wait")
    assert supervisor.state.budgets.total_restarts == 0  # a safety pause spends no budget


def test_hardware_xid_stops_the_job_for_a_human(tmp_path: Path) -> None:
    gpu = FakeGpu(0)
    nvml = FakeNvml([gpu])
    supervisor, seen, gates, runtime = supervise(tmp_path, gpu, nvml)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            supervisor.run()
        except GaveUp as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    try:
        thread.start()
        wait_for(lambda: any(isinstance(e, ev.JobStarted) for e in seen))
        nvml.emit_xid(0, 79)  # GPU has fallen off the bus
        thread.join(HANG_GUARD)
    finally:
        gates.stop()
        runtime.close()
    assert errors and "stopped the job for safety" in str(errors[0])
    assert supervisor.state.job.state == "gave_up"
    assert [e.reason for e in seen if isinstance(e, ev.GaveUp)] == ["safety"]
    assert not any(isinstance(e, ev.JobRestarted) for e in seen)
