"""NVML reading, background sampling and the Xid watcher, against the fake NVML and the real pynvml."""

from __future__ import annotations

import threading
import time

import pynvml
import pytest

from phoenix_watchdog.probes.gpu import NvmlReader
from phoenix_watchdog.probes.gpu_poller import Sampler
from phoenix_watchdog.probes.gpu_xid import XidWatcher
from kits.waiting import HANG_GUARD, wait_for


def test_real_pynvml_without_a_driver_reads_as_no_gpu():
    reader = NvmlReader(pynvml)
    snap = reader.read()
    assert not snap.available
    assert snap.gpus == ()
    assert "Not Found" in snap.reason or "NotLoaded" in snap.reason or "Driver" in snap.reason
    assert snap.ok, "no driver is an answer, not a collector failure"
    assert reader.error_counts() == {}
    reader.close()


def test_eight_gpus_are_read_with_units_converted(fakenvml):
    nv = fakenvml.eight_gpus(temperature=71, power_mw=412_500, clock_reasons=0x4 | 0x40)
    snap = NvmlReader(nv).read()
    assert snap.available and snap.ok and len(snap.gpus) == 8
    g = snap.gpus[3]
    assert g.identity.index == 3 and g.identity.uuid == nv.gpus[3].uuid
    assert g.identity.model == "NVIDIA H100 80GB HBM3" and g.identity.pci_bus_id == "00000000:1B:00.0"
    assert g.temperature_c == 71 and g.power_w == 412.5 and g.power_limit_w == 700
    assert g.energy_j == pytest.approx(123_456.789) and g.utilization == 0.87 and g.memory_utilization == 0.41
    assert g.memory_total_bytes == 80 * 2**30 and g.sm_clock_hz == 1.98e9
    reasons = dict(g.clock_event_reasons)
    assert reasons["sw_power_cap"] and reasons["hw_thermal_slowdown"] and not reasons["gpu_idle"]
    assert snap.driver_version == "550.54.15"


def test_unsupported_features_are_skipped_and_not_asked_again(fakenvml):
    nv = fakenvml.FakeNvml([fakenvml.FakeGpu(0, unsupported={"nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetRetiredPages",
                                                             "nvmlDeviceGetTotalEnergyConsumption"})])
    reader = NvmlReader(nv)
    for _ in range(3):
        snap = reader.read()
    g = snap.gpus[0]
    assert snap.ok, "NotSupported is not a failure"
    assert g.ecc_uncorrected is None and g.retired_pages_double_bit is None and g.energy_j is None
    assert g.temperature_c == 45, "other features are still read"
    assert nv.calls["nvmlDeviceGetTotalEccErrors"] == 1, "an unsupported feature is asked once, then skipped"
    assert nv.calls["nvmlDeviceGetTemperatureV"] == 3


def test_old_driver_falls_back_to_the_deprecated_calls(fakenvml):
    gpu = fakenvml.FakeGpu(0, temperature=66, clock_reasons=0x20,
                           failing={"nvmlDeviceGetTemperatureV": pynvml.NVMLError_FunctionNotFound,
                                    "nvmlDeviceGetCurrentClocksEventReasons": pynvml.NVMLError_FunctionNotFound})
    nv = fakenvml.FakeNvml([gpu])
    reader = NvmlReader(nv)
    reader.read()
    g = reader.read().gpus[0]
    assert g.temperature_c == 66 and dict(g.clock_event_reasons)["sw_thermal_slowdown"]
    assert nv.calls["nvmlDeviceGetTemperatureV"] == 1 and nv.calls["nvmlDeviceGetTemperature"] == 2


def test_a_driver_that_raises_is_counted_per_call(fakenvml):
    gpu = fakenvml.FakeGpu(1, failing={"nvmlDeviceGetPowerUsage": pynvml.NVMLError_Unknown})
    nv = fakenvml.FakeNvml([fakenvml.FakeGpu(0), gpu])
    reader = NvmlReader(nv)
    reader.read()
    snap = reader.read()
    assert not snap.ok
    assert snap.errors == (("nvmlDeviceGetPowerUsage", "NVMLError_Unknown: Unknown Error"),)
    counts = reader.error_counts()
    assert {call: n for call, n in counts.items() if n} == {"nvmlDeviceGetPowerUsage": 2}
    assert counts["nvmlDeviceGetTemperatureV"] == 0, "every call made is counted from 0"
    assert snap.gpus[1].power_w is None and snap.gpus[0].power_w == 300
    assert snap.last_success_at is None, "no poll has succeeded yet"


