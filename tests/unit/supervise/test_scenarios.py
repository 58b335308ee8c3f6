"""The real supervisor loop in whole scenarios, on a fake clock and scripted runs: no process, no waiting.

Each scenario drives `Supervisor.run` through crashes, hangs, repairs, rollbacks, shutdowns and
safety stops with the real policy, state store and diagnosis (on realistic tails), and checks what
it decided, the states it went through, its events, the budgets it spent, the fake time it waited
and how it ended.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from kits.supervise import FakeClock, Rig, ScriptedGates, ScriptedRepair, build_rig, crash, hang, succeed
from phoenix_sidecar import events as ev
from phoenix_sidecar.errors import GaveUp
from phoenix_sidecar.supervise.seams import NullGates
from phoenix_sidecar.supervise.state import JobState

S = JobState

# torch's NCCL watchdog taking the process down (SIGABRT): a restart category.
NCCL = """epoch 0 step 32040 loss 2.6
[rank1]:[E ProcessGroupNCCL.cpp:737] [Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=469508, \
OpType=ALLREDUCE, Timeout(ms)=1800000) ran for 1802212 milliseconds before timing out.
[rank1]:[E ProcessGroupNCCL.cpp:414] Some NCCL operations have failed or timed out. Due to the asynchronous nature \
of CUDA kernels, subsequent GPU operations might run on corrupted/incomplete data. To avoid this inconsistency, we are \
taking the entire process down.
terminate called after throwing an instance of 'std::runtime_error'
  what():  [Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=469508, OpType=ALLREDUCE, \
Timeout(ms)=1800000) ran for 1802212 milliseconds before timing out.
"""


def code_bug(ws: Path) -> str:
    """A KeyError in the job's own code: a repair category."""
    return f"""epoch 1 step 40 loss 2.31
Traceback (most recent call last):
  File "{ws}/train.py", line 12, in <module>
    main()
  File "{ws}/train.py", line 9, in main
    loss = step(batch)
  File "{ws}/train.py", line 5, in step
    return batch["x"] / batch["n"]
KeyError: 'n'
"""


def missing_module(ws: Path) -> str:
    """An import that fails: a stop category (a human must install it)."""
    return f"""Traceback (most recent call last):
  File "{ws}/train.py", line 1, in <module>
    import apex
ModuleNotFoundError: No module named 'apex'
"""


def spin_stack(ws: Path) -> str:
    """A faulthandler dump of a job spinning in its own code: a hang a patch could fix."""
    return f"""Current thread 0x00007f54dc83cb80 (most recent call first):
  File "{ws}/train.py", line 16 in wait_for_shard
  File "{ws}/train.py", line 23 in main
  File "{ws}/train.py", line 27 in <module>
"""


def decisions(rig: Rig) -> list[str]:
    return [d.action for d in rig.of(ev.DecisionMade)]


def restarts(rig: Rig) -> list[str]:
    return [r.reason for r in rig.of(ev.JobRestarted)]


def test_crash_crash_ok_doubles_the_backoff_and_exits_0(workspace: Path) -> None:
    nccl_abort = crash(NCCL, code=None, signum=signal.SIGABRT, seconds=30)
    rig = build_rig(workspace, [nccl_abort, nccl_abort, succeed(seconds=60)], backoff_initial_seconds=5)

    assert rig.supervisor.run() == 0

    assert isinstance(rig.supervisor.gates, NullGates)
    made = rig.of(ev.DecisionMade)
    assert [(d.action, d.delay_seconds, d.budget_remaining) for d in made] == [("restart", 5.0, 2), ("restart", 10.0, 1)]
    # run 1: 0-30 s, 5 s backoff; run 2: 35-65 s, 10 s backoff; run 3: 75-135 s.
    assert rig.when(ev.JobStarted) == [0.0, 35.0, 75.0] and rig.clock.now == 135.0
    assert restarts(rig) == ["nccl_timeout", "nccl_timeout"]
    assert rig.states() == [S.STARTING, S.RUNNING, S.BACKOFF] * 2 + [S.STARTING, S.RUNNING, S.SUCCEEDED]
    state = rig.store.load()
    assert state.job.state is S.SUCCEEDED and state.job.run == 3
    assert state.budgets.total_restarts == 2 and state.budgets.failures_in_a_row == 2
    first, second = state.incidents
    assert (first.kind, first.category, first.exit, first.attempt) == ("crash", "nccl_timeout", "killed by SIGABRT", 1)
    assert second.signature == first.signature and second.attempt == 2
    assert state.budgets.attempts(first.signature) == 2
    assert "Watchdog caught collective operation timeout" in (workspace / first.details).read_text()


