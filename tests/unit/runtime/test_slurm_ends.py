"""The Slurm runtime's pure parts: reading scontrol's answers, judging an end, ranks to nodes."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from phoenix_sidecar.errors import RuntimeUnavailable
from phoenix_sidecar.runtime.slurm.client import SlurmClient, job_from_fields, parse_fields
from phoenix_sidecar.runtime.slurm.ends import hardware_nodes, judge_end, rank_nodes

LINE = ("JobId=7 JobName=train run UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) "
        "Requeue=1 Restarts=2 BatchFlag=1 ExitCode=1:0 StartTime=2026-12-04T19:29:00 EndTime=2026-12-04T19:29:03 "
        "PreemptTime=None NodeList=n[1-2] ExcNodeList=(null) NumTasks=2 StdOut=/ws/out-7.log StdErr=/ws/out-7.log "
        "WorkDir=/ws BatchHost=n1")


def info(**changes: str):  # type: ignore[no-untyped-def]
    fields = parse_fields(LINE)
    fields.update(changes)
    return job_from_fields(fields)


def test_scontrol_one_line_output_is_read_with_values_that_contain_spaces() -> None:
    job = info()
    assert (job.job_id, job.name, job.state, job.restarts, job.exit_code, job.exit_signal) == \
        ("7", "train run", "FAILED", 2, 1, None)
    assert (job.nodes, job.excluded, job.num_tasks, job.stdout) == ("n[1-2]", "", 2, "/ws/out-7.log")
    assert job.finished and not job.running and job.preempt_time is None
    assert job.end_time is not None and job.start_time is not None and job.end_time - job.start_time == 3


def test_a_job_requeued_in_held_state_counts_as_held() -> None:
    assert info(JobState="PENDING", Reason="job_requeued_in_held_state").held
    assert info(JobState="PENDING", Reason="JobHeldUser").held
    assert not info(JobState="PENDING", Reason="Resources").held
    assert info(JobState="REQUEUE_HOLD").settling


def test_exit_codes_and_signals() -> None:
    status, cause = judge_end(info(ExitCode="0:9"), {})
    assert status.signal == 9 and cause is None
    status, cause = judge_end(info(JobState="OUT_OF_MEMORY", ExitCode="0:125"), {})
    assert status.oom_killed and cause is None
    status, cause = judge_end(info(JobState="COMPLETED", ExitCode="0:0"), {})
    assert status.succeeded and cause is None


@pytest.mark.parametrize(("changes", "states", "cause"), [
    ({"JobState": "NODE_FAIL"}, {"n1": "IDLE", "n2": "DOWN+NOT_RESPONDING"}, "engine:node_fail:n2"),
    ({"JobState": "PENDING", "Restarts": "3"}, {"n1": "DOWN", "n2": "IDLE"}, "engine:node_fail:n1"),
    ({"JobState": "PREEMPTED"}, {}, "engine:preempted"),
    # A job that exits by itself within the grace time ends FAILED: the preemption time says why.
    ({"PreemptTime": "2026-12-04T19:29:02"}, {}, "engine:preempted"),
    ({"JobState": "TIMEOUT"}, {}, "engine:time_limit"),
    ({"JobState": "PENDING", "Restarts": "3"}, {"n1": "IDLE"}, "engine:requeued"),
    ({}, {"n1": "IDLE", "n2": "IDLE"}, None),
    ({"JobState": "CANCELLED"}, {}, None),
])
def test_what_is_the_schedulers_doing(changes: dict[str, str], states: dict[str, str], cause: str | None) -> None:
    status, got = judge_end(info(**changes), states)
    assert got == cause
    assert not status.succeeded


def test_a_time_limit_is_a_failure_when_the_job_does_not_checkpoint() -> None:
    assert judge_end(info(JobState="TIMEOUT"), {}, timeout_is_failure=True)[1] is None


def test_a_run_phoenix_stopped_is_judged_by_phoenix_not_by_the_scheduler() -> None:
    assert judge_end(info(JobState="PENDING", PreemptTime="2026-12-04T19:29:02"), {}, phoenix_stopped=True)[1] is None


def test_ranks_map_to_nodes_by_block_distribution_and_by_srun_error_lines() -> None:
    assert rank_nodes("", ["n1", "n2"], 4) == {"rank0": "n1", "rank1": "n1", "rank2": "n2", "rank3": "n2"}
    assert rank_nodes("", ["n1", "n2"], 3) == {"rank0": "n1", "rank1": "n1", "rank2": "n2"}
    tail = "srun: error: n2: task 0: Exited with exit code 1\nsrun: error: n1: tasks 1-2: Terminated\n"
    assert rank_nodes(tail, ["n1", "n2"], 3) == {"rank0": "n2", "rank1": "n1", "rank2": "n1"}


def test_a_hardware_failure_names_the_node_of_the_rank_that_reported_it() -> None:
    tail = ("0: step 1\n1: step 1\n"
            "1: NVRM: Xid (PCI:0000:3b:00): 79, pid=1, GPU has fallen off the bus.\n"
            "0: RuntimeError: Connection closed by peer\n")
    assert hardware_nodes(tail, {"rank0": "n1", "rank1": "n2"}) == ["n2"]
    assert hardware_nodes("0: Xid 13: graphics exception\n", {"rank0": "n1"}) == []  # an application Xid


def _runner(answers: dict[str, tuple[int, str]]):  # type: ignore[no-untyped-def]
    calls: list[list[str]] = []

    def run(args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        calls.append(list(args))
        code, out = answers.get(args[0], (0, ""))
        return subprocess.CompletedProcess(list(args), code, out if code == 0 else "", out if code else "")
    return run, calls


def test_a_job_is_found_by_name_the_newest_wins() -> None:
    squeue = '{"jobs": [{"job_id": 3, "name": "train"}, {"job_id": 9, "name": "train"}, {"job_id": 11, "name": "x"}]}'
    run, calls = _runner({"squeue": (0, squeue)})
    client = SlurmClient(runner=run)
    assert client.find("train") == "9"
    assert client.find("42") == "42" and client.find("42_3") == "42_3"
    with pytest.raises(RuntimeUnavailable, match="no Slurm job named"):
        client.find("nothing")


def test_slurms_own_words_reach_the_error() -> None:
    run, _ = _runner({"scontrol": (1, "slurm_load_jobs error: Invalid job id specified")})
    with pytest.raises(RuntimeUnavailable, match="Invalid job id"):
        SlurmClient(runner=run).job("99")