def test_init_failure_other_than_no_driver_is_an_error_and_retried_later(fakenvml):
    nv = fakenvml.FakeNvml([fakenvml.FakeGpu(0)], init_error=pynvml.NVMLError_Unknown)
    now = [100.0]
    reader = NvmlReader(nv, retry_init_seconds=60, mono=lambda: now[0])
    assert not reader.read().ok
    reader.read()
    assert nv.calls["nvmlInit"] == 1, "not retried before retry_init_seconds"
    nv.init_error = None
    now[0] += 61
    snap = reader.read()
    assert snap.available and snap.ok and len(snap.gpus) == 1
    assert {call: n for call, n in reader.error_counts().items() if n} == {"nvmlInit": 1}


def test_a_lost_gpu_is_reported_and_no_longer_called(fakenvml):
    nv = fakenvml.eight_gpus()
    reader = NvmlReader(nv)
    reader.read()
    nv.gpus[5].lost = True
    calls = sum(nv.calls.values())
    snap = reader.read()
    after = sum(nv.calls.values())
    snap = reader.read()
    assert snap.gpus[5].lost and snap.gpus[5].temperature_c is None
    assert not snap.gpus[4].lost and snap.gpus[4].temperature_c == 45
    assert snap.ok, "a lost GPU is a hardware fact, reported as phoenix_gpu_lost, not a collector failure"
    per_poll_healthy = (after - calls) - 1  # the lost GPU's single failing call
    assert sum(nv.calls.values()) - after <= per_poll_healthy, "the lost GPU is not polled again"


def test_gpu_count_change_enumerates_again(fakenvml):
    nv = fakenvml.eight_gpus()
    reader = NvmlReader(nv)
    assert len(reader.read().gpus) == 8
    nv.count_override = 7
    assert len(reader.read().gpus) == 7


def test_close_shuts_nvml_down_once(fakenvml):
    nv = fakenvml.eight_gpus()
    reader = NvmlReader(nv)
    reader.read()
    assert nv.initialised == 1
    reader.close()
    reader.close()
    assert nv.initialised == 0


def test_sampler_reports_a_read_stuck_in_a_call_and_keeps_the_cached_value(fakenvml):
    nv = fakenvml.FakeNvml([fakenvml.FakeGpu(0, temperature=50)])
    reader = NvmlReader(nv)
    stalls = []
    sampler = Sampler(reader.read, 0.05, name="phoenix-test-sampler", deadline=0.2,
                      current_call=lambda: reader.current_call, on_stall=stalls.append)
    sampler.start()
    try:
        wait_for(lambda: sampler.latest is not None)
        nv.gpus[0].blocking.add("nvmlDeviceGetPowerUsage")
        nv.gpus[0].temperature = 99
        wait_for(nv.blocked.is_set)
        wait_for(lambda: sampler.health().stalled)
        health = sampler.health()
        assert health.stalled_call == "nvmlDeviceGetPowerUsage"
        assert stalls == ["nvmlDeviceGetPowerUsage"], "a stall is reported once"
        assert sampler.latest.gpus[0].temperature_c == 50, "the last complete reading is still served"
        assert not sampler.stop(timeout=0.2), "stop does not hang on a stuck read"
    finally:
        nv.gpus[0].blocking.clear()
        nv.release.set()
        assert sampler.stop(timeout=HANG_GUARD)
    assert not sampler.health().stalled


def test_sampler_measures_its_cpu_time():
    def busy() -> int:
        end = time.thread_time() + 0.01
        while time.thread_time() < end:
            pass
        return 1

    sampler = Sampler(busy, 0.01, name="phoenix-test-cpu", deadline=1)
    sampler.start()
    wait_for(lambda: sampler.health().samples >= 3)
    assert sampler.stop(timeout=HANG_GUARD)  # joined: samples and CPU time are final and agree
    health = sampler.health()
    assert health.cpu_seconds >= 0.01 * health.samples * 0.9


