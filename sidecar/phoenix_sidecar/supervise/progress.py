"""The supervisor's side of progress: the tracker and the judge built from the settings, a run's
progress accounted in the state, and the GPUs' business and memory read from a GPU snapshot.

`phoenix_watchdog.progress` does the reading and the judging; this module only wires it to the
settings, the state (`ProgressStatus`, kept in state.json so the learned pace and the best step
survive a restart of the job or of Phoenix) and the gates' latest NVML snapshot. The GPUs a job
uses are those ``CUDA_VISIBLE_DEVICES`` names (indices or UUIDs) in Phoenix's environment, or
every GPU when it is unset.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Mapping

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.supervise.state import ProgressStatus
from phoenix_watchdog.diagnosis.categories import Category
from phoenix_watchdog.diagnosis.failure import Diagnosis
from phoenix_watchdog.diagnosis.signature import make_signature
from phoenix_watchdog.heartbeat import Heartbeat
from phoenix_watchdog.probes.gpu import GpuReading, GpuSnapshot
from phoenix_watchdog.progress import (Divergence, HangJudge, LearnedTimeout, ProgressParser, ProgressSnapshot,
                                      ProgressTracker)

__all__ = ["attach_tracker", "diverged_diagnosis", "end_of_run", "gpus_busy", "make_judge", "memory_by_gpu",
           "publish", "reclaimed", "wait_reclaimed"]
log = logging.getLogger(__name__)
MIB = 2**20


def attach_tracker(settings: Settings, heartbeat: Heartbeat, status: ProgressStatus, *,
                   clock: Callable[[], float], wall: Callable[[], float]) -> ProgressTracker | None:
    """Give ``heartbeat`` a progress tracker (unless it has one, or progress is off), primed with the
    pace learned by earlier runs."""
    if heartbeat.progress is not None or not settings.progress:
        return heartbeat.progress
    heartbeat.progress = ProgressTracker(
        ProgressParser(settings.progress_pattern or None), safety_factor=settings.progress_safety_factor,
        warmup_steps=settings.progress_warmup_steps, timeout_min=settings.progress_timeout_min_seconds,
        timeout_max=settings.progress_timeout_max_seconds, learned=LearnedTimeout(list(status.intervals)),
        blowup_factor=settings.loss_blowup_factor or math.inf, blowup_steps=settings.loss_blowup_steps,
        slowdown_fraction=settings.slowdown_fraction, slowdown_seconds=settings.slowdown_min * 60.0,
        clock=clock, wall=wall)
    return heartbeat.progress


def make_judge(settings: Settings, heartbeat: Heartbeat, snapshot: Callable[[], GpuSnapshot | None], *,
               clock: Callable[[], float], environ: Mapping[str, str] | None = None) -> HangJudge:
    """The hang judge: silence and no progress, deferred up to ``busy_grace_min`` while the job's GPUs are busy."""
    percent = settings.busy_gpu_util_percent
    env = os.environ if environ is None else environ
    return HangJudge(heartbeat, busy=lambda: gpus_busy(snapshot(), percent, env) if percent > 0 else None,
                     busy_grace=settings.busy_grace_min * 60.0 if percent > 0 else 0.0, clock=clock)


def _job_gpus(snapshot: GpuSnapshot, environ: Mapping[str, str]) -> list[GpuReading]:
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    gpus = [g for g in snapshot.gpus if not g.lost]
    if visible is None or not visible.strip():
        return gpus
    names = {v.strip() for v in visible.split(",") if v.strip()}
    return [g for g in gpus if str(g.identity.index) in names or g.identity.uuid in names]


def gpus_busy(snapshot: GpuSnapshot | None, percent: float, environ: Mapping[str, str] | None = None) -> bool | None:
    """True when a GPU of the job is above ``percent`` utilisation, False when none is, None without a reading."""
    if snapshot is None or not snapshot.available:
        return None
    values = [g.utilization for g in _job_gpus(snapshot, os.environ if environ is None else environ)
              if g.utilization is not None]
    if not values:
        return None
    return max(values) * 100.0 >= percent


