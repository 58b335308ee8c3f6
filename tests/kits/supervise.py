"""Fakes for driving the real `Supervisor` without a process: a clock, scripted runs, repairs and gates.

Time is a `FakeClock` that moves only when the code under test waits, and then at once: a backoff of
five minutes or a 15-minute hang costs nothing. `FakeRuntime` plays a script of runs (`succeed`,
`crash`, `hang`) on that clock and feeds the heartbeat like a real runtime; `ScriptedRepair` answers
with scripted outcomes and records what it was asked; `ScriptedTriage` answers the LLM triage of
unknown failures with scripted verdicts; `ScriptedGates` trips and clears a safety gate when told. `build_rig` puts them around a real supervisor, state store and event bus; the `workspace` fixture
gives it a workspace in RAM.

Import as ``from kits.supervise import ...`` (``tests/`` is on the pytest path).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.events import Event, EventBus, StateChanged
from phoenix_sidecar.observe.gates import SafetyTrip
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.repair.model import RepairOutcome, RepairRequest, RollbackResult
from phoenix_sidecar.runtime.base import RunEnd, RunStart
from phoenix_sidecar.supervise.loop import Supervisor
from phoenix_sidecar.supervise.state import JobState, StateStore
from phoenix_sidecar.supervise.triage import TriageResult, TriageVerdict
from phoenix_watchdog.diagnosis.failure import Diagnosis, ExitStatus, HangInfo
from phoenix_watchdog.heartbeat import Heartbeat

WALL_START = 1_700_000_000.0  # the fake wall clock's reading at monotonic 0


class FakeClock:
    """Monotonic and wall time that advance only when waited on; actions can be scheduled at a time.

    A loop under test that would spin or wait for ever fails instead: after ``max_still`` waits in a
    row that do not move the clock, or once the clock passes ``limit`` seconds.
    """

    def __init__(self, *, limit: float = 30 * 86400.0, max_still: int = 1000) -> None:
        self.now = 0.0
        self.limit = limit
        self.max_still = max_still
        self._still = 0
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return WALL_START + self.now

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` when the clock reaches monotonic ``when`` (from inside a wait)."""
        heapq.heappush(self._timers, (when, next(self._order), action))

    def run_until(self, deadline: float, stop: Callable[[], bool]) -> bool:
        """Move to ``deadline``, running due actions in order; stop early, at an action's time, once
        ``stop()`` holds. Returns whether it stopped early."""
        before = self.now
        while self._timers and self._timers[0][0] <= deadline and not stop():
            when, _, action = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            action()
        early = stop()
        if not early:
            self.now = max(self.now, deadline)
        self._still = self._still + 1 if self.now == before else 0
        assert self._still < self.max_still, f"the code under test spins: {self._still} waits at {self.now} s"
        assert self.now <= self.limit, f"the fake clock ran past {self.limit} s: the code under test never stops"
        return early

    def wait(self, wake: threading.Event, timeout: float) -> bool:
        """`Clock.wait`: returns at once, the clock moved on by ``timeout`` or to the wake-up."""
        return self.run_until(self.now + timeout, wake.is_set)


@dataclasses.dataclass(frozen=True)
class Script:
    """One scripted run of the job.

    Attributes:
        tail: the run's output, the diagnosis's input.
        exit: how it ends by itself; None for a run that never does (a hang: silent after its start).
        seconds: when it ends, after its start (ignored for a hang).
        stack: what a stack dump of the run shows.
    """

    tail: str = ""
    exit: ExitStatus | None = ExitStatus(code=0)
    seconds: float = 1.0
    stack: str | None = None
    output: tuple[tuple[float, bytes], ...] = ()  # (seconds after the start, bytes) written to stdout


def succeed(seconds: float = 1.0, tail: str = "epoch 3/3 done\n") -> Script:
    return Script(tail=tail, exit=ExitStatus(code=0), seconds=seconds)


def crash(tail: str, *, code: int | None = 1, signum: int | None = None, seconds: float = 1.0) -> Script:
    return Script(tail=tail, exit=ExitStatus(code=code, signal=signum), seconds=seconds)


def hang(stack: str | None, tail: str = "") -> Script:
    """A run that writes ``tail`` as it starts, then nothing more, and never ends by itself."""
    return Script(tail=tail, exit=None, stack=stack)


