"""`phoenix run -- srun ...` in an allocation: finding srun, excluding nodes, reading real srun output.

The logs under ``tests/data/srun/`` were captured from srun 22.05 on the two-node test cluster
(``tests/kits/slurmcluster.py``), except the OOM lines, which are Slurm's own messages as its
cgroup plugin prints them (the test cluster runs without cgroups).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from phoenix_sidecar.runtime.base import EngineJob, RunEnd, engine_cause
from phoenix_sidecar.runtime.slurm import in_allocation
from phoenix_sidecar.runtime.slurm.srun import SrunArgs, find_srun, judge_step, with_exclude
from phoenix_sidecar.runtime.slurm.step import LAUNCH_RETRY_PAUSE, MAX_LAUNCH_FAILURES, SrunStep
from phoenix_watchdog.diagnosis import diagnose
from phoenix_watchdog.diagnosis.failure import ExitStatus
from phoenix_watchdog.diagnosis.logtext import split_log

DATA = Path(__file__).parents[2] / "data" / "srun"
N2 = ["n1", "n2"]


def log(name: str) -> str:
    return (DATA / name).read_text()


@pytest.mark.parametrize(("argv", "expected"), [
    (["srun", "-N1", "-n1", "python", "t.py"], SrunArgs(0, 3, nodes=1, ntasks=1)),
    (["/usr/bin/srun", "--nodes", "2", "--ntasks=4", "-l", "python", "-N", "9"],
     SrunArgs(0, 5, nodes=2, ntasks=4, label=True)),
    (["env", "-u", "X", "A=1", "srun", "--label", "-x", "n3", "--nodes=1-2", "prog"],
     SrunArgs(4, 9, nodes=1, exclude="n3", label=True)),
    (["nice", "-n", "5", "srun", "--exclude=n[3-4]", "--kill-on-bad-exit=1", "-K", "prog"],
     SrunArgs(3, 7, exclude="n[3-4]")),
    (["srun", "--", "prog"], SrunArgs(0, 1)),
    (["srun", "-lN2", "-Kn", "4", "prog"], SrunArgs(0, 4, nodes=2, ntasks=4, label=True)),
])
def test_srun_is_found_past_wrappers_and_its_options_read(argv: list[str], expected: SrunArgs) -> None:
    assert find_srun(argv) == expected


@pytest.mark.parametrize("argv", [["python", "srun"], ["bash", "-c", "srun prog"], ["env", "A=1"], []])
def test_a_command_that_does_not_run_srun_is_not_a_step(argv: list[str]) -> None:
    assert find_srun(argv) is None


def test_excluded_nodes_are_merged_with_the_users_own() -> None:
    argv = ["env", "A=1", "srun", "-x", "n3", "-N1", "--exclude=n4", "python", "-x", "t.py"]
    srun = find_srun(argv)
    assert srun is not None
    assert with_exclude(argv, srun, ["n1"]) == ["env", "A=1", "srun", "--exclude=n4,n1", "-N1", "python", "-x",
                                                "t.py"]
    assert with_exclude(argv, srun, []) == argv
    plain = ["srun", "-N1", "prog"]
    assert with_exclude(plain, find_srun(plain), ["n1", "n2"]) == ["srun", "--exclude=n1,n2", "-N1", "prog"]


def test_the_nodes_a_step_needs() -> None:
    assert SrunArgs(0, 1, nodes=2).needs(4) == 2
    assert SrunArgs(0, 1, ntasks=1).needs(2) == 1  # srun: "can't run 1 processes on 2 nodes"
    assert SrunArgs(0, 1, ntasks=8).needs(2) == 2
    assert SrunArgs(0, 1).needs(2) == 2  # every node of the allocation (SLURM_NNODES)


def test_a_rank_1_code_bug_names_rank_1_on_its_node_and_is_no_engine_end() -> None:
    tail = log("rank1_bug_label.log")
    step = judge_step(tail, SrunArgs(0, 1, nodes=2, label=True), N2, [])
    assert step.ranks == {"rank1": "n2"} and step.failed == ["n2"] and step.cause is None
    diagnosis = diagnose(tail, ExitStatus(code=1))
    assert (diagnosis.category, diagnosis.stream) == ("code_bug", "rank1")


def test_label_output_is_read_per_rank_by_the_diagnosis() -> None:
    lines = split_log(log("kill_on_bad_exit.log"))
    assert [line.stream for line in lines] == ["rank1", None, None, "rank0", None, None]
    assert lines[3].text.startswith("slurmstepd-n1: error: *** STEP 1.0 ON n1 CANCELLED")


def test_with_kill_on_bad_exit_the_first_failed_rank_comes_first() -> None:
    step = judge_step(log("kill_on_bad_exit.log"), SrunArgs(0, 1, nodes=2, label=True), N2, [])
    assert step.failed == ["n2", "n1"] and step.ranks == {"rank1": "n2", "rank0": "n1"} and step.cause is None


def test_an_unlabelled_xid_excludes_the_failed_tasks_node_when_another_remains() -> None:
    step = judge_step(log("xid_unlabelled.log"), SrunArgs(0, 1, nodes=1), N2, [])
    assert step.cause == "engine:hardware:n1" and step.exclude == ["n1"]
    assert "excluding n1" in step.note


def test_a_hardware_failure_with_no_node_to_spare_is_left_to_the_policy() -> None:
    step = judge_step(log("xid_unlabelled.log"), SrunArgs(0, 1, nodes=2), N2, [])
    assert step.cause is None and step.exclude == []
    assert "cannot exclude n1" in step.note and "needs 2" in step.note
    again = judge_step(log("xid_unlabelled.log").replace("n1", "n2"), SrunArgs(0, 1, nodes=1), N2, ["n1"])
    assert again.cause is None and "cannot exclude n2" in again.note


def test_a_node_failure_is_an_engine_end_with_the_node_excluded() -> None:
    step = judge_step(log("node_failure.log"), SrunArgs(0, 1, nodes=1, label=True), N2, [])
    assert engine_cause(step.cause) == (engine_cause("engine:node_fail:n2")) and step.exclude == ["n2"]
    # With no node to spare it is still not the code's fault; the next step's launch tells.
    tight = judge_step(log("node_failure.log"), SrunArgs(0, 1, nodes=2, label=True), N2, [])
    assert tight.cause == "engine:node_fail:n2" and tight.exclude == []


def test_a_step_slurm_could_not_create_is_a_launch_failure() -> None:
    step = judge_step(log("step_not_created.log"), SrunArgs(0, 1, nodes=1), N2, [])
    assert step.cause == "engine:launch_failed:More processors requested than permitted"
    assert judge_step(log("excluded_too_many.log"), SrunArgs(0, 1), N2, []).cause is None


def test_a_killed_task_and_an_oom_kill() -> None:
    step = judge_step(log("task_killed.log"), SrunArgs(0, 1, label=True), N2, [])
    assert step.ranks == {"rank1": "n2"} and step.cause is None and not step.oom
    oom = judge_step(log("oom_kill.log"), SrunArgs(0, 1, label=True), N2, [])
    assert oom.oom and oom.ranks == {"rank0": "n1"}


class FakeLocal:
    """The wrapped runtime: hands out the ends a test scripts, and records the commands it ran."""

    def __init__(self, cmd: list[str], tails: list[tuple[int, str]]) -> None:
        self.cmd = cmd
        self.request_dumps = lambda pids: []
        self.pid: int | None = None
        self.ran: list[list[str]] = []
        self._tails = tails

    @property
    def target(self) -> str:
        return f"pid {len(self.ran)}" if self.ran else "srun#abc"

    def start(self) -> None:
        self.ran.append(list(self.cmd))

    def wait(self, timeout: float | None) -> RunEnd:
        code, tail = self._tails.pop(0)
        return RunEnd(ExitStatus(code=code), 1.0, 2.0, tail)

    def stop(self, **kw: object) -> RunEnd:
        raise AssertionError("not stopped in these tests")

    def dump_stack(self) -> None:
        return None

    def wakeup(self) -> None: ...

    def close(self) -> None: ...


def test_the_step_layer_excludes_the_node_for_every_later_step() -> None:
    cmd = ["srun", "-N1", "-x", "n9", "python", "t.py"]
    inner = FakeLocal(cmd, [(1, log("xid_unlabelled.log")), (1, "boom\nsrun: error: n2: task 0: Exited with exit code 1\n"),
                            (0, "done\n")])
    step = SrunStep(inner, find_srun(cmd), job_id="7", allocation=["n1", "n2", "n3"], sleep=lambda s: None)
    assert step.target == "srun#abc"
    step.start()
    end = step.wait(None)
    assert end.stopped_for == "engine:hardware:n1" and end.ranks == {"rank0": "n1"}
    assert "[slurm] step 1 of job 7: excluding n1" in end.tail
    step.start()
    assert inner.ran[1] == ["srun", "--exclude=n9,n1", "-N1", "python", "t.py"]
    assert step.target == "pid 2 (srun step in slurm job 7, excluding n1)"
    end = step.wait(None)
    assert end.stopped_for is None and end.ranks == {"rank0": "n2"}  # a code failure: the policy decides
    step.start()
    assert inner.ran[2] == inner.ran[1] and step.wait(None).exit.succeeded
    # What state.json, `phoenix status` and the Slurm metrics show of the allocation.
    assert step.engine_job() == EngineJob("slurm", "7", "RUNNING", nodes=("n1", "n2", "n3"), excluded=("n1",))


def test_an_oom_kill_reported_by_slurm_marks_the_end_oom_killed() -> None:
    cmd = ["srun", "--label", "prog"]
    step = SrunStep(FakeLocal(cmd, [(137, log("oom_kill.log"))]), find_srun(cmd), job_id="7", allocation=N2)
    step.start()
    end = step.wait(None)
    assert end.exit.oom_killed and end.exit.code == 137 and end.stopped_for is None


def test_a_node_failure_that_srun_reports_with_exit_code_0_is_no_success() -> None:
    cmd = ["srun", "-N1", "--label", "prog"]
    tail = "0: rank 0 on n1\nsrun: error: Node failure on n1\n"  # srun 22.05 under salloc --no-kill: exit 0
    step = SrunStep(FakeLocal(cmd, [(0, tail), (0, "0: done\n")]), find_srun(cmd), job_id="7", allocation=N2)
    step.start()
    end = step.wait(None)
    assert not end.exit.succeeded and end.stopped_for == "engine:node_fail:n1" and step.excluded == ["n1"]
    step.start()
    assert step.wait(None).exit.succeeded


def test_the_users_own_excluded_nodes_are_no_spare_nodes() -> None:
    cmd = ["srun", "-N1", "-x", "n2", "prog"]
    step = SrunStep(FakeLocal(cmd, [(1, log("xid_unlabelled.log"))]), find_srun(cmd), job_id="7", allocation=N2,
                    unusable=["n2"])
    step.start()
    end = step.wait(None)
    assert end.stopped_for is None and step.excluded == [] and "cannot exclude n1" in end.tail


def test_a_stack_dump_asks_srun_which_passes_the_signal_on_to_the_ranks() -> None:
    cmd = ["srun", "prog"]
    inner = FakeLocal(cmd, [])
    SrunStep(inner, find_srun(cmd), job_id="7", allocation=N2)
    assert inner.request_dumps([123]) == []  # no step running: nobody to ask
    got: list[int] = []
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
    try:
        inner.pid = os.getpid()  # "srun" here is this process, with a handler for the signal
        assert inner.request_dumps([inner.pid]) == [inner.pid]
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert got == [signal.SIGUSR1]


def test_launch_failures_are_retried_a_bounded_number_of_times_in_a_row() -> None:
    cmd = ["srun", "-N1", "prog"]
    fail = (1, log("step_not_created.log"))
    inner = FakeLocal(cmd, [fail] * (MAX_LAUNCH_FAILURES + 1) + [(1, "out\n"), fail])
    pauses: list[float] = []
    step = SrunStep(inner, find_srun(cmd), job_id="7", allocation=N2, sleep=pauses.append)
    causes = []
    for _ in range(MAX_LAUNCH_FAILURES + 3):
        step.start()
        causes.append(step.wait(None).stopped_for)
    assert [c and c.split(":")[1] for c in causes] == ["launch_failed"] * MAX_LAUNCH_FAILURES + [None, None,
                                                                                                "launch_failed"]
    # The pause grows with the failures in a row, and starts over after a step that ran.
    assert pauses == [LAUNCH_RETRY_PAUSE * n for n in (1, 2, 3, 1)]


def test_only_an_srun_inside_an_allocation_is_wrapped() -> None:
    inner = FakeLocal(["srun", "-N1", "prog"], [])
    assert in_allocation(inner, {}) is inner  # not in an allocation
    other = FakeLocal(["python", "t.py"], [])
    assert in_allocation(other, {"SLURM_JOB_ID": "7"}) is other
    wrapped = in_allocation(inner, {"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": ""})
    assert isinstance(wrapped, SrunStep) and wrapped.job_id == "7" and wrapped.allocation == []
