"""The pure restart policy: actions by category, budgets, backoff, escalation, stable-run reset."""

from __future__ import annotations

import dataclasses

import pytest

from phoenix_sidecar.supervise import policy
from phoenix_sidecar.config.loader import load
from phoenix_sidecar.supervise.policy import Action, GiveUpReason, PolicySpec
from phoenix_sidecar.config.schema import CATEGORIES, DEFAULT_ACTIONS
from phoenix_sidecar.supervise.state import Budgets
from phoenix_watchdog.diagnosis.failure import Diagnosis


def spec(**over) -> PolicySpec:
    base = PolicySpec.from_settings(load(environ={}).settings, repair_available=True)
    return dataclasses.replace(base, **over)


def diag(category: str = "code_bug", signature: str = "sig-1", patchable: bool = True) -> Diagnosis:
    return Diagnosis(signature, category, patchable, "ValueError", "boom", None, "ValueError: boom")


def test_every_category_has_its_default_action() -> None:
    assert set(DEFAULT_ACTIONS) == set(CATEGORIES)
    assert {c for c, a in DEFAULT_ACTIONS.items() if a == "repair"} == {
        "code_bug", "config_error", "missing_file", "nan_divergence", "cuda_oom"}
    assert {c for c, a in DEFAULT_ACTIONS.items() if a == "stop"} == {
        "gpu_hardware", "cuda_illegal_access", "host_oom", "disk_full", "missing_dependency"}


@pytest.mark.parametrize("category", CATEGORIES)
def test_first_failure_follows_the_table(category: str) -> None:
    d = policy.decide(diag(category), Budgets(), spec(), seen_before=False)
    assert d.action.value == DEFAULT_ACTIONS[category]
    if d.action is Action.STOP:
        assert d.code == GiveUpReason.CATEGORY_STOP and "needs a human" in d.reason


def test_budget_per_signature_then_stop() -> None:
    budgets, s = Budgets(), spec(max_retries=2)
    decisions = []
    for _ in range(3):
        d = policy.decide(diag("nccl_timeout"), budgets, s, seen_before=False)
        policy.commit(budgets, diag("nccl_timeout"), d, now=1.0)
        decisions.append(d)
    assert [d.action for d in decisions] == [Action.RESTART, Action.RESTART, Action.STOP]
    assert [d.budget_remaining for d in decisions] == [1, 0, 0]
    assert decisions[-1].code == GiveUpReason.BUDGET_SIGNATURE
    # Another signature still has its own budget.
    assert policy.decide(diag("nccl_timeout", "sig-2"), budgets, s, seen_before=False).action is Action.RESTART


def test_total_budget_stops_whatever_the_signature() -> None:
    budgets = Budgets(total_restarts=5)
    d = policy.decide(diag("unknown"), budgets, spec(max_total_restarts=5), seen_before=False)
    assert (d.action, d.code) == (Action.STOP, GiveUpReason.BUDGET_TOTAL)


def test_backoff_doubles_and_is_capped() -> None:
    s = spec(backoff_initial=5, backoff_max=60)
    assert [policy.backoff_delay(n, s) for n in range(6)] == [5, 10, 20, 40, 60, 60]
    assert policy.backoff_delay(10 ** 6, s) == 60


def test_stable_run_resets_backoff_and_attempts_but_not_the_total() -> None:
    budgets, s = Budgets(total_restarts=3), spec(stable_run_seconds=600)
    d = policy.decide(diag("segfault"), budgets, s, seen_before=False)
    policy.commit(budgets, diag("segfault"), d, 1.0)
    assert budgets.attempts("sig-1") == 1 and budgets.failures_in_a_row == 1
    assert not policy.note_run(budgets, 599, s)
    assert policy.note_run(budgets, 600, s)
    assert budgets.attempts("sig-1") == 0 and budgets.failures_in_a_row == 0 and budgets.total_restarts == 3


def test_recurring_hang_with_the_same_stack_escalates_to_repair() -> None:
    hang = diag("hang", "hang-abc", patchable=True)
    assert policy.decide(hang, Budgets(), spec(), seen_before=False).action is Action.RESTART
    d = policy.decide(hang, Budgets(), spec(), seen_before=True)
    assert (d.action, d.code) == (Action.REPAIR, policy.HANG_ESCALATED)
    # A hang whose stack points at no user code stays a restart.
    assert policy.decide(diag("hang", patchable=False), Budgets(), spec(), seen_before=True).action is Action.RESTART


def test_repair_switched_off_gives_up_with_that_reason() -> None:
    d = policy.decide(diag("code_bug"), Budgets(), spec(repair_available=False), seen_before=False)
    assert (d.action, d.code) == (Action.STOP, GiveUpReason.REPAIR_DISABLED)


def test_table_can_be_changed_and_stop_waits_the_cooldown() -> None:
    s = spec(actions={**DEFAULT_ACTIONS, "cuda_oom": "stop"}, cooldown_seconds=30)
    d = policy.decide(diag("cuda_oom"), Budgets(), s, seen_before=False)
    assert (d.action, d.delay) == (Action.STOP, 30)


def test_stop_does_not_spend_an_attempt() -> None:
    budgets = Budgets()
    d = policy.decide(diag("gpu_hardware"), budgets, spec(), seen_before=False)
    policy.commit(budgets, diag("gpu_hardware"), d, 1.0)
    assert budgets.attempts("sig-1") == 0 and budgets.signatures["sig-1"].category == "gpu_hardware"


def test_a_long_run_without_progress_is_not_stable_and_counts_as_no_progress() -> None:
    from phoenix_sidecar.config.schema import Settings
    from phoenix_sidecar.supervise.policy import PolicySpec, note_run
    from phoenix_sidecar.supervise.state import Budgets, SignatureBudget

    spec = PolicySpec.from_settings(Settings(), repair_available=False)
    budgets = Budgets(signatures={"s": SignatureBudget(category="unknown", attempts=2)}, failures_in_a_row=2)
    assert not note_run(budgets, 10 * spec.stable_run_seconds, spec, progressed=False)
    assert budgets.signatures["s"].attempts == 2 and budgets.no_progress_runs == 1
    assert note_run(budgets, spec.stable_run_seconds, spec, progressed=True)
    assert budgets.signatures["s"].attempts == 0 and budgets.no_progress_runs == 0
    assert note_run(budgets, spec.stable_run_seconds, spec, progressed=None)  # no steps reported: time decides
