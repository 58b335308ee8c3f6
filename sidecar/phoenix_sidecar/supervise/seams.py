"""The supervisor's seams besides the runtime: time, the hardware gates, the repair engine, the diagnosis,
and the LLM triage of failures no rule names.

`Supervisor` reads the time and waits only through a `Clock`, consults the gates only through
`Gates`, repairs only through `Repairer`, and asks an LLM for a category only through `Triager`.
Production passes `SystemClock`, `Observability`, `RepairEngine` and `triage_llm.LlmTriager`; tests
pass a fake clock whose waits advance time at once, scripted gates, a scripted repair and a scripted
triage, so a supervision that spans hours of backoff and hangs runs in milliseconds.
The diagnosis is the watchdog's, with the user's ``rules:`` tried first (`default_diagnosis`).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from phoenix_sidecar.config.schema import ACTIONS, Settings
from phoenix_sidecar.supervise.triage import Triager  # defined beside its verdict (metrics read that module)
from phoenix_watchdog.diagnosis.failure import Diagnosis

__all__ = ["Clock", "Gates", "NullGates", "Repairer", "SystemClock", "Triager", "default_diagnosis"]

if TYPE_CHECKING:
    from phoenix_sidecar.observe.gates import SafetyTrip
    from phoenix_watchdog.probes.gpu import GpuSnapshot
    from phoenix_sidecar.repair.model import RepairOutcome, RepairRequest, RollbackResult


class Clock(Protocol):
    """Where the supervisor gets the time, and how it waits."""

    def monotonic(self) -> float:
        """Seconds for deadlines and intervals."""
        ...

    def time(self) -> float:
        """Wall-clock (Unix) seconds for the records humans read."""
        ...

    def wait(self, wake: threading.Event, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds, returning early (True) once ``wake`` is set."""
        ...


class SystemClock:
    """The real time: `time.monotonic`, `time.time` and a real wait on the event."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def wait(self, wake: threading.Event, timeout: float) -> bool:
        return wake.wait(timeout)


class Gates(Protocol):
    """What the loop needs from observability: a liveness tick, and the hardware safety gates."""

    def loop_tick(self) -> None:
        """The loop is alive (``/healthz`` fails when the ticks stop)."""
        ...

    def safety_trip(self) -> SafetyTrip | None:
        """The most severe tripped safety gate, or None when all are clear."""
        ...

    def gpu_snapshot(self) -> GpuSnapshot | None:
        """The latest NVML reading (utilisation, memory), or None without one. Never blocks."""
        ...


class NullGates:
    """No observability: nobody to tell the loop is alive, and no gate ever trips."""

    def loop_tick(self) -> None:
        pass

    def safety_trip(self) -> SafetyTrip | None:
        return None

    def gpu_snapshot(self) -> GpuSnapshot | None:
        return None


class Repairer(Protocol):
    """What the loop needs from the repair engine."""

    def repair(self, request: RepairRequest) -> RepairOutcome:
        """Ask for a fix, prove it in isolation, and promote it; the outcome says how far it got."""
        ...

    def rollback(self, repair_id: str | None = None, *, automatic: bool = False,
                 force: bool = False) -> RollbackResult:
        """Restore the files a promoted repair changed."""
        ...


def default_diagnosis(settings: Settings) -> Callable[..., Diagnosis]:
    """The watchdog's diagnosis, trying the user's ``rules:`` (checked by the config loader) first."""
    from phoenix_watchdog.diagnosis.diagnose import diagnose
    from phoenix_watchdog.diagnosis.rules import user_rules

    rules = user_rules(settings.rules, ACTIONS)
    return functools.partial(diagnose, rules=rules) if rules else diagnose