def test_the_same_hang_twice_is_escalated_to_a_repair(workspace: Path) -> None:
    stack = spin_stack(workspace)
    silent = hang(stack, tail="step 1 ok\nstep 2 ok\nwaiting for shard 7\n")
    repair = ScriptedRepair(["promoted"])
    rig = build_rig(workspace, [silent, silent, succeed()], repair=repair, backoff_initial_seconds=5)

    assert rig.supervisor.run() == 0

    # The heartbeat allows 15 minutes of silence: run 1 hangs at 900 s, run 2 (from 905 s) at 1805 s.
    assert rig.when(ev.HangDetected) == [900.0, 1805.0]
    assert [h.silent_seconds for h in rig.of(ev.HangDetected)] == [900.0, 900.0]
    assert rig.runtime.stack_dumps == 2
    assert [s["hang"].stack for s in rig.runtime.stops] == [stack, stack]
    first, second = rig.supervisor.state.incidents
    assert (first.kind, first.category, first.action) == ("hang", "hang", "restart")
    assert (second.signature, second.action) == (first.signature, "repair")
    assert "the same hang recurred" in second.reason
    (request,) = repair.requests
    assert request.stack == stack and request.diagnosis.frame.function == "wait_for_shard"
    assert restarts(rig) == ["hang", "repair"]
    assert rig.states()[:9] == [S.STARTING, S.RUNNING, S.STOPPING, S.BACKOFF,
                                S.STARTING, S.RUNNING, S.STOPPING, S.REPAIRING, S.STARTING]


def test_a_promoted_repair_whose_run_fails_sooner_is_rolled_back(workspace: Path) -> None:
    repair = ScriptedRepair(["promoted"])
    script = [crash(code_bug(workspace), seconds=120), crash(code_bug(workspace), seconds=10), succeed()]
    rig = build_rig(workspace, script, repair=repair)

    assert rig.supervisor.run() == 0

    assert len(repair.requests) == 1
    assert repair.rollbacks == [{"id": "r1", "automatic": True, "force": False}]
    assert decisions(rig) == ["repair", "rollback"]
    assert restarts(rig) == ["repair", "rollback"]
    assert rig.when(ev.JobStarted) == [0.0, 120.0, 130.0]  # the rollback restarts at once
    worse = rig.supervisor.state.incidents[1]
    assert worse.action == "rollback" and "made things worse" in worse.reason and "r1" in worse.reason
    assert rig.supervisor.state.promoted_repair is None
    assert rig.supervisor.state.budgets.attempts(worse.signature) == 1  # the rollback spends no attempt


def test_a_promoted_repair_whose_run_fails_later_is_kept(workspace: Path) -> None:
    repair = ScriptedRepair(["promoted", "promoted"])
    script = [crash(code_bug(workspace), seconds=10), crash(code_bug(workspace), seconds=120), succeed()]
    rig = build_rig(workspace, script, repair=repair)

    assert rig.supervisor.run() == 0

    assert repair.rollbacks == []
    assert decisions(rig) == ["repair", "repair"] and len(repair.requests) == 2


def test_a_rollback_that_is_refused_leaves_the_decision_to_the_policy(workspace: Path) -> None:
    repair = ScriptedRepair(["promoted", "promoted"], rollback_ok=False)
    script = [crash(code_bug(workspace), seconds=120), crash(code_bug(workspace), seconds=10), succeed()]
    rig = build_rig(workspace, script, repair=repair)

    assert rig.supervisor.run() == 0

    assert len(repair.rollbacks) == 1  # tried, refused (the files were edited since)
    assert decisions(rig) == ["repair", "repair"] and restarts(rig) == ["repair", "repair"]


