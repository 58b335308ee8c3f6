"""The hardware safety gates, pure: thresholds, persistence, hysteresis, latching."""

from __future__ import annotations

from dataclasses import replace

import pytest

from phoenix_sidecar.observe.gates import GIB, GateLimits, SafetyGates
from phoenix_sidecar.config.schema import Settings
from phoenix_watchdog.probes.disk import DiskSnapshot, DiskUsage
from phoenix_watchdog.probes.gpu import GpuIdentity, GpuReading, GpuSnapshot
from phoenix_watchdog.probes.gpu_xid import XidEvent


def gpu(index: int = 0, **fields) -> GpuReading:
    base = dict(temperature_c=60.0, power_w=300.0, power_limit_w=700.0, ecc_uncorrected=0, row_remap_failure=False)
    base.update(fields)
    return GpuReading(GpuIdentity(index, f"GPU-{index}", "H100", ""), **base)


def snap(*gpus: GpuReading) -> GpuSnapshot:
    return GpuSnapshot(available=True, gpus=gpus)


def temps(gates: SafetyGates, *values: float, index: int = 0) -> list:
    changes = []
    for v in values:
        changes += gates.observe_gpus(snap(gpu(index, temperature_c=v)))
    return changes


def test_limits_come_from_the_settings():
    lim = GateLimits.from_settings(Settings(gpu_max_temp_c=80, gpu_max_power_ratio=0.9, min_free_disk_gb=2.5,
                                            stop_on_gpu_errors=False))
    assert (lim.max_temp_c, lim.max_power_ratio, lim.min_free_bytes, lim.stop_on_gpu_errors) == (80, 0.9, int(2.5 * GIB), False)


def test_one_hot_sample_does_not_trip():
    gates = SafetyGates(GateLimits())
    assert temps(gates, 60, 95, 60, 95, 95, 60) == []
    assert gates.current() is None


def test_temperature_trips_after_three_consecutive_samples_over_the_limit():
    gates = SafetyGates(GateLimits())
    assert temps(gates, 86, 90) == []
    [change] = temps(gates, 91)
    assert change.gate == "gpu_temperature" and change.tripped
    trip = gates.current()
    assert trip.gate == "gpu_temperature" and trip.recoverable
    assert trip.detail == "GPU 0 at 91 °C (limit 85 °C)"


def test_exactly_at_the_limit_is_not_over():
    gates = SafetyGates(GateLimits())
    assert temps(gates, 85, 85, 85, 85) == []


def test_temperature_clears_only_below_the_margin_for_three_samples():
    gates = SafetyGates(GateLimits())
    temps(gates, 90, 90, 90)
    assert temps(gates, 84, 82, 81, 83) == [], "inside the 5 °C margin the gate holds"
    assert temps(gates, 80, 79) == []
    assert temps(gates, 86, 70, 70) == [], "a hot sample restarts the count"
    [change] = temps(gates, 70)
    assert not change.tripped and gates.current() is None


def test_every_gpu_counts_on_its_own_and_all_must_cool_down():
    gates = SafetyGates(GateLimits())
    for _ in range(2):
        gates.observe_gpus(snap(gpu(0, temperature_c=90), gpu(1, temperature_c=60)))
    gates.observe_gpus(snap(gpu(0, temperature_c=60), gpu(1, temperature_c=90)))
    assert gates.current() is None, "two GPUs over the limit in turn are not three samples of one GPU"
    for _ in range(3):
        gates.observe_gpus(snap(gpu(0, temperature_c=60), gpu(1, temperature_c=90)))
    assert "GPU 1" in gates.current().detail
    for _ in range(5):
        gates.observe_gpus(snap(gpu(0, temperature_c=60), gpu(1, temperature_c=84)))
    assert gates.current() is not None, "GPU 1 is still inside the margin"


def test_power_gate_is_off_by_default_and_uses_the_enforced_limit():
    hot = snap(gpu(0, power_w=690.0, power_limit_w=700.0))
    gates = SafetyGates(GateLimits())
    for _ in range(5):
        gates.observe_gpus(hot)
    assert gates.current() is None
    gates = SafetyGates(GateLimits(max_power_ratio=0.95))
    for _ in range(3):
        gates.observe_gpus(hot)
    assert gates.current().gate == "gpu_power"
    assert gates.current().detail == "GPU 0 drawing 690 W, 99% of its 700 W limit (limit 95%)"
    for _ in range(3):
        gates.observe_gpus(snap(gpu(0, power_w=640.0, power_limit_w=700.0)))  # 91%: inside the margin
    assert gates.current() is not None
    for _ in range(3):
        gates.observe_gpus(snap(gpu(0, power_w=600.0, power_limit_w=700.0)))
    assert gates.current() is None


def test_temperature_gate_can_be_turned_off():
    gates = SafetyGates(GateLimits(max_temp_c=0))
    assert temps(gates, 120, 120, 120) == []


