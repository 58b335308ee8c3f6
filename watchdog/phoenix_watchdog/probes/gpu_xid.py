"""Xid events: the driver's reports of GPU faults, received through NVML's event API.

A thread of its own blocks in ``nvmlEventSetWait`` (with a short timeout, so it can stop), apart
from the metric poller, so Xid counts stay current even while a poll is stuck or failing. Events
that happen before registration are not delivered by NVML; an Xid is counted from the moment the
watcher runs. The thread initialises NVML itself (NVML reference-counts ``nvmlInit``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from phoenix_watchdog.probes.gpu import as_text, describe_error, is_nvml_error
from phoenix_watchdog.worker import Worker

log = logging.getLogger(__name__)
_NOTHING_TO_WATCH = object()

EVENT_XID_CRITICAL = 0x8  # nvmlEventTypeXidCriticalError
MAX_CODES_PER_GPU = 32  # bounds the `xid` label: NVIDIA's Xid list is short, a flood is not

# What the common Xids mean, for humans (NVIDIA's Xid catalogue); the rest are shown by number.
XID_MEANINGS = {
    13: "graphics engine exception (usually the application)",
    31: "GPU memory page fault (usually the application)",
    43: "GPU stopped processing (usually the application)",
    45: "preemptive cleanup after an earlier error",
    48: "double-bit ECC error",
    61: "internal micro-controller breakpoint",
    62: "internal micro-controller halt",
    63: "ECC page retirement or row remapping recorded",
    64: "ECC page retirement or row remapping failed",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC error rate",
    94: "contained ECC error",
    95: "uncontained ECC error",
    119: "GSP RPC timeout",
    120: "GSP error",
}


@dataclass(frozen=True)
class XidEvent:
    gpu: int | None  # None when the event's device could not be matched to an index
    uuid: str
    xid: int
    at: float


@dataclass(frozen=True)
class XidGpu:
    """Xid history of one GPU since the watcher started."""

    index: int
    uuid: str
    count: int = 0
    last_code: int = 0
    last_seen: tuple[tuple[int, float], ...] = ()  # (xid, wall time of its last event)


@dataclass(frozen=True)
class XidState:
    watching: bool  # registered for Xid events on at least one GPU
    gpus: tuple[XidGpu, ...]
    error_counts: dict[str, int]


class XidWatcher:
    """Counts Xid events per GPU in a daemon thread.

    Args:
        nvml: the ``pynvml`` module or a stand-in; None: nothing to watch.
        on_event: called in the watcher thread for every Xid (keep it quick).
        wait_ms: how long one ``nvmlEventSetWait`` blocks; bounds how long `stop` takes.
        retry_seconds: how often a failed set-up (no driver yet) is tried again.
    """

    def __init__(self, nvml: ModuleType | Any | None, *, on_event: Callable[[XidEvent], None] | None = None,
                 wait_ms: int = 500, retry_seconds: float = 60.0, wall: Callable[[], float] = time.time) -> None:
        self._nvml = nvml
        self._on_event = on_event
        self._wait_ms = wait_ms
        self._retry = retry_seconds
        self._wall = wall
        self._lock = threading.Lock()
        self._worker = Worker(self._run, "phoenix-xid")
        self._stop = self._worker.stopping
        self._watching = False
        self._gpus: dict[int, dict[str, Any]] = {}
        self._by_uuid: dict[str, int] = {}
        self._errors: dict[str, int] = {}

    def start(self) -> None:
        if self._nvml is not None:
            self._worker.start()

    def stop(self, timeout: float = 2.0) -> bool:
        if self._worker.stop(timeout):
            return True
        log.warning("Xid watcher is stuck in NVML; leaving its thread behind")
        return False

    def state(self) -> XidState:
        with self._lock:
            gpus = tuple(XidGpu(i, g["uuid"], g["count"], g["last_code"], tuple(g["last_seen"].items()))
                         for i, g in sorted(self._gpus.items()))
            return XidState(self._watching, gpus, dict(self._errors))

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            event_set = self._setup()
            if event_set is _NOTHING_TO_WATCH:
                return
            if event_set is None:
                self._stop.wait(self._retry)  # no driver yet: it may be loaded later
                continue
            try:
                self._watch(event_set)
            finally:
                with self._lock:
                    self._watching = False
                self._quietly("nvmlEventSetFree", event_set)
                self._quietly("nvmlShutdown")
            return

    def _setup(self) -> Any:
        """Init NVML and register every GPU: the event set, None to retry, or _NOTHING_TO_WATCH."""
        nv = self._nvml
        try:
            nv.nvmlInit()
        except Exception as exc:
            if not is_nvml_error(exc, ("NVMLError_LibraryNotFound", "NVMLError_DriverNotLoaded")):
                self._count("nvmlInit", exc)
            return None
        try:
            event_set = nv.nvmlEventSetCreate()
        except Exception as exc:
            self._quietly("nvmlShutdown")
            if is_nvml_error(exc, ("NVMLError_NotSupported", "NVMLError_FunctionNotFound")):
                log.info("Xid events are not supported here: %s", describe_error(exc))
                return _NOTHING_TO_WATCH
            self._count("nvmlEventSetCreate", exc)
            return None
        registered = 0
        try:
            count = nv.nvmlDeviceGetCount()
        except Exception as exc:
            self._count("nvmlDeviceGetCount", exc)
            count = 0
        for index in range(count):
            try:
                handle = nv.nvmlDeviceGetHandleByIndex(index)
                uuid = as_text(nv.nvmlDeviceGetUUID(handle)) or f"unknown-{index}"
            except Exception as exc:
                self._count("nvmlDeviceGetHandleByIndex", exc)
                continue
            with self._lock:
                self._gpus.setdefault(index, {"uuid": uuid, "count": 0, "last_code": 0, "last_seen": {}})
                self._by_uuid[uuid] = index
            try:
                nv.nvmlDeviceRegisterEvents(handle, EVENT_XID_CRITICAL, event_set)
                registered += 1
            except Exception as exc:
                if is_nvml_error(exc, ("NVMLError_NotSupported",)):
                    log.info("GPU %d does not report Xid events", index)
                else:
                    self._count("nvmlDeviceRegisterEvents", exc)
        if registered == 0:
            self._quietly("nvmlEventSetFree", event_set)
            self._quietly("nvmlShutdown")
            return _NOTHING_TO_WATCH
        with self._lock:
            self._watching = True
            for call in ("nvmlDeviceRegisterEvents", "nvmlEventSetWait"):
                self._errors.setdefault(call, 0)  # counted from 0, so `increase()` sees the first failure
        return event_set

    def _watch(self, event_set: Any) -> None:
        nv = self._nvml
        while not self._stop.is_set():
            try:
                data = nv.nvmlEventSetWait(event_set, self._wait_ms)
            except Exception as exc:
                if is_nvml_error(exc, ("NVMLError_Timeout",)):
                    continue
                self._count("nvmlEventSetWait", exc)
                self._stop.wait(1.0)  # a failing wait must not spin
                continue
            if int(getattr(data, "eventType", 0)) & EVENT_XID_CRITICAL:
                self._record(data)

    def _record(self, data: Any) -> None:
        code, at = int(getattr(data, "eventData", 0)), self._wall()
        try:
            uuid = as_text(self._nvml.nvmlDeviceGetUUID(data.device))
        except Exception:
            uuid = ""
        with self._lock:
            index = self._by_uuid.get(uuid)
            if index is not None:
                gpu = self._gpus[index]
                gpu["count"] += 1
                gpu["last_code"] = code
                seen = gpu["last_seen"]
                seen.pop(code, None)
                seen[code] = at
                while len(seen) > MAX_CODES_PER_GPU:
                    seen.pop(next(iter(seen)))  # forget the code seen longest ago
        meaning = XID_MEANINGS.get(code, "see NVIDIA's Xid catalogue")
        log.error("Xid %d on GPU %s (%s): %s", code, index if index is not None else "?", uuid or "unknown", meaning)
        if self._on_event is not None:
            try:
                self._on_event(XidEvent(index, uuid, code, at))
            except Exception:
                log.exception("Xid event handler failed")

    def _count(self, call: str, exc: BaseException) -> None:
        log.warning("%s failed: %s", call, describe_error(exc))
        with self._lock:
            self._errors[call] = self._errors.get(call, 0) + 1

    def _quietly(self, call: str, *args: Any) -> None:
        try:
            getattr(self._nvml, call)(*args)
        except Exception as exc:
            log.debug("%s failed: %s", call, describe_error(exc))