def test_an_llm_failure_backs_off_then_asks_again(workspace: Path) -> None:
    repair = ScriptedRepair(["llm_failed", "promoted"])
    rig = build_rig(workspace, [crash(code_bug(workspace), seconds=30), succeed()], repair=repair,
                    backoff_initial_seconds=5)

    assert rig.supervisor.run() == 0

    assert len(repair.requests) == 2
    assert [r.diagnosis.category for r in repair.requests] == ["code_bug", "code_bug"]
    assert rig.states() == [S.STARTING, S.RUNNING, S.REPAIRING, S.BACKOFF, S.REPAIRING,
                            S.STARTING, S.RUNNING, S.SUCCEEDED]
    # Two attempts charged, so the wait before asking again is the second step of the backoff.
    asked = [t for t, e in rig.timeline if isinstance(e, ev.StateChanged) and e.state is S.REPAIRING]
    assert asked == [30.0, 40.0]
    assert [(d.action, d.budget_remaining) for d in rig.of(ev.DecisionMade)] == [("repair", 2), ("repair", 1)]
    assert rig.supervisor.state.incidents[0].repair["outcome"] == "promoted"


def test_budgets_survive_a_phoenix_restart_until_reset(workspace: Path) -> None:
    nccl = crash(NCCL, code=None, signum=signal.SIGABRT, seconds=30)
    first = build_rig(workspace, [nccl, nccl, succeed(seconds=3600)], backoff_initial_seconds=5, max_retries=3)
    first.clock.at(100.0, lambda: first.supervisor.request_shutdown(signal.SIGTERM))
    assert first.supervisor.run() == 128 + signal.SIGTERM
    assert first.store.load().job.state is S.INTERRUPTED

    # A new Phoenix on the same workspace: the third attempt is the last, and the backoff goes on doubling.
    second = build_rig(workspace, [nccl, nccl], backoff_initial_seconds=5, max_retries=3)
    assert second.supervisor.state.budgets.total_restarts == 2
    with pytest.raises(GaveUp) as gave_up:
        second.supervisor.run()
    made = second.of(ev.DecisionMade)
    assert [(d.incident, d.action, d.delay_seconds) for d in made] == [(3, "restart", 20.0), (4, "stop", 0.0)]
    assert [g.reason for g in second.of(ev.GaveUp)] == ["budget_signature"]
    assert "3 of 3 on this signature; 3 of 20 restarts in all" in gave_up.value.summary
    assert "phoenix run --reset-budgets" in gave_up.value.summary

    # After a human fixed the cause: the budgets start over, the history stays.
    third = build_rig(workspace, [nccl, succeed()], backoff_initial_seconds=5, max_retries=3)
    third.supervisor.reset_budgets()
    assert third.store.load().budgets.total_restarts == 0
    assert third.supervisor.run() == 0
    assert [(d.incident, d.delay_seconds, d.budget_remaining) for d in third.of(ev.DecisionMade)] == [(5, 5.0, 2)]
    assert [i.id for i in third.store.load().incidents] == [1, 2, 3, 4, 5]


