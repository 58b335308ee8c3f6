"""The supervisor restarts an end the scheduler caused (``engine:...``) without spending a budget,
and an incident names the rank and node the runtime reports."""

from __future__ import annotations

from pathlib import Path

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.events import EventBus
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.runtime.base import RunEnd
from phoenix_sidecar.supervise.loop import Supervisor
from phoenix_sidecar.supervise.state import StateStore
from phoenix_watchdog.diagnosis.failure import ExitStatus, HangInfo
from phoenix_watchdog.heartbeat import Heartbeat

BUG = ('1: Traceback (most recent call last):\n1:   File "/ws/train.py", line 3, in <module>\n'
       '1:     main()\n1: NameError: name \'factor\' is not defined\n'
       "0: RuntimeError: Connection closed by peer [127.0.0.1]:9932\n")


class ScriptedRuntime:
    """Ends each run as the script says; counts starts."""

    def __init__(self, ends: list[RunEnd]) -> None:
        self.ends = ends
        self.starts = 0

    target = "scripted job"

    def start(self) -> None:
        self.starts += 1

    def wait(self, timeout: float | None) -> RunEnd | None:
        return self.ends.pop(0)

    def dump_stack(self) -> str | None:
        return None

    def stop(self, *, hang: HangInfo | None = None, reason: str | None = None) -> RunEnd:
        raise AssertionError("not stopped in these tests")

    def wakeup(self) -> None:
        pass

    def close(self) -> None:
        pass


def supervisor(tmp_path: Path, ends: list[RunEnd]) -> tuple[Supervisor, ScriptedRuntime]:
    settings = Settings(workspace=str(tmp_path), repair=False, backoff_initial_seconds=0.0, max_total_restarts=1,
                        actions={"code_bug": "restart"})
    paths = StatePaths(tmp_path).ensure()
    runtime = ScriptedRuntime(ends)
    return Supervisor(settings, runtime, Heartbeat(None), StateStore(paths.state), EventBus(), paths), runtime


def end(stopped_for: str | None = None, *, code: int = 1, tail: str = "", ranks: dict | None = None) -> RunEnd:
    return RunEnd(exit=ExitStatus(code=code), started_at=0.0, ended_at=1.0, tail=tail, stopped_for=stopped_for,
                  ranks=ranks or {})


def test_scheduler_ends_restart_without_spending_the_budget(tmp_path: Path) -> None:
    sup, runtime = supervisor(tmp_path, [end("engine:preempted"), end("engine:node_fail:n2"),
                                         end("engine:time_limit"), end(code=0)])
    assert sup.run() == 0
    assert runtime.starts == 4
    assert sup.state.budgets.total_restarts == 0  # max_total_restarts=1 would have stopped three failures
    kinds = [(i.kind, i.category, i.action) for i in sup.state.incidents]
    assert kinds == [("engine", "preempted", "restart"), ("engine", "node_fail", "restart"),
                     ("engine", "time_limit", "restart")]
    assert "n2" in sup.state.incidents[1].summary


def test_an_incident_names_the_rank_that_failed_first_and_its_node(tmp_path: Path) -> None:
    sup, _ = supervisor(tmp_path, [end(tail=BUG, ranks={"rank0": "n1", "rank1": "n2"}), end(code=0)])
    assert sup.run() == 0
    incident = sup.state.incidents[0]
    assert incident.kind == "crash" and "NameError" in incident.summary
    assert incident.summary.endswith("(rank 1 on node n2)")
    assert sup.state.budgets.total_restarts == 1
