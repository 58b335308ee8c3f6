"""GPU readings through NVML: one `GpuSnapshot` per poll, errors accounted per NVML call.

`NvmlReader` is the only place that calls NVML's read functions. It takes the ``pynvml`` module
(or anything exposing the same function names and ``NVMLError_*`` classes) as a parameter, so
tests fake NVML exactly at its function boundary. A reader never raises: no library, no driver,
a feature the GPU lacks, a GPU that fell off the bus, all end up as data in the snapshot.

Policy per NVML error:
- ``NotSupported``, ``FunctionNotFound``, ``NoPermission``: the feature is skipped for that GPU
  from then on (its series is absent); not a collector failure.
- ``GpuIsLost``: the GPU is marked lost for good (the driver needs a reset); no further calls to it.
- anything else: counted under the call's name, the poll is marked unsuccessful, the series absent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

# ABI constants of NVML (nvml.h); stable across driver versions, so they need no lookup.
_TEMPERATURE_GPU = 0
_CLOCK_SM = 1
_ECC_CORRECTED, _ECC_UNCORRECTED = 0, 1
_VOLATILE_ECC = 0
_RETIRED_SINGLE_BIT, _RETIRED_DOUBLE_BIT = 0, 1

# Bits of nvmlDeviceGetCurrentClocksEventReasons, as one 0/1 series each (PromQL has no bit tests).
CLOCK_EVENT_REASONS: tuple[tuple[str, int], ...] = (
    ("gpu_idle", 0x1),
    ("applications_clocks_setting", 0x2),
    ("sw_power_cap", 0x4),
    ("hw_slowdown", 0x8),
    ("sync_boost", 0x10),
    ("sw_thermal_slowdown", 0x20),
    ("hw_thermal_slowdown", 0x40),
    ("hw_power_brake_slowdown", 0x80),
    ("display_clock_setting", 0x100),
)

# Errors that say "this GPU or driver cannot do that": skip the feature, do not count a failure.
_SKIP_ERRORS = ("NVMLError_NotSupported", "NVMLError_FunctionNotFound", "NVMLError_NoPermission")
# nvmlInit errors that mean "no NVIDIA GPU here": not a collector failure either.
_ABSENT_ERRORS = ("NVMLError_LibraryNotFound", "NVMLError_DriverNotLoaded", "NVMLError_NoPermission")


@dataclass(frozen=True)
class GpuIdentity:
    """What names a GPU: its index (the ``gpu`` label), UUID, model and PCI bus id."""

    index: int
    uuid: str
    model: str
    pci_bus_id: str


@dataclass(frozen=True)
class GpuReading:
    """One GPU at one poll. None means the GPU does not support it (or the read failed)."""

    identity: GpuIdentity
    lost: bool = False
    temperature_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    energy_j: float | None = None
    utilization: float | None = None  # 0..1
    memory_utilization: float | None = None  # 0..1
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    sm_clock_hz: float | None = None
    clock_event_reasons: tuple[tuple[str, bool], ...] | None = None
    ecc_corrected: int | None = None  # volatile: since the last driver load
    ecc_uncorrected: int | None = None
    remapped_rows_correctable: int | None = None
    remapped_rows_uncorrectable: int | None = None
    row_remap_pending: bool | None = None
    row_remap_failure: bool | None = None
    retired_pages_single_bit: int | None = None
    retired_pages_double_bit: int | None = None
    retired_pages_pending: bool | None = None


@dataclass(frozen=True)
class GpuSnapshot:
    """The result of one poll.

    Attributes:
        available: NVML is initialised (a driver answered).
        reason: why it is not available ("NVML Shared Library Not Found"), else "".
        ok: the poll ran without unexpected NVML errors.
        errors: the failing calls of this poll, as (call, error text).
        error_counts: failures per NVML call since the reader was made (cumulative).
    """

    available: bool
    reason: str = ""
    driver_version: str = ""
    gpus: tuple[GpuReading, ...] = ()
    ok: bool = True
    errors: tuple[tuple[str, str], ...] = ()
    error_counts: Mapping[str, int] = field(default_factory=dict)
    taken_at: float = 0.0
    duration_seconds: float = 0.0
    last_success_at: float | None = None  # wall time of the last poll that was ok, this one included


class _GpuLost(Exception):
    pass


class NvmlReader:
    """Reads every GPU through NVML. Not thread-safe: one poller thread owns it.

    Args:
        nvml: the ``pynvml`` module or a stand-in with the same names; None means NVML could not
            be imported, which reads as "no GPU".
        retry_init_seconds: how often a failed ``nvmlInit`` is retried (a driver may be loaded later).
    """

    def __init__(self, nvml: ModuleType | Any | None, *, retry_init_seconds: float = 60.0,
                 wall: Callable[[], float] = time.time, mono: Callable[[], float] = time.monotonic) -> None:
        self._nvml = nvml
        self._retry_init = retry_init_seconds
        self._wall = wall
        self._mono = mono
        self._initialised = False
        self._init_failed_at: float | None = None
        self._unavailable_reason = "" if nvml is not None else "nvidia-ml-py (pynvml) is not installed"
        self._driver_version = ""
        self._handles: list[Any] = []
        self._identities: list[GpuIdentity] = []
        self._lost: set[int] = set()
        self._skip: set[tuple[int, str]] = set()  # (gpu index, feature) that the GPU cannot do
        self._fallback: dict[str, str] = {}  # preferred call -> the older call that works instead
        self._error_counts: dict[str, int] = {}
        self._poll_errors: list[tuple[str, str]] = []
        self._last_success: float | None = None
        self._enumerate_again = False
        self._seen_calls: set[str] = set()  # calls made at least once: their error counts start at 0
        self._lock = threading.Lock()
        # Read by other threads to name a call that never returns (a wedged driver).
        self.current_call: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        return self._initialised

    def close(self) -> None:
        """nvmlShutdown, if this reader initialised NVML. Never raises."""
        if not self._initialised:
            return
        self._initialised = False
        try:
            self._nvml.nvmlShutdown()
        except Exception as exc:  # shutting down must not fail the caller
            log.debug("nvmlShutdown failed: %s", exc)

    def error_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._error_counts)

    def count_error(self, call: str) -> None:
        """Count a failure of ``call`` found outside a read (a wedged call, seen by the poller)."""
        with self._lock:
            self._error_counts[call] = self._error_counts.get(call, 0) + 1

    # -- one poll ------------------------------------------------------------------------------

    def read(self) -> GpuSnapshot:
        """Poll every GPU once. Never raises."""
        started, t0 = self._wall(), self._mono()
        self._poll_errors = []
        gpus: tuple[GpuReading, ...] = ()
        try:
            available = self._ensure_init()
            if available:
                count = self._call("nvmlDeviceGetCount", self._nvml.nvmlDeviceGetCount)
                if count is not None and count != len(self._handles):
                    log.warning("NVML now reports %d GPUs (was %d); enumerating again", count, len(self._handles))
                    self._enumerate(count)
                elif self._enumerate_again:
                    self._enumerate(len(self._handles))
                gpus = tuple(self._read_gpu(i) for i in range(len(self._handles)))
        finally:
            self.current_call = None
        ok = not self._poll_errors
        if ok:
            self._last_success = started
        return GpuSnapshot(available=available, reason=self._unavailable_reason,
                           driver_version=self._driver_version if available else "", gpus=gpus, ok=ok,
                           errors=tuple(self._poll_errors), error_counts=self.error_counts(), taken_at=started,
                           duration_seconds=self._mono() - t0, last_success_at=self._last_success)

    def _ensure_init(self) -> bool:
        if self._initialised:
            return True
        if self._nvml is None:
            return False
        now = self._mono()
        if self._init_failed_at is not None and now - self._init_failed_at < self._retry_init:
            return False
        try:
            self.current_call = "nvmlInit"
            self._nvml.nvmlInit()
        except Exception as exc:
            self._init_failed_at = now
            reason = describe_error(exc)
            if is_nvml_error(exc, _ABSENT_ERRORS):
                if reason != self._unavailable_reason:
                    log.info("no NVIDIA GPU: %s", reason)
            else:
                self._record_error("nvmlInit", exc)
                if reason != self._unavailable_reason:
                    log.warning("NVML failed to initialise: %s", reason)
            self._unavailable_reason = reason
            return False
        self._initialised = True
        self._init_failed_at = None
        self._unavailable_reason = ""
        version = self._call("nvmlSystemGetDriverVersion", self._nvml.nvmlSystemGetDriverVersion)
        self._driver_version = as_text(version) if version is not None else ""
        count = self._call("nvmlDeviceGetCount", self._nvml.nvmlDeviceGetCount)
        self._enumerate(count or 0)
        return True

    def _enumerate(self, count: int) -> None:
        self._handles, self._identities = [], []
        self._lost.clear()
        self._skip.clear()
        self._enumerate_again = False
        for index in range(count):
            handle = uuid = name = bus = None
            try:
                handle = self._handle(index)
                if handle is not None:
                    uuid = self._optional(index, "uuid", "nvmlDeviceGetUUID", handle)
                    name = self._optional(index, "name", "nvmlDeviceGetName", handle)
                    pci = self._optional(index, "pci", "nvmlDeviceGetPciInfo", handle)
                    bus = getattr(pci, "busId", None) if pci is not None else None
            except _GpuLost:
                self._lost.add(index)
            if index not in self._lost and (handle is None or uuid is None):
                self._enumerate_again = True  # a transient failure: try again next poll
            self._handles.append(handle)
            self._identities.append(GpuIdentity(index, as_text(uuid) or f"unknown-{index}",
                                                as_text(name) or "unknown", as_text(bus) or ""))

    def _handle(self, index: int) -> Any:
        call = "nvmlDeviceGetHandleByIndex"
        self._seen(call)
        try:
            return self._nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as exc:
            if is_nvml_error(exc, ("NVMLError_GpuIsLost",)):
                raise _GpuLost() from exc
            self._record_error(call, exc)
            return None

    def _read_gpu(self, index: int) -> GpuReading:
        ident, handle = self._identities[index], self._handles[index]
        if index in self._lost:
            return GpuReading(ident, lost=True)
        if handle is None:
            return GpuReading(ident)  # present but unreadable this time: no values, not lost
        try:
            return self._read_device(index, ident, handle)
        except _GpuLost:
            self._lost.add(index)
            log.error("GPU %d (%s) is lost: the driver reports it fell off the bus", index, ident.uuid)
            return GpuReading(ident, lost=True)

    def _read_device(self, i: int, ident: GpuIdentity, h: Any) -> GpuReading:
        opt = self._optional
        temp = opt(i, "temperature", "nvmlDeviceGetTemperatureV", h, _TEMPERATURE_GPU,
                   fallback="nvmlDeviceGetTemperature")
        power = opt(i, "power", "nvmlDeviceGetPowerUsage", h)
        limit = opt(i, "power_limit", "nvmlDeviceGetEnforcedPowerLimit", h)
        energy = opt(i, "energy", "nvmlDeviceGetTotalEnergyConsumption", h)
        util = opt(i, "utilization", "nvmlDeviceGetUtilizationRates", h)
        memory = opt(i, "memory", "nvmlDeviceGetMemoryInfo", h)
        clock = opt(i, "sm_clock", "nvmlDeviceGetClockInfo", h, _CLOCK_SM)
        reasons = opt(i, "clock_events", "nvmlDeviceGetCurrentClocksEventReasons", h,
                      fallback="nvmlDeviceGetCurrentClocksThrottleReasons")
        ecc_c = opt(i, "ecc", "nvmlDeviceGetTotalEccErrors", h, _ECC_CORRECTED, _VOLATILE_ECC)
        ecc_u = opt(i, "ecc", "nvmlDeviceGetTotalEccErrors", h, _ECC_UNCORRECTED, _VOLATILE_ECC)
        remap = opt(i, "remapped_rows", "nvmlDeviceGetRemappedRows", h)
        sbe = opt(i, "retired_pages", "nvmlDeviceGetRetiredPages", h, _RETIRED_SINGLE_BIT)
        dbe = opt(i, "retired_pages", "nvmlDeviceGetRetiredPages", h, _RETIRED_DOUBLE_BIT)
        pending = opt(i, "retired_pages_pending", "nvmlDeviceGetRetiredPagesPendingStatus", h)
        remap = tuple(remap) if remap is not None and len(remap) >= 4 else None
        return GpuReading(
            ident,
            temperature_c=float(temp) if temp is not None else None,
            power_w=power / 1000.0 if power is not None else None,
            power_limit_w=limit / 1000.0 if limit is not None else None,
            energy_j=energy / 1000.0 if energy is not None else None,
            utilization=util.gpu / 100.0 if util is not None else None,
            memory_utilization=util.memory / 100.0 if util is not None else None,
            memory_used_bytes=int(memory.used) if memory is not None else None,
            memory_total_bytes=int(memory.total) if memory is not None else None,
            sm_clock_hz=clock * 1e6 if clock is not None else None,
            clock_event_reasons=(tuple((name, bool(int(reasons) & bit)) for name, bit in CLOCK_EVENT_REASONS)
                                 if reasons is not None else None),
            ecc_corrected=int(ecc_c) if ecc_c is not None else None,
            ecc_uncorrected=int(ecc_u) if ecc_u is not None else None,
            remapped_rows_correctable=int(remap[0]) if remap else None,
            remapped_rows_uncorrectable=int(remap[1]) if remap else None,
            row_remap_pending=bool(remap[2]) if remap else None,
            row_remap_failure=bool(remap[3]) if remap else None,
            retired_pages_single_bit=len(sbe) if sbe is not None else None,
            retired_pages_double_bit=len(dbe) if dbe is not None else None,
            retired_pages_pending=bool(pending) if pending is not None else None,
        )

    # -- calls ---------------------------------------------------------------------------------

    def _optional(self, index: int, feature: str, call: str, *args: Any, fallback: str | None = None) -> Any:
        """One feature read: None when unsupported (remembered) or failed (counted)."""
        if (index, feature) in self._skip:
            return None
        call = self._fallback.get(call, call)
        fn = getattr(self._nvml, call, None)
        if fn is None and fallback is not None:  # an older pynvml without the newer call
            self._fallback[call] = fallback
            call = fallback
            fn = getattr(self._nvml, call, None)
        if fn is None:
            self._skip.add((index, feature))
            return None
        self._seen(call)
        try:
            return fn(*args)
        except Exception as exc:
            if is_nvml_error(exc, ("NVMLError_GpuIsLost",)):
                raise _GpuLost() from exc
            if fallback is not None and is_nvml_error(exc, ("NVMLError_FunctionNotFound",)):
                self._fallback[call] = fallback  # an older driver: use the older call from now on
                return self._optional(index, feature, fallback, *args)
            if is_nvml_error(exc, _SKIP_ERRORS):
                self._skip.add((index, feature))
                log.debug("GPU %d: %s skipped: %s", index, feature, describe_error(exc))
                return None
            self._record_error(call, exc)
            return None

    def _call(self, call: str, fn: Callable[..., Any], *args: Any) -> Any:
        self._seen(call)
        try:
            return fn(*args)
        except Exception as exc:
            self._record_error(call, exc)
            return None

    def _seen(self, call: str) -> None:
        self.current_call = call
        if call not in self._seen_calls:  # so `increase()` over the error counter sees the first failure
            self._seen_calls.add(call)
            with self._lock:
                self._error_counts.setdefault(call, 0)

    def _record_error(self, call: str, exc: BaseException) -> None:
        self.count_error(call)
        self._poll_errors.append((call, describe_error(exc)))
        if not is_nvml_error(exc, ("NVMLError",)):
            log.warning("%s raised %s (a bug or an unexpected NVML binding)", call, type(exc).__name__,
                        exc_info=exc)


def is_nvml_error(exc: BaseException, names: tuple[str, ...]) -> bool:
    """Whether ``exc`` is an instance of an NVML error class with one of these names.

    Compared by class name along the MRO, so it works for the real ``pynvml`` classes whichever
    module object raised them, and without hashing NVMLError (it defines __eq__ but no __hash__).
    """
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def describe_error(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # NVMLError.__str__ may call into a broken library
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\x00").strip()
    return str(value).strip()