def test_giving_up_explains_itself_after_the_cooldown(workspace: Path) -> None:
    rig = build_rig(workspace, [crash(missing_module(workspace), seconds=3)], cooldown_seconds=30)

    with pytest.raises(GaveUp) as gave_up:
        rig.supervisor.run()

    assert rig.clock.now == 33.0  # the cooldown was waited before giving up
    signature = rig.supervisor.state.incidents[0].signature
    assert gave_up.value.incident == {"id": 1, "signature": signature, "category": "missing_dependency"}
    lines = gave_up.value.summary.splitlines()
    assert lines[0] == ("phoenix gave up on the job: missing_dependency needs a human: "
                        "Phoenix does not restart or patch it")
    assert lines[1:] == [
        f"  signature:   {signature}",
        "  category:    missing_dependency",
        "  attempts:    0 of 3 on this signature; 0 of 20 restarts in all",
        "  last error:  ModuleNotFoundError: No module named 'apex'",
        "  where:       train.py:1 in <module>",
        "  incident:    #1 (exit code 1); full output in .phoenix_cli/incidents/1.log",
    ]  # no --reset-budgets line: resetting cannot help a missing package
    assert [(g.category, g.reason) for g in rig.of(ev.GaveUp)] == [("missing_dependency", "category_stop")]
    assert rig.store.load().job.state is S.GAVE_UP and rig.runtime.starts == 1


def test_a_repair_with_nothing_to_patch_gives_up(workspace: Path) -> None:
    repair = ScriptedRepair(["no_target"])
    rig = build_rig(workspace, [crash(code_bug(workspace))], repair=repair)

    with pytest.raises(GaveUp, match="nothing Phoenix may patch") as gave_up:
        rig.supervisor.run()

    assert [g.reason for g in rig.of(ev.GaveUp)] == ["repair_failed"]
    assert "--reset-budgets" in gave_up.value.summary
    assert rig.states()[-2:] == [S.REPAIRING, S.GAVE_UP]


def test_repairs_that_fail_verification_use_up_the_attempts(workspace: Path) -> None:
    repair = ScriptedRepair(["verify_failed"] * 3)
    rig = build_rig(workspace, [crash(code_bug(workspace))], repair=repair, max_retries=3)

    with pytest.raises(GaveUp, match=r"the repair failed \(verify_failed: .*\) and this failure has used all 3"):
        rig.supervisor.run()

    assert len(repair.requests) == 3 and rig.runtime.starts == 1
    assert rig.states()[2:] == [S.REPAIRING, S.REPAIRING, S.REPAIRING, S.GAVE_UP]
    assert [g.reason for g in rig.of(ev.GaveUp)] == ["repair_failed"]


def test_a_shutdown_during_the_backoff_ends_it_at_once(workspace: Path) -> None:
    rig = build_rig(workspace, [crash(NCCL, code=None, signum=signal.SIGABRT, seconds=30), succeed()],
                    backoff_initial_seconds=60)
    rig.clock.at(45.0, lambda: rig.supervisor.request_shutdown(signal.SIGINT))

    assert rig.supervisor.run() == 128 + signal.SIGINT

    assert rig.clock.now == 45.0  # woken by the request, not at the end of the 60 s
    assert rig.runtime.starts == 1 and restarts(rig) == []
    assert rig.states()[-2:] == [S.BACKOFF, S.INTERRUPTED]
    assert rig.store.load().job.state is S.INTERRUPTED


def test_a_shutdown_while_running_stops_the_job(workspace: Path) -> None:
    rig = build_rig(workspace, [succeed(seconds=3600)])
    rig.clock.at(12.0, lambda: rig.supervisor.request_shutdown(signal.SIGTERM))

    assert rig.supervisor.run() == 128 + signal.SIGTERM

    assert [(s["reason"], s["at"]) for s in rig.runtime.stops] == [("shutdown", 12.0)]
    assert rig.states() == [S.STARTING, S.RUNNING, S.INTERRUPTED]


def test_a_safety_trip_stops_the_job_and_resumes_it_when_clear(workspace: Path) -> None:
    gates = ScriptedGates()
    clock = FakeClock()
    clock.at(20.0, gates.trip_now)
    clock.at(200.0, gates.clear)
    rig = build_rig(workspace, [succeed(seconds=3600), succeed(seconds=10)], gates=gates, clock=clock)

    assert rig.supervisor.run() == 0

    assert [(s["reason"], s["at"]) for s in rig.runtime.stops] == [("safety:gpu_temperature", 20.0)]
    assert rig.when(ev.SafetyCleared) == [200.0] and rig.when(ev.JobStarted) == [0.0, 200.0]
    assert restarts(rig) == ["safety"]
    assert rig.states() == [S.STARTING, S.RUNNING, S.STOPPING, S.SAFETY_STOP, S.STARTING, S.RUNNING, S.SUCCEEDED]
    (incident,) = rig.supervisor.state.incidents
    assert (incident.kind, incident.category, incident.action) == ("safety", "gpu_temperature", "wait")
    assert rig.supervisor.state.budgets.total_restarts == 0  # a safety pause spends no budget
    assert gates.ticks >= 200 / 5  # the loop kept telling /healthz it is alive while it waited