def test_xid_watcher_counts_events_per_gpu(fakenvml):
    nv = fakenvml.eight_gpus()
    seen = []
    watcher = XidWatcher(nv, on_event=seen.append, wait_ms=50)
    watcher.start()
    try:
        wait_for(lambda: watcher.state().watching)
        assert sorted(nv.registered) == list(range(8))
        before = time.time()
        nv.emit_xid(2, 79)
        nv.emit_xid(2, 13)
        nv.emit_xid(6, 48)
        wait_for(lambda: len(seen) == 3)
    finally:
        assert watcher.stop(timeout=HANG_GUARD)
    state = watcher.state()
    g2 = state.gpus[2]
    assert g2.count == 2 and g2.last_code == 13 and dict(g2.last_seen).keys() == {79, 13}
    assert dict(g2.last_seen)[79] >= before
    assert state.gpus[6].count == 1 and state.gpus[0].count == 0 and len(state.gpus) == 8
    assert [(e.gpu, e.xid) for e in seen] == [(2, 79), (2, 13), (6, 48)]
    assert nv.initialised == 0, "the watcher shuts its NVML reference down"
    assert nv.calls["nvmlEventSetFree"] == 1


def test_xid_watcher_survives_a_failing_wait(fakenvml):
    nv = fakenvml.FakeNvml([fakenvml.FakeGpu(0)])
    nv.wait_errors.append(pynvml.NVMLError_Unknown)
    seen = []
    watcher = XidWatcher(nv, on_event=seen.append, wait_ms=20)
    watcher.start()
    try:
        wait_for(lambda: watcher.state().error_counts.get("nvmlEventSetWait") == 1)
        nv.emit_xid(0, 94)
        wait_for(lambda: seen)
    finally:
        assert watcher.stop(timeout=HANG_GUARD)
    assert watcher.state().gpus[0].last_code == 94


def test_xid_watcher_where_events_are_unsupported(fakenvml):
    nv = fakenvml.FakeNvml([fakenvml.FakeGpu(0)], events_supported=False)
    watcher = XidWatcher(nv, wait_ms=20)
    watcher.start()
    wait_for(lambda: nv.calls["nvmlEventSetCreate"] == 1)
    assert watcher.stop(timeout=HANG_GUARD)
    assert not watcher.state().watching and watcher.state().error_counts == {}


def test_xid_watcher_without_a_driver_stops_during_its_retry_wait():
    tried = threading.Event()

    class RealPynvml:
        """The real module, telling when the watcher has tried (and failed) to init it."""

        def __getattr__(self, name):
            return getattr(pynvml, name)

        def nvmlInit(self):  # noqa: N802
            try:
                pynvml.nvmlInit()
            finally:
                tried.set()

    watcher = XidWatcher(RealPynvml(), retry_seconds=3600)
    watcher.start()
    wait_for(tried.is_set)
    # It now waits an hour before trying again; stop must cut that wait short (a stop that waited
    # it out would give up after the hang guard and return False).
    assert watcher.stop(timeout=HANG_GUARD)
    assert watcher.state().gpus == () and watcher.state().error_counts == {}


def test_threads_are_daemons_so_a_stuck_one_cannot_block_exit(fakenvml):
    nv = fakenvml.FakeNvml([fakenvml.FakeGpu(0)])
    sampler = Sampler(NvmlReader(nv).read, 1, name="phoenix-test-daemon", deadline=1)
    sampler.start()
    thread = next(t for t in threading.enumerate() if t.name == "phoenix-test-daemon")
    assert thread.daemon
    assert sampler.stop(timeout=HANG_GUARD)


def test_a_gpu_whose_handle_fails_once_is_not_lost_and_is_read_later(fakenvml):
    nv = fakenvml.FakeNvml([fakenvml.FakeGpu(0), fakenvml.FakeGpu(1)])
    real = nv.nvmlDeviceGetHandleByIndex
    failures = {1: 2}  # the enumeration at init and its retry in the same poll

    def flaky(index):
        if failures.get(index):
            failures[index] -= 1
            raise pynvml.NVMLError_Unknown()
        return real(index)

    nv.nvmlDeviceGetHandleByIndex = flaky
    reader = NvmlReader(nv)
    first = reader.read()
    assert not first.ok and len(first.gpus) == 2
    assert not first.gpus[1].lost and first.gpus[1].temperature_c is None
    second = reader.read()
    assert second.ok and second.gpus[1].temperature_c == 45 and second.gpus[1].identity.uuid == nv.gpus[1].uuid


def test_a_gpu_lost_before_enumeration(fakenvml):
    nv = fakenvml.eight_gpus()
    nv.gpus[6].lost = True
    snap = NvmlReader(nv).read()
    assert snap.gpus[6].lost and snap.gpus[6].identity.uuid == "unknown-6"
    assert [g.lost for g in snap.gpus].count(True) == 1 and snap.ok
