"""The supervisor with LLM triage on, in whole scenarios: a scripted triage, a fake clock, scripted runs.

An unknown failure that the LLM names takes the policy's action for that category, and its record
says the category came from the LLM; a triage that fails leaves the unknown path as it was; a
category the rules named is never asked about; the same unknown failure asks once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kits.supervise import ScriptedRepair, ScriptedTriage, build_rig, crash, hang, succeed
from phoenix_sidecar import events as ev
from phoenix_sidecar.errors import GaveUp
from phoenix_sidecar.supervise.triage import TriageResult, TriageVerdict
from phoenix_watchdog.diagnosis.diagnose import diagnose
from phoenix_watchdog.diagnosis.failure import ExitStatus

UNKNOWN = ("epoch 1 step 4 loss 2.1\n"
           "allocator: arena exhausted while staging batch 17 (requested 2.00 GiB, pool 80.00 GiB in use)\n"
           "fatal: giving up\n")
NCCL = ("[rank1]:[E ProcessGroupNCCL.cpp:737] [Rank 1] Watchdog caught collective operation timeout: "
        "WorkNCCL(SeqNum=469508, OpType=ALLREDUCE, Timeout(ms)=1800000) ran for 1802212 milliseconds before timing out.\n")


def rules_signature() -> str:
    return diagnose(UNKNOWN, ExitStatus(code=3), None, None).signature


def test_an_unknown_failure_the_llm_names_cuda_oom_gets_the_policy_action_for_cuda_oom(workspace: Path) -> None:
    triage = ScriptedTriage(["cuda_oom"])
    repair = ScriptedRepair(["promoted"])
    rig = build_rig(workspace, [crash(UNKNOWN, code=3), succeed()], repair=repair, triage=triage)

    assert rig.supervisor.run() == 0

    assert [d.category for d in triage.asked] == ["unknown"]
    (request,) = repair.requests  # cuda_oom's default action is a repair
    assert request.diagnosis.category == "cuda_oom" and request.diagnosis.patchable
    (incident,) = rig.store.load().incidents
    assert (incident.category, incident.category_source, incident.action) == ("cuda_oom", "llm", "repair")
    assert incident.signature == rules_signature()  # the LLM never changes the signature
    assert incident.triage == {"result": "named", "category": "cuda_oom", "reason": "the log says it is cuda_oom",
                               "client": "scripted", "cached": False}
    (opened,) = rig.of(ev.IncidentOpened)
    assert (opened.category, opened.category_source) == ("cuda_oom", "llm")
    (told,) = rig.of(ev.FailureTriaged)
    assert (told.incident, told.result, told.category) == (1, "named", "cuda_oom")
    assert rig.events.index(opened) < rig.events.index(told) < rig.events.index(rig.of(ev.DecisionMade)[0])
    assert rules_signature() in rig.store.load().budgets.signatures


def test_the_action_comes_from_the_configured_table_not_from_the_llm(workspace: Path) -> None:
    rig = build_rig(workspace, [crash(UNKNOWN, code=3), succeed()], triage=ScriptedTriage(["cuda_oom"]),
                    actions={"cuda_oom": "restart"}, backoff_initial_seconds=5)
    assert rig.supervisor.run() == 0
    (decision,) = rig.of(ev.DecisionMade)
    assert decision.action == "restart" and decision.delay_seconds == 5.0
    assert [r.reason for r in rig.of(ev.JobRestarted)] == ["cuda_oom"]


def test_a_stop_category_the_llm_names_stops_the_job(workspace: Path) -> None:
    rig = build_rig(workspace, [crash(UNKNOWN, code=3)], triage=ScriptedTriage(["gpu_hardware"]))
    with pytest.raises(GaveUp) as gave_up:
        rig.supervisor.run()
    assert gave_up.value.incident["category"] == "gpu_hardware"
    assert "  category:    gpu_hardware (named by the LLM triage: the log says it is gpu_hardware)" in \
        gave_up.value.summary.splitlines()
    assert rig.store.load().incidents[0].category_source == "llm"


@pytest.mark.parametrize("verdict", [
    TriageVerdict(TriageResult.FAILED, None, "openai: 127.0.0.1 did not answer within 30 s", None, 30.0),
    TriageVerdict(TriageResult.REJECTED, None, "openai: unusable answer: no JSON object", "openai", 2.0),
    TriageVerdict(TriageResult.DECLINED, None, "nothing in the log says", "openai", 2.0),
])
def test_without_a_name_the_unknown_path_is_unchanged_and_recorded(workspace: Path, verdict: TriageVerdict) -> None:
    rig = build_rig(workspace, [crash(UNKNOWN, code=3), succeed()], triage=ScriptedTriage([verdict]),
                    backoff_initial_seconds=5)
    plain = build_rig(workspace / "plain", [crash(UNKNOWN, code=3), succeed()], backoff_initial_seconds=5)
    assert rig.supervisor.run() == 0 and plain.supervisor.run() == 0

    ((with_triage, plain_decision),) = zip(rig.of(ev.DecisionMade), plain.of(ev.DecisionMade))
    assert (with_triage.action, with_triage.delay_seconds) == (plain_decision.action, plain_decision.delay_seconds)
    (incident,) = rig.store.load().incidents
    assert (incident.category, incident.category_source) == ("unknown", "rules")
    assert incident.triage is not None and incident.triage["result"] == verdict.result.value
    assert incident.triage["reason"] == verdict.reason
    assert [(t.result, t.category) for t in rig.of(ev.FailureTriaged)] == [(verdict.result.value, None)]
    assert plain.store.load().incidents[0].triage is None


def test_a_category_the_rules_named_is_never_asked_about(workspace: Path) -> None:
    triage = ScriptedTriage([])
    rig = build_rig(workspace, [crash(NCCL, signum=6), hang(None), succeed()], triage=triage, heartbeat_min=15)
    assert rig.supervisor.run() == 0
    assert triage.asked == [] and rig.of(ev.FailureTriaged) == []
    assert [i.category_source for i in rig.store.load().incidents] == ["rules", "rules"]
    assert [i.category for i in rig.store.load().incidents] == ["nccl_timeout", "hang"]


def test_the_same_unknown_failure_asks_once_per_session(workspace: Path) -> None:
    triage = ScriptedTriage(["dataloader"])
    rig = build_rig(workspace, [crash(UNKNOWN, code=3), crash(UNKNOWN, code=3), succeed()], triage=triage,
                    max_retries=3)
    assert rig.supervisor.run() == 0
    assert len(triage.asked) == 1
    assert [(t.cached, t.category) for t in rig.of(ev.FailureTriaged)] == [(False, "dataloader"), (True, "dataloader")]
    incidents = rig.store.load().incidents
    assert [(i.category, i.category_source, i.action) for i in incidents] == [("dataloader", "llm", "restart")] * 2
    assert rig.store.load().budgets.signatures[rules_signature()].attempts == 2  # one failure, one budget


def test_a_failed_triage_is_asked_again_the_next_time(workspace: Path) -> None:
    failed = TriageVerdict(TriageResult.FAILED, None, "openai: timeout", None, 30.0)
    triage = ScriptedTriage([failed, "dataloader"])
    rig = build_rig(workspace, [crash(UNKNOWN, code=3), crash(UNKNOWN, code=3), succeed()], triage=triage)
    assert rig.supervisor.run() == 0
    assert len(triage.asked) == 2
    assert [i.category for i in rig.store.load().incidents] == ["unknown", "dataloader"]