class FakeRuntime:
    """A `Runtime` that plays ``script`` on ``clock``: one entry per start of the job.

    A run that has not ended writes output all the time (the heartbeat beats at every wait), except
    a hang, which beats once at its start. Stopping a run ends it as SIGTERM would.
    """

    def __init__(self, clock: FakeClock, heartbeat: Heartbeat, script: list[Script], target: str = "fake job") -> None:
        self.clock = clock
        self.heartbeat = heartbeat
        self.script = list(script)
        self.target = target
        self.starts = 0
        self.attach_to: float | None = None  # the next start attaches to a run going since then (Docker)
        self.stops: list[dict[str, Any]] = []
        self.stack_dumps = 0
        self.ends: list[RunEnd] = []
        self.closed = False
        self._run: Script | None = None
        self._started = 0.0  # monotonic
        self._woken = False

    def start(self) -> RunStart | None:
        assert self._run is None, "the job was started while a run was still going"
        assert self.script, f"the job was started more often ({self.starts + 1}) than the script has runs"
        self._run = self.script.pop(0)
        self.starts += 1
        self._started = self.clock.monotonic()
        self.heartbeat.reset()
        self.heartbeat.beat("stdout")
        run, number = self._run, self.starts
        for offset, data in run.output:
            def write(data: bytes = data) -> None:
                if self._run is run and self.starts == number:  # only while this run lives
                    self.heartbeat.beat("stdout", data)
            self.clock.at(self._started + offset, write)
        attached, self.attach_to = self.attach_to, None
        return RunStart(attached, attached=True) if attached is not None else None

    def wait(self, timeout: float | None) -> RunEnd | None:
        run = self._run
        assert run is not None, "wait() without a running job"
        if self._woken:
            self._woken = False
            return None
        end_at = self._started + run.seconds if run.exit is not None else None
        assert timeout is not None or end_at is not None, "wait(None) on a hung run would block for ever"
        deadline = self.clock.monotonic() + timeout if timeout is not None else float("inf")
        if end_at is not None:
            deadline = min(deadline, end_at)
        woken = self.clock.run_until(deadline, lambda: self._woken)
        if run.exit is not None:
            self.heartbeat.beat("stdout")
        if woken:
            self._woken = False
            return None
        if end_at is not None and self.clock.monotonic() >= end_at:
            return self._end(run.exit)
        return None

    def dump_stack(self) -> str | None:
        assert self._run is not None
        self.stack_dumps += 1
        return self._run.stack

    def stop(self, *, hang: HangInfo | None = None, reason: str | None = None) -> RunEnd:
        assert self._run is not None, "stop() without a running job"
        self.stops.append({"hang": hang, "reason": reason, "at": self.clock.monotonic()})
        return self._end(ExitStatus(signal=signal.SIGTERM), hang=hang, reason=reason)

    def wakeup(self) -> None:
        self._woken = True

    def close(self) -> None:
        self.closed = True

    def _end(self, exit: ExitStatus | None, *, hang: HangInfo | None = None, reason: str | None = None) -> RunEnd:
        run, self._run = self._run, None
        assert run is not None and exit is not None
        end = RunEnd(exit=exit, started_at=WALL_START + self._started, ended_at=self.clock.time(), tail=run.tail,
                     hang=hang, stopped_for=reason)
        self.ends.append(end)
        return end


_REASONS = {
    "promoted": "the patch passed verification and was promoted",
    "dry_run": "the patch passed verification (dry run: not promoted)",
    "rejected": "the answer was rejected: no_match",
    "verify_failed": "the patched code failed its tests",
    "llm_failed": "every LLM client failed: timeout",
    "no_target": "no file Phoenix may patch is involved",
    "error": "the repair did not finish",
}


class ScriptedRepair:
    """A `Repairer` that answers with ``outcomes`` in order and records every request and rollback.

    Args:
        outcomes: outcome names (``promoted``, ``llm_failed``, ``verify_failed``, ``no_target``, ...)
            or whole `RepairOutcome`s.
        rollback_ok: whether a rollback restores the files (False: someone edited them since).
    """

    def __init__(self, outcomes: list[str | RepairOutcome], *, rollback_ok: bool = True) -> None:
        self.outcomes = list(outcomes)
        self.rollback_ok = rollback_ok
        self.requests: list[RepairRequest] = []
        self.rollbacks: list[dict[str, Any]] = []

    def repair(self, request: RepairRequest) -> RepairOutcome:
        self.requests.append(request)
        assert self.outcomes, f"repair asked {len(self.requests)} times, more than scripted"
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, RepairOutcome):
            return outcome
        files = ("train.py",) if outcome in ("promoted", "dry_run") else ()
        return RepairOutcome(f"r{len(self.requests)}", outcome, _REASONS[outcome], files)

    def rollback(self, repair_id: str | None = None, *, automatic: bool = False, force: bool = False) -> RollbackResult:
        self.rollbacks.append({"id": repair_id, "automatic": automatic, "force": force})
        if not self.rollback_ok:
            return RollbackResult(repair_id, False, "train.py was edited since the promotion", changed=("train.py",))
        return RollbackResult(repair_id, True, "restored 1 file", files=("train.py",))