def test_an_unrecoverable_safety_trip_stops_for_a_human(workspace: Path) -> None:
    gates = ScriptedGates()
    clock = FakeClock()
    clock.at(20.0, lambda: gates.trip_now("gpu_errors", "GPU 0: Xid 79 (fallen off the bus)", recoverable=False))
    rig = build_rig(workspace, [succeed(seconds=3600)], gates=gates, clock=clock)

    with pytest.raises(GaveUp, match="stopped the job for safety: GPU 0: Xid 79"):
        rig.supervisor.run()

    assert [g.reason for g in rig.of(ev.GaveUp)] == ["safety"]
    assert rig.states()[-2:] == [S.SAFETY_STOP, S.GAVE_UP] and rig.runtime.starts == 1


def test_a_hang_without_a_stack_is_restarted_at_once_until_its_budget_is_spent(workspace: Path) -> None:
    silent = hang(None, tail="step 1 ok\n")  # no stack dump: nothing a patch could target
    rig = build_rig(workspace, [silent, silent], backoff_initial_seconds=0, max_retries=1, heartbeat_min=1)

    with pytest.raises(GaveUp, match="this failure has used all 1 attempts"):
        rig.supervisor.run()

    assert rig.when(ev.HangDetected) == [60.0, 120.0] and restarts(rig) == ["hang"]
    assert rig.states() == [S.STARTING, S.RUNNING, S.STOPPING, S.STARTING, S.RUNNING, S.STOPPING, S.GAVE_UP]
    assert [g.reason for g in rig.of(ev.GaveUp)] == ["budget_signature"]


def test_a_shutdown_while_waiting_out_a_safety_stop(workspace: Path) -> None:
    gates = ScriptedGates()
    clock = FakeClock()
    clock.at(20.0, gates.trip_now)
    rig = build_rig(workspace, [succeed(seconds=3600)], gates=gates, clock=clock)
    clock.at(300.0, lambda: rig.supervisor.request_shutdown(signal.SIGTERM))

    assert rig.supervisor.run() == 128 + signal.SIGTERM

    assert rig.clock.now == 300.0 and rig.runtime.starts == 1
    assert rig.states()[-2:] == [S.SAFETY_STOP, S.INTERRUPTED]
    assert not rig.of(ev.SafetyCleared)


def test_a_user_rule_from_the_config_decides_the_category_and_the_action(workspace: Path) -> None:
    """``rules:`` in phoenix.yaml reach the supervisor's own diagnosis: this failure, which the
    built-in rules would restart as unknown, is named and stopped for a human at once."""
    rules = [{"pattern": r"the feature store at \S+ refused us", "category": "dataloader", "action": "stop"}]
    rig = build_rig(workspace, [crash("the feature store at fs-3:9000 refused us\n"), succeed()], rules=rules,
                    cooldown_seconds=0)

    with pytest.raises(GaveUp) as gave_up:
        rig.supervisor.run()

    assert "dataloader needs a human" in str(gave_up.value)
    assert [(g.category, g.reason) for g in rig.of(ev.GaveUp)] == [("dataloader", "category_stop")]
    assert rig.runtime.starts == 1


def test_without_the_rule_the_same_failure_is_restarted(workspace: Path) -> None:
    rig = build_rig(workspace, [crash("the feature store at fs-3:9000 refused us\n"), succeed()], cooldown_seconds=0)
    assert rig.supervisor.run() == 0
    assert rig.runtime.starts == 2
