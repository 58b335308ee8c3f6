"""A stand-in for the ``pynvml`` module, faked exactly at its function boundary.

`FakeNvml` exposes the same function names as nvidia-ml-py and raises the real
``pynvml.NVMLError_*`` classes; every other attribute (constants, error classes) is the real
module's. Each `FakeGpu` scripts one device: its readings, the features it lacks, calls that fail,
calls that block until released, and whether it has fallen off the bus.

Loaded by ``tests/kits/observe.py`` (fixture ``fakenvml``) and by ``bench/bench_metrics.py``.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml

GIB = 2**30


@dataclass
class FakeGpu:
    """One scripted GPU. ``unsupported``/``failing``/``blocking`` name pynvml functions."""

    index: int
    name: str = "NVIDIA H100 80GB HBM3"
    temperature: int = 45
    power_mw: int = 300_000
    power_limit_mw: int = 700_000
    energy_mj: int = 123_456_789
    util_gpu: int = 87
    util_mem: int = 41
    mem_total: int = 80 * GIB
    mem_used: int = 60 * GIB
    sm_clock_mhz: int = 1980
    clock_reasons: int = 0
    ecc_corrected: int = 0
    ecc_uncorrected: int = 0
    remapped: tuple[int, int, int, int] = (0, 0, 0, 0)
    retired_sbe: int = 0
    retired_dbe: int = 0
    retired_pending: int = 0
    lost: bool = False
    unsupported: set[str] = field(default_factory=set)
    failing: dict[str, type[pynvml.NVMLError]] = field(default_factory=dict)
    blocking: set[str] = field(default_factory=set)

    @property
    def uuid(self) -> str:
        return f"GPU-{self.index:08d}-fake-4000-8000-000000000000"


class FakeNvml:
    """The fake module. ``init_error`` makes nvmlInit raise that class (no driver, no library)."""

    def __init__(self, gpus: list[FakeGpu], *, init_error: type[pynvml.NVMLError] | None = None,
                 driver_version: str = "550.54.15", events_supported: bool = True) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.driver_version = driver_version
        self.events_supported = events_supported
        self.calls: Counter[str] = Counter()
        self.release = threading.Event()  # set it to let every blocked call return
        self.blocked = threading.Event()  # set when a call starts blocking
        self.initialised = 0
        self.events: queue.Queue[SimpleNamespace] = queue.Queue()
        self.registered: list[int] = []
        self.count_override: int | None = None
        self.wait_errors: list[type[pynvml.NVMLError]] = []  # raised by the next nvmlEventSetWait calls
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        # Error classes and constants come from the real module; unknown nvml* functions do not exist.
        value = getattr(pynvml, name)
        if name.startswith("nvml") and callable(value):
            raise AttributeError(f"FakeNvml has no {name}")
        return value

    # -- helpers -------------------------------------------------------------------------------

    def _enter(self, name: str, gpu: FakeGpu | None = None) -> None:
        with self._lock:
            self.calls[name] += 1
        if gpu is None:
            return
        if gpu.lost:
            raise pynvml.NVMLError_GpuIsLost()
        if name in gpu.blocking:
            self.blocked.set()
            self.release.wait()
        if name in gpu.unsupported:
            raise pynvml.NVMLError_NotSupported()
        if name in gpu.failing:
            raise gpu.failing[name]()

    def _gpu(self, handle: Any) -> FakeGpu:
        return self.gpus[handle.index]

    def emit_xid(self, index: int, xid: int) -> None:
        """The driver reports Xid ``xid`` on GPU ``index``."""
        self.events.put(SimpleNamespace(device=SimpleNamespace(index=index), eventType=pynvml.nvmlEventTypeXidCriticalError,
                                        eventData=xid, gpuInstanceId=0xFFFFFFFF, computeInstanceId=0xFFFFFFFF))

    # -- library -------------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self._enter("nvmlInit")
        if self.init_error is not None:
            raise self.init_error()
        with self._lock:
            self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        with self._lock:
            self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._enter("nvmlSystemGetDriverVersion")
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.gpus) if self.count_override is None else self.count_override

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimpleNamespace:
        self._enter("nvmlDeviceGetHandleByIndex")
        if index >= len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        return SimpleNamespace(index=index)

    # -- device reads --------------------------------------------------------------------------

    def nvmlDeviceGetUUID(self, h: Any) -> str:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetUUID", g)
        return g.uuid

    def nvmlDeviceGetName(self, h: Any) -> str:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetName", g)
        return g.name

    def nvmlDeviceGetPciInfo(self, h: Any) -> SimpleNamespace:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetPciInfo", g)
        return SimpleNamespace(busId=f"00000000:{0x18 + g.index:02X}:00.0".encode())

    def nvmlDeviceGetTemperatureV(self, h: Any, sensor: int) -> int:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetTemperatureV", g)
        return g.temperature

    def nvmlDeviceGetTemperature(self, h: Any, sensor: int) -> int:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetTemperature", g)
        return g.temperature

    def nvmlDeviceGetPowerUsage(self, h: Any) -> int:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetPowerUsage", g)
        return g.power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, h: Any) -> int:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetEnforcedPowerLimit", g)
        return g.power_limit_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, h: Any) -> int:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetTotalEnergyConsumption", g)
        return g.energy_mj

    def nvmlDeviceGetUtilizationRates(self, h: Any) -> SimpleNamespace:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetUtilizationRates", g)
        return SimpleNamespace(gpu=g.util_gpu, memory=g.util_mem)

    def nvmlDeviceGetMemoryInfo(self, h: Any) -> SimpleNamespace:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetMemoryInfo", g)
        return SimpleNamespace(total=g.mem_total, used=g.mem_used, free=g.mem_total - g.mem_used)

    def nvmlDeviceGetClockInfo(self, h: Any, clock: int) -> int:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetClockInfo", g)
        return g.sm_clock_mhz

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: Any) -> int:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetCurrentClocksEventReasons", g)
        return g.clock_reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h: Any) -> int:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetCurrentClocksThrottleReasons", g)
        return g.clock_reasons

    def nvmlDeviceGetTotalEccErrors(self, h: Any, error_type: int, counter_type: int) -> int:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetTotalEccErrors", g)
        return g.ecc_uncorrected if error_type == pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED else g.ecc_corrected

    def nvmlDeviceGetRemappedRows(self, h: Any) -> tuple[int, int, int, int]:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetRemappedRows", g)
        return g.remapped

    def nvmlDeviceGetRetiredPages(self, h: Any, cause: int) -> list[int]:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetRetiredPages", g)
        n = g.retired_dbe if cause == pynvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR else g.retired_sbe
        return list(range(0x1000, 0x1000 + n))

    def nvmlDeviceGetRetiredPagesPendingStatus(self, h: Any) -> int:
        g = self._gpu(h)
        self._enter("nvmlDeviceGetRetiredPagesPendingStatus", g)
        return g.retired_pending

    # -- events --------------------------------------------------------------------------------

    def nvmlEventSetCreate(self) -> SimpleNamespace:
        self._enter("nvmlEventSetCreate")
        if not self.events_supported:
            raise pynvml.NVMLError_NotSupported()
        return SimpleNamespace(kind="event set")

    def nvmlDeviceRegisterEvents(self, h: Any, event_types: int, event_set: Any) -> None:
        g = self._gpu(h)
        self._enter("nvmlDeviceRegisterEvents", g)
        self.registered.append(g.index)

    def nvmlEventSetWait(self, event_set: Any, timeout_ms: int) -> SimpleNamespace:
        self._enter("nvmlEventSetWait")
        if self.wait_errors:
            raise self.wait_errors.pop(0)()
        try:
            return self.events.get(timeout=timeout_ms / 1000.0)
        except queue.Empty:
            raise pynvml.NVMLError_Timeout() from None

    def nvmlEventSetFree(self, event_set: Any) -> None:
        self._enter("nvmlEventSetFree")


def eight_gpus(**overrides: Any) -> FakeNvml:
    """An 8-GPU H100 node, every feature supported, all healthy."""
    return FakeNvml([FakeGpu(i, **overrides) for i in range(8)])