def memory_by_gpu(snapshot: GpuSnapshot | None, environ: Mapping[str, str] | None = None) -> dict[str, int] | None:
    """Used memory per GPU of the job (by UUID), or None without a reading."""
    if snapshot is None or not snapshot.available:
        return None
    used = {g.identity.uuid: g.memory_used_bytes for g in _job_gpus(snapshot, os.environ if environ is None else environ)
            if g.memory_used_bytes is not None}
    return used or None


def reclaimed(baseline: Mapping[str, int], now: Mapping[str, int], tolerance_bytes: float) -> bool:
    """Every GPU's used memory is back within ``tolerance_bytes`` of what it was before the job started."""
    return all(now.get(uuid, 0) <= before + tolerance_bytes for uuid, before in baseline.items())


def publish(status: ProgressStatus, tracker: ProgressTracker | None) -> ProgressSnapshot | None:
    """Copy the tracker's view of the current run into the state (for `phoenix status` and the next run)."""
    if tracker is None:
        return None
    snap = tracker.snapshot()
    status.step, status.total, status.loss = snap.step, snap.total, _finite(snap.loss)
    status.run_best_step = snap.best_step
    status.steps_per_second = snap.steps_per_second
    status.last_progress = snap.last_progress_wall
    status.timeout_seconds = snap.timeout_seconds
    status.slowdown = snap.slowdown
    status.format = snap.fmt
    status.intervals = [round(i, 3) for i in tracker.learned.intervals]
    return snap


def end_of_run(status: ProgressStatus, tracker: ProgressTracker | None) -> bool | None:
    """Account a finished run: did it pass the best step before it? None when the job reports no steps."""
    snap = publish(status, tracker)
    if snap is None or (snap.best_step is None and status.best_step is None):
        return None
    if snap.best_step is None:
        return False
    progressed = status.best_step is None or snap.best_step > status.best_step
    if progressed:
        status.best_step = snap.best_step
    return progressed


def _finite(value: float | None) -> float | None:
    # state.json is JSON: NaN and infinity are not; the incident and the metric say what the loss was.
    return value if value is None or math.isfinite(value) else None


def wait_reclaimed(baseline: Mapping[str, int] | None, snapshot: Callable[[], GpuSnapshot | None], *,
                   timeout: float, tolerance_bytes: float, now: Callable[[], float],
                   sleep: Callable[[float], bool]) -> bool:
    """Before a restart: wait (at most ``timeout``) until the GPUs' memory is back near ``baseline``.

    A killed run's memory is freed by the driver a little after its processes are gone; a restart
    before that can fail with CUDA out of memory. Returns whether it was reclaimed (True as well
    when there is nothing to wait for); on a timeout the restart goes ahead anyway, with a warning.
    ``sleep`` returns False when a shutdown interrupts the wait.
    """
    if not baseline or timeout <= 0:
        return True
    deadline = now() + timeout
    while True:
        used = memory_by_gpu(snapshot())
        if used is None or reclaimed(baseline, used, tolerance_bytes):
            return True
        if now() >= deadline:
            log.warning("GPU memory not reclaimed after %.0fs (in use: %s; before the job: %s): restarting anyway",
                        timeout, _mib(used), _mib(baseline))
            return False
        if not sleep(min(1.0, max(0.0, deadline - now()))):
            return False


def diverged_diagnosis(diagnosis: Diagnosis, divergence: Divergence) -> Diagnosis:
    """The diagnosis of a run Phoenix stopped because its loss diverged (whatever its tail says)."""
    return dataclasses.replace(
        diagnosis, category=Category.NAN_DIVERGENCE, patchable=True, summary=divergence.detail,
        signature=make_signature(Category.NAN_DIVERGENCE, "progress", divergence.kind),
        message=diagnosis.message or divergence.detail, evidence=(divergence.detail, *diagnosis.evidence))


def _mib(used: Mapping[str, int]) -> str:
    return ", ".join(f"{v / MIB:.0f} MiB" for v in used.values())
