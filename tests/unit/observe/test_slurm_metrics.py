"""The Slurm job in the metrics (read at scrape time) and in `phoenix status`, and their documented labels."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from phoenix_sidecar.commands.status import collect, render
from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.observe.collectors import EngineCollector
from phoenix_sidecar.runtime.base import EngineJob, engine_job_of
from phoenix_sidecar.runtime.slurm.client import JOB_STATES
from phoenix_sidecar.supervise.state import StateStore, SupervisorState
from testkit import REPO

JOB = EngineJob("slurm", "42", "RUNNING", ("n1", "n2"), ("n3",), requeues=2, restarts=3)


def scrape(job: EngineJob | None) -> str:
    registry = CollectorRegistry()
    registry.register(EngineCollector(lambda: job))
    return generate_latest(registry).decode()


def test_the_slurm_job_is_scraped_as_it_was_last_read() -> None:
    text = scrape(JOB)
    assert 'phoenix_slurm_job_info{job_id="42",state="RUNNING"} 1.0' in text
    assert "phoenix_slurm_job_nodes 2.0" in text and "phoenix_slurm_job_restarts 3.0" in text
    assert "phoenix_slurm_requeues_total 2.0" in text and "phoenix_slurm_excluded_nodes 1.0" in text
    assert "n3" not in text  # node names are never labels


def test_no_slurm_series_without_a_slurm_job() -> None:
    assert "phoenix_slurm" not in scrape(None)
    assert "phoenix_slurm" not in scrape(EngineJob("kubernetes", "x", "RUNNING"))


def test_a_runtime_without_an_engine_view_has_none() -> None:
    class Local:
        target = "pid 1"

    class Slurm:
        def engine_job(self) -> EngineJob:
            return JOB

    assert engine_job_of(Local()) is None and engine_job_of(Slurm()) is JOB


def test_the_documented_state_labels_are_the_runtime_vocabulary() -> None:
    docs = (REPO / "docs" / "observability.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith("| `phoenix_slurm_job_info`"))
    listed = re.search(r"`state` ∈ ([^|(]+)", row)
    assert listed, row
    assert [w.strip() for w in listed.group(1).split(",")] == [*sorted(JOB_STATES), "OTHER"]
    for name in ("phoenix_slurm_job_nodes", "phoenix_slurm_job_restarts", "phoenix_slurm_requeues_total",
                 "phoenix_slurm_excluded_nodes"):
        assert f"| `{name}` |" in docs, name


def test_status_prints_the_slurm_job_from_state_json(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    paths.state.parent.mkdir(parents=True, exist_ok=True)
    state = SupervisorState()
    state.job.target, state.job.engine = "slurm job 42", JOB.as_dict()
    StateStore(paths.state).save(state)
    report = collect(Settings(workspace=str(tmp_path)), paths)
    assert report["job"]["engine"]["excluded"] == ["n3"]
    assert "slurm:      job 42 RUNNING on n1,n2; 2 requeues by Phoenix, 3 restart(s) in all; excluded n3" in render(report)
    state.job.engine = None
    StateStore(paths.state).save(state)
    assert "slurm:" not in render(collect(Settings(workspace=str(tmp_path)), paths))