def test_disk_trips_after_two_low_readings_and_clears_with_margin():
    gates = SafetyGates(GateLimits(min_free_bytes=10 * GIB))
    low = DiskSnapshot((DiskUsage("/ws", 3 * GIB, 100 * GIB), DiskUsage("/logs", 50 * GIB, 100 * GIB)))
    assert gates.observe_disks(low) == []
    [change] = gates.observe_disks(low)
    assert change.tripped and gates.current().detail == "/ws has 3.0 GiB free (minimum 10 GiB)"
    barely = DiskSnapshot((DiskUsage("/ws", int(10.5 * GIB), 100 * GIB),))
    for _ in range(4):
        assert gates.observe_disks(barely) == [], "10.5 GiB is inside the 1 GiB margin"
    ok = DiskSnapshot((DiskUsage("/ws", 12 * GIB, 100 * GIB),))
    gates.observe_disks(ok)
    gates.observe_disks(ok)
    [change] = gates.observe_disks(ok)
    assert not change.tripped and gates.current() is None


def test_unreadable_volume_neither_trips_nor_clears():
    gates = SafetyGates(GateLimits())
    gone = DiskSnapshot((DiskUsage("/ws", 0, 0, error="No such file or directory"),))
    for _ in range(5):
        assert gates.observe_disks(gone) == []


def test_new_uncorrectable_ecc_errors_trip_at_once_and_never_clear():
    gates = SafetyGates(GateLimits())
    gates.observe_gpus(snap(gpu(0, ecc_uncorrected=2)))  # errors from before Phoenix started: the baseline
    assert gates.current() is None
    [change] = gates.observe_gpus(snap(gpu(0, ecc_uncorrected=3)))
    trip = change.trip
    assert trip.gate == "gpu_errors" and not trip.recoverable and trip.detail == "GPU 0: 1 new uncorrectable ECC error"
    for _ in range(10):
        assert gates.observe_gpus(snap(gpu(0, ecc_uncorrected=3))) == []
    assert gates.current() == trip


def test_gpu_errors_outrank_temperature():
    gates = SafetyGates(GateLimits())
    for _ in range(3):
        gates.observe_gpus(snap(gpu(0, temperature_c=95)))
    gates.observe_xid(XidEvent(0, "GPU-0", 79, 1.0))
    assert gates.current().gate == "gpu_errors"
    assert set(gates.trips()) == {"gpu_temperature", "gpu_errors"}


@pytest.mark.parametrize("xid, trips", [(79, True), (48, True), (95, True), (13, False), (31, False), (94, False)])
def test_only_hardware_xids_trip(xid, trips):
    gates = SafetyGates(GateLimits())
    changes = gates.observe_xid(XidEvent(2, "GPU-2", xid, 1.0))
    assert bool(changes) is trips
    if trips:
        assert gates.current().detail.startswith(f"GPU 2 reported Xid {xid}: ")


def test_stop_on_gpu_errors_off_ignores_them():
    gates = SafetyGates(GateLimits(stop_on_gpu_errors=False))
    gates.observe_gpus(snap(gpu(0, ecc_uncorrected=0)))
    gates.observe_gpus(snap(gpu(0, ecc_uncorrected=9), gpu(1, lost=True)))
    gates.observe_xid(XidEvent(0, "GPU-0", 79, 1.0))
    assert gates.current() is None


def test_a_lost_gpu_or_a_vanished_one_trips_gpu_errors():
    gates = SafetyGates(GateLimits())
    gates.observe_gpus(snap(gpu(0), gpu(1)))
    gates.observe_gpus(snap(gpu(0), replace(gpu(1), lost=True)))
    assert gates.current().detail == "GPU 1 (GPU-1) is lost: it fell off the bus"
    gates = SafetyGates(GateLimits())
    gates.observe_gpus(snap(gpu(0), gpu(1)))
    gates.observe_gpus(snap(gpu(0)))
    assert "disappeared" in gates.current().detail


def test_row_remap_failure_trips_when_it_appears():
    gates = SafetyGates(GateLimits())
    gates.observe_gpus(snap(gpu(0, row_remap_failure=False)))
    gates.observe_gpus(snap(gpu(0, row_remap_failure=True)))
    assert gates.current().detail == "GPU 0: memory row remapping failed"


def test_ecc_counter_reset_by_a_driver_reload_is_not_new_errors():
    gates = SafetyGates(GateLimits())
    gates.observe_gpus(snap(gpu(0, ecc_uncorrected=5)))
    gates.observe_gpus(snap(gpu(0, ecc_uncorrected=0)))
    gates.observe_gpus(snap(gpu(0, ecc_uncorrected=0)))
    assert gates.current() is None
    gates.observe_gpus(snap(gpu(0, ecc_uncorrected=1)))
    assert gates.current().gate == "gpu_errors"


def test_no_gpu_means_no_gpu_gate():
    gates = SafetyGates(GateLimits())
    assert gates.observe_gpus(GpuSnapshot(available=False, reason="NVML Shared Library Not Found")) == []
    assert gates.current() is None
