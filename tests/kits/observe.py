"""Fixtures of the observe tests (unit and integration): the fake NVML module, a full scrape, and a
check that no Phoenix thread outlives its test.

A tier's ``conftest.py`` imports these names, which makes them fixtures of that folder.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from kits.waiting import HANG_GUARD, wait_for


def load_fakenvml() -> ModuleType:
    """The fake NVML module (``kits.fakenvml``), fresh state per fixture user is the caller's job."""
    from kits import fakenvml as module

    return module


@pytest.fixture
def fakenvml() -> ModuleType:
    return load_fakenvml()


def _phoenix_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("phoenix-")}


@pytest.fixture(autouse=True)
def _no_thread_left_behind() -> Iterator[None]:
    before = _phoenix_threads()
    yield
    # A thread that was told to stop may still be on its way out on a loaded machine: wait for it
    # to go. Only a thread still there after the hang guard is one left running.
    deadline = time.monotonic() + HANG_GUARD
    while (left := _phoenix_threads() - before) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not left, f"threads left running after the test: {sorted(t.name for t in left)}"


@pytest.fixture(scope="session")
def full_scrape() -> str:
    """The exposition of a fully exercised Phoenix (8 fake GPUs, every event, an Xid, a disk)."""
    from prometheus_client import generate_latest

    from phoenix_sidecar import events as ev
    from phoenix_sidecar.observe.observability import Observability
    from phoenix_sidecar.config.schema import Settings
    from phoenix_sidecar.runtime.base import EngineJob
    from phoenix_watchdog.heartbeat import Heartbeat

    nv = load_fakenvml().eight_gpus()
    from phoenix_watchdog.progress import ProgressTracker

    bus, hb = ev.EventBus(), Heartbeat(60.0, progress=ProgressTracker(warmup_steps=0, timeout_min=1.0))
    obs = Observability(Settings(metrics_addr="", gpu_poll_seconds=0.1, gpu_max_power_ratio=0.95), bus, hb,
                        target="t", disk_paths=[str(Path(__file__).parent)], nvml=nv,
                        engine_job=lambda: EngineJob("slurm", "7", "RUNNING", ("n1",), ("n2",), 1, 1))
    obs.start()
    try:
        hb.beat("stdout")
        hb.beat("stderr")
        for step in range(1, 6):  # every progress series: step, pace, loss, learned timeout
            time.sleep(0.01)
            hb.beat("stdout", f"step {step} loss={1.0 / step:.3f}\n".encode())
        for event in (ev.JobStarted(1, "pid 1"), ev.IncidentOpened(1, "crash", "code_bug", "s", "x"),
                      ev.LlmCalled("gemini_cli", 1.0, True), ev.VerificationFinished(1.0, True, "test_cmd")):
            bus.emit(event)
        obs.loop_tick()
        wait_for(lambda: obs._xid.state().watching, "the Xid watcher watching")  # noqa: SLF001 (test helper)
        nv.emit_xid(0, 79)
        wait_for(lambda: obs.registry.get_sample_value("phoenix_gpu_xid_last_code",
                                                       {"gpu": "0", "uuid": nv.gpus[0].uuid}) == 79
                 and obs.registry.get_sample_value("phoenix_disk_free_bytes",
                                                   {"path": str(Path(__file__).parent)}) is not None,
                 "the Xid and the disk in the metrics")
        return generate_latest(obs.registry).decode()
    finally:
        obs.stop()


@pytest.fixture(scope="session")
def exposed_metric_names(full_scrape: str) -> set[str]:
    """Every sample name in `full_scrape`: rules and dashboards are checked against it, so a renamed
    metric breaks them here."""
    from prometheus_client.parser import text_string_to_metric_families

    return {s.name for fam in text_string_to_metric_families(full_scrape) for s in fam.samples}