class ScriptedTriage:
    """A `Triager` that answers with ``verdicts`` in order and records each diagnosis it was asked about.

    A verdict may be given by its category (``"cuda_oom"``: named, with a reason) or as a whole
    `TriageVerdict` (a failure, a declined or rejected answer).
    """

    def __init__(self, verdicts: list[str | TriageVerdict]) -> None:
        self.verdicts = list(verdicts)
        self.asked: list[Diagnosis] = []

    def triage(self, diagnosis: Diagnosis, tail: str) -> TriageVerdict:
        self.asked.append(diagnosis)
        assert self.verdicts, f"triage asked {len(self.asked)} times, more than scripted"
        verdict = self.verdicts.pop(0)
        if isinstance(verdict, TriageVerdict):
            return verdict
        return TriageVerdict(TriageResult.NAMED, verdict, f"the log says it is {verdict}", "scripted", 0.5)


class ScriptedGates:
    """`Gates` whose safety gate the test trips and clears (often from a `FakeClock.at` action)."""

    def __init__(self) -> None:
        self.trip: SafetyTrip | None = None
        self.ticks = 0
        self.snapshot: Callable[[], Any] | None = None  # the GPUs' NVML reading (e.g. a real reader on FakeNvml)

    def trip_now(self, gate: str = "gpu_temperature", detail: str = "GPU 0 at 96 °C (limit 90 °C)",
                 recoverable: bool = True) -> None:
        self.trip = SafetyTrip(gate, detail, recoverable)

    def clear(self) -> None:
        self.trip = None

    def loop_tick(self) -> None:
        self.ticks += 1

    def safety_trip(self) -> SafetyTrip | None:
        return self.trip

    def gpu_snapshot(self) -> Any:
        return self.snapshot() if self.snapshot is not None else None


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Path]:
    """The job's workspace, in RAM (/dev/shm) where there is one, else ``tmp_path``.

    The supervisor fsyncs state.json at every change of state, about 10 ms a time on a disk and
    next to nothing in RAM: the difference between a scenario in seconds and one in milliseconds.
    Durability itself is tested in tests/integration/run/test_state.py.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="phoenix-test-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclasses.dataclass
class Rig:
    """A real supervisor on fakes, and what it emitted (with the fake monotonic time of each event)."""

    supervisor: Supervisor
    runtime: FakeRuntime
    clock: FakeClock
    repair: ScriptedRepair | None
    gates: ScriptedGates | None
    store: StateStore
    paths: StatePaths
    settings: Settings
    timeline: list[tuple[float, Event]]

    @property
    def events(self) -> list[Event]:
        return [e for _, e in self.timeline]

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def when(self, kind: type) -> list[float]:
        """The fake monotonic times at which events of ``kind`` were emitted."""
        return [t for t, e in self.timeline if isinstance(e, kind)]

    def states(self) -> list[JobState]:
        return [e.state for e in self.of(StateChanged)]


def build_rig(workspace: Path, script: list[Script], *, repair: ScriptedRepair | None = None,
              gates: ScriptedGates | None = None, clock: FakeClock | None = None,
              diagnose: Callable[..., Any] | None = None, triage: ScriptedTriage | None = None,
              **overrides: Any) -> Rig:
    """A `Supervisor` on ``workspace`` (its state in ``.phoenix_cli``) playing ``script``.

    ``overrides`` are `Settings` fields. A second rig on the same workspace reads the same
    state.json: that is a restarted Phoenix.
    """
    settings = Settings(workspace=str(workspace), **overrides)
    clock = clock or FakeClock()
    paths = StatePaths(workspace).ensure()
    timeline: list[tuple[float, Event]] = []
    bus = EventBus()
    bus.subscribe(lambda event: timeline.append((clock.monotonic(), event)))
    heartbeat = Heartbeat(settings.heartbeat_seconds, settings.heartbeat_initial_seconds,
                          clock=clock.monotonic, wall=clock.time)
    runtime = FakeRuntime(clock, heartbeat, script)
    store = StateStore(paths.state)
    supervisor = Supervisor(settings, runtime, heartbeat, store, bus, paths, repair=repair, gates=gates,
                            diagnose=diagnose, clock=clock, triage=triage)
    return Rig(supervisor, runtime, clock, repair, gates, store, paths, settings, timeline)
