"""Hardware safety gates: when temperature, power, disk or GPU errors say "stop the job". Pure.

`SafetyGates` is fed readings (GPU polls, disk polls, Xid events) and keeps, per gate, whether it
is tripped and why. It does no I/O and owns no thread; the caller serialises calls.

Noise handling, so one odd sample never stops a week-long job:
- Level gates (temperature, power, disk) trip only after the limit is crossed on ``trip_samples``
  consecutive readings of the same GPU or volume (3 polls, 15 s at the default 5 s interval; 2 for
  disk, whose readings are not noisy).
- They clear only with hysteresis: every GPU/volume must be back under the limit by a margin
  (5 °C; 5 points of the power ratio; max(1 GiB, 10 %) of the disk minimum) on ``clear_samples``
  consecutive readings. Readings inside the margin keep the gate as it is.
- GPU errors (new uncorrectable ECC errors, a row-remap failure, a lost GPU, a fatal Xid) trip at
  once and never clear (``recoverable=False``): waiting does not mend hardware.
- A stalled or failing NVML poll produces no reading, so stale data never trips or clears a gate.
Nothing here ever suggests patching code: a hardware reason is never a code bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from phoenix_watchdog.probes.disk import DiskSnapshot
from phoenix_watchdog.probes.gpu import GpuSnapshot
from phoenix_watchdog.probes.gpu_xid import XID_MEANINGS, XidEvent

if TYPE_CHECKING:
    from phoenix_sidecar.config.schema import Settings

GATES = ("gpu_temperature", "gpu_power", "disk_space", "gpu_errors")
_PRIORITY = ("gpu_errors", "gpu_temperature", "gpu_power", "disk_space")  # most severe first
GIB = 2**30
# Xids that mean broken hardware or firmware (double-bit/uncontained ECC, remap failure, NVLink,
# off the bus, GSP). Application faults (13, 31, 43) and informational ones (63, 92, 94) are left
# to the crash diagnosis: the job's own restart handles them.
FATAL_XIDS = frozenset({48, 62, 64, 74, 79, 95, 119, 120})


@dataclass(frozen=True)
class SafetyTrip:
    """Why the job must stop.

    Attributes:
        gate: gpu_temperature | gpu_power | disk_space | gpu_errors
        detail: one human line, e.g. "GPU 0 at 91 °C (limit 85 °C)".
        recoverable: False for GPU errors: waiting will not clear it.
    """

    gate: str
    detail: str
    recoverable: bool


@dataclass(frozen=True)
class GateChange:
    """A gate tripped (``trip`` says why) or cleared (``trip`` is None)."""

    gate: str
    trip: SafetyTrip | None

    @property
    def tripped(self) -> bool:
        return self.trip is not None


@dataclass(frozen=True)
class GateLimits:
    """The thresholds; a limit of 0 turns its gate off."""

    max_temp_c: float = 85.0
    max_power_ratio: float = 0.0
    min_free_bytes: int = 10 * GIB
    stop_on_gpu_errors: bool = True
    trip_samples: int = 3
    disk_trip_samples: int = 2
    clear_samples: int = 3
    temp_margin_c: float = 5.0
    power_margin_ratio: float = 0.05

    @classmethod
    def from_settings(cls, settings: Settings) -> GateLimits:
        return cls(max_temp_c=settings.gpu_max_temp_c, max_power_ratio=settings.gpu_max_power_ratio,
                   min_free_bytes=int(settings.min_free_disk_gb * GIB),
                   stop_on_gpu_errors=settings.stop_on_gpu_errors)

    @property
    def disk_margin_bytes(self) -> int:
        return max(GIB, self.min_free_bytes // 10)


@dataclass
class _LevelGate:
    """A threshold with persistence and hysteresis over several keys (GPUs or volumes)."""

    name: str
    trip_after: int
    clear_after: int
    over: dict[str, int] = field(default_factory=dict)
    under: dict[str, int] = field(default_factory=dict)
    trip: SafetyTrip | None = None

    def update(self, readings: list[tuple[str, bool, bool, str]]) -> GateChange | None:
        """``readings``: (key, beyond the limit, back under it with margin, detail) per key."""
        if not readings:
            return None
        keys = {key for key, *_ in readings}
        for table in (self.over, self.under):
            for gone in set(table) - keys:
                del table[gone]
        worst: str | None = None
        for key, beyond, clear, detail in readings:
            self.over[key] = self.over.get(key, 0) + 1 if beyond else 0
            self.under[key] = self.under.get(key, 0) + 1 if clear else 0
            if worst is None and self.over[key] >= self.trip_after:
                worst = detail
        if self.trip is None and worst is not None:
            self.trip = SafetyTrip(self.name, worst, recoverable=True)
            return GateChange(self.name, self.trip)
        if self.trip is not None and all(self.under[k] >= self.clear_after for k in keys):
            self.trip = None
            return GateChange(self.name, None)
        return None


class SafetyGates:
    """The four gates and their state. Feed readings in; ask `current` for the trip to act on."""

    def __init__(self, limits: GateLimits) -> None:
        self.limits = limits
        self._temp = _LevelGate("gpu_temperature", limits.trip_samples, limits.clear_samples)
        self._power = _LevelGate("gpu_power", limits.trip_samples, limits.clear_samples)
        self._disk = _LevelGate("disk_space", limits.disk_trip_samples, limits.clear_samples)
        self._error_trip: SafetyTrip | None = None
        self._ecc_baseline: dict[str, int] = {}
        self._remap_failed: dict[str, bool] = {}
        self._most_gpus = 0

    def current(self) -> SafetyTrip | None:
        """The most severe tripped gate, or None when all are clear."""
        trips = self.trips()
        for gate in _PRIORITY:
            if gate in trips:
                return trips[gate]
        return None

    def trips(self) -> dict[str, SafetyTrip]:
        found = {"gpu_errors": self._error_trip, "gpu_temperature": self._temp.trip,
                 "gpu_power": self._power.trip, "disk_space": self._disk.trip}
        return {gate: trip for gate, trip in found.items() if trip is not None}

    # -- readings ------------------------------------------------------------------------------

    def observe_gpus(self, snapshot: GpuSnapshot) -> list[GateChange]:
        if not snapshot.available:
            return []
        lim = self.limits
        changes: list[GateChange | None] = []
        if lim.max_temp_c > 0:
            changes.append(self._temp.update([
                (g.identity.uuid, g.temperature_c > lim.max_temp_c, g.temperature_c <= lim.max_temp_c - lim.temp_margin_c,
                 f"GPU {g.identity.index} at {g.temperature_c:.0f} °C (limit {lim.max_temp_c:g} °C)")
                for g in snapshot.gpus if not g.lost and g.temperature_c is not None]))
        if lim.max_power_ratio > 0:
            changes.append(self._power.update([
                (g.identity.uuid, ratio > lim.max_power_ratio, ratio <= lim.max_power_ratio - lim.power_margin_ratio,
                 f"GPU {g.identity.index} drawing {g.power_w:.0f} W, {ratio:.0%} of its {g.power_limit_w:.0f} W limit "
                 f"(limit {lim.max_power_ratio:.0%})")
                for g in snapshot.gpus if not g.lost and g.power_w is not None and g.power_limit_w
                for ratio in (g.power_w / g.power_limit_w,)]))
        if lim.stop_on_gpu_errors:
            changes.append(self._check_gpu_errors(snapshot))
        return [c for c in changes if c is not None]

    def observe_disks(self, snapshot: DiskSnapshot) -> list[GateChange]:
        lim = self.limits
        if lim.min_free_bytes <= 0:
            return []
        change = self._disk.update([
            (v.path, v.free_bytes < lim.min_free_bytes, v.free_bytes >= lim.min_free_bytes + lim.disk_margin_bytes,
             f"{v.path} has {v.free_bytes / GIB:.1f} GiB free (minimum {lim.min_free_bytes / GIB:g} GiB)")
            for v in snapshot.volumes if v.ok])
        return [change] if change else []

    def observe_xid(self, event: XidEvent) -> list[GateChange]:
        if not self.limits.stop_on_gpu_errors or event.xid not in FATAL_XIDS:
            return []
        gpu = f"GPU {event.gpu}" if event.gpu is not None else "a GPU"
        return self._error(f"{gpu} reported Xid {event.xid}: {XID_MEANINGS.get(event.xid, 'hardware fault')}")

    def _check_gpu_errors(self, snapshot: GpuSnapshot) -> GateChange | None:
        count = len(snapshot.gpus)
        if count < self._most_gpus:
            return self._first(self._error(f"NVML now sees {count} GPUs, {self._most_gpus} before: a GPU disappeared"))
        self._most_gpus = count
        for g in snapshot.gpus:
            uuid, index = g.identity.uuid, g.identity.index
            if g.lost:
                return self._first(self._error(f"GPU {index} ({uuid}) is lost: it fell off the bus"))
            if g.ecc_uncorrected is not None:
                base = self._ecc_baseline.setdefault(uuid, g.ecc_uncorrected)
                if g.ecc_uncorrected < base:  # the volatile counter was reset (driver reload)
                    self._ecc_baseline[uuid] = base = g.ecc_uncorrected
                if g.ecc_uncorrected > base:
                    new = g.ecc_uncorrected - base
                    return self._first(self._error(f"GPU {index}: {new} new uncorrectable ECC error{'s' * (new > 1)}"))
            if g.row_remap_failure is not None:
                before = self._remap_failed.setdefault(uuid, g.row_remap_failure)
                self._remap_failed[uuid] = g.row_remap_failure
                if g.row_remap_failure and not before:
                    return self._first(self._error(f"GPU {index}: memory row remapping failed"))
        return None

    def _error(self, detail: str) -> list[GateChange]:
        if self._error_trip is not None:
            return []  # latched: the first cause is the one a human needs
        self._error_trip = SafetyTrip("gpu_errors", detail, recoverable=False)
        return [GateChange("gpu_errors", self._error_trip)]

    @staticmethod
    def _first(changes: list[GateChange]) -> GateChange | None:
        return changes[0] if changes else None
