"""The restart policy: given a diagnosis and the budgets, decide restart, repair or stop. Pure.

Rules, in order:

1. A run that lasted ``stable_run_seconds`` proves the job healthy again: the backoff and the
   per-signature attempts start over (the total budget does not; it is the backstop). For a job
   that reports steps, the run must also have passed the best step before it: time alone is not
   progress.
2. The category's action comes from the one table, ``config.schema.action_table`` (``settings.actions``
   over ``DEFAULT_ACTIONS``). A hang that
   recurs with the same signature (same stack location) is escalated from restart to repair.
3. ``stop`` categories stop at once: a human is needed (hardware, host OOM, full disk, ...).
   A loss blow-up (not a NaN) gets ``loss_blowup_action``, ``stop`` by default.
3a. ``max_no_progress_restarts`` runs in a row that ended without passing the best step stop
   with ``no_progress``: restarting again would go nowhere.
4. A signature that has used ``max_retries`` attempts stops; so does a job that has used
   ``max_total_restarts`` restarts in all.
5. ``repair`` with repair switched off (or no repair engine) stops with that reason.
6. ``restart`` waits ``backoff_initial * 2**(failures in a row)``, capped at ``backoff_max``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from phoenix_sidecar.config.schema import FALLBACK_ACTION, Action, Settings, action_table
from phoenix_sidecar.supervise.state import Budgets, SignatureBudget
from phoenix_watchdog.diagnosis.categories import Category
from phoenix_watchdog.diagnosis.failure import Diagnosis

__all__ = ["Action", "Decision", "GiveUpReason", "PolicySpec", "backoff_delay", "commit", "decide", "note_run"]


class GiveUpReason(enum.StrEnum):
    """Why Phoenix stopped the job for good: the bounded ``reason`` of ``events.GaveUp`` (a metric label).

    The policy decides all but two: the supervisor gives up with ``repair_failed`` when a repair left
    nothing to try, and with ``safety`` when a hardware gate holds the job stopped.
    """

    BUDGET_SIGNATURE = "budget_signature"
    BUDGET_TOTAL = "budget_total"
    CATEGORY_STOP = "category_stop"
    REPAIR_FAILED = "repair_failed"
    SAFETY = "safety"
    REPAIR_DISABLED = "repair_disabled"
    NO_PROGRESS = "no_progress"


# Bounded reason codes of a `Decision`: a give-up reason for a stop, else one of these.
BACKOFF = "backoff"
REPAIR = "repair"
HANG_ESCALATED = "hang_escalated"


@dataclass(frozen=True)
class PolicySpec:
    """The policy's knobs, taken from the settings."""

    max_retries: int
    max_total_restarts: int
    backoff_initial: float
    backoff_max: float
    stable_run_seconds: float
    cooldown_seconds: float
    actions: Mapping[str, Action]
    repair_available: bool
    max_no_progress_restarts: int = 0
    blowup_action: Action = Action.STOP

    @classmethod
    def from_settings(cls, settings: Settings, *, repair_available: bool) -> PolicySpec:
        return cls(
            max_retries=settings.max_retries,
            max_total_restarts=settings.max_total_restarts,
            backoff_initial=settings.backoff_initial_seconds,
            backoff_max=settings.backoff_max_seconds,
            stable_run_seconds=settings.stable_run_seconds,
            cooldown_seconds=settings.cooldown_seconds,
            actions=action_table(settings.actions),
            repair_available=repair_available and settings.repair,
            max_no_progress_restarts=settings.max_no_progress_restarts,
            blowup_action=Action(settings.loss_blowup_action),
        )


@dataclass(frozen=True)
class Decision:
    """What to do about one incident.

    Attributes:
        action: restart, repair or stop.
        code: a bounded reason code (``backoff``, ``budget_signature``, ...).
        reason: one line for humans.
        delay: seconds to wait first: the backoff before a restart, the cooldown before a stop.
        attempt: which attempt on this signature this is (1-based; 0 for a stop).
        budget_remaining: attempts left on this signature after this one.
    """

    action: Action
    code: str
    reason: str
    delay: float
    attempt: int
    budget_remaining: int


def note_run(budgets: Budgets, run_seconds: float, spec: PolicySpec, progressed: bool | None = None) -> bool:
    """Account for a finished run. Returns True when it was stable enough to reset the budgets.

    ``progressed``: whether the run passed the best step before it (None: the job reports no steps,
    and time alone decides). A run without progress is never stable, however long it lasted.
    """
    if progressed is not None:
        budgets.no_progress_runs = 0 if progressed else budgets.no_progress_runs + 1
    if run_seconds >= spec.stable_run_seconds and progressed is not False:
        budgets.failures_in_a_row = 0
        for entry in budgets.signatures.values():
            entry.attempts = 0
        return True
    return False


def decide(diagnosis: Diagnosis, budgets: Budgets, spec: PolicySpec, *, seen_before: bool,
           blowup: bool = False) -> Decision:
    """Decide what to do about a failure. Does not change the budgets (see `commit`).

    Args:
        diagnosis: the failure.
        budgets: the counters so far (after `note_run`).
        spec: the policy knobs.
        seen_before: the signature failed before in this supervision (used to escalate a hang).
        blowup: the run was stopped for a loss blow-up (``loss_blowup_action`` applies).
    """
    category = diagnosis.category
    if blowup:
        action = spec.blowup_action
    elif diagnosis.action:  # a user rule of phoenix.yaml named the action for this failure
        action = Action(diagnosis.action)
    else:
        action = Action(spec.actions.get(category, FALLBACK_ACTION))
    code = BACKOFF if action is Action.RESTART else REPAIR
    if category == Category.HANG and action is Action.RESTART and seen_before and diagnosis.patchable:
        action, code = Action.REPAIR, HANG_ESCALATED

    used = budgets.attempts(diagnosis.signature)
    remaining = max(0, spec.max_retries - used)
    if action is Action.STOP:
        why = "a loss blow-up" if blowup else category
        return _stop(GiveUpReason.CATEGORY_STOP, f"{why} needs a human: Phoenix does not restart or patch it", spec, remaining)
    if spec.max_no_progress_restarts and budgets.no_progress_runs >= spec.max_no_progress_restarts:
        return _stop(GiveUpReason.NO_PROGRESS, f"{budgets.no_progress_runs} runs in a row ended without passing the "
                     f"best step: restarting again would go nowhere", spec, remaining)
    if used >= spec.max_retries:
        return _stop(GiveUpReason.BUDGET_SIGNATURE, f"this failure has used all {spec.max_retries} attempts", spec, 0)
    if budgets.total_restarts >= spec.max_total_restarts:
        return _stop(GiveUpReason.BUDGET_TOTAL, f"the job has used all {spec.max_total_restarts} restarts", spec, remaining)
    if action is Action.REPAIR and not spec.repair_available:
        return _stop(GiveUpReason.REPAIR_DISABLED, f"{category} needs a code repair, and repair is switched off", spec, remaining)

    attempt = used + 1
    if action is Action.REPAIR:
        why = "the same hang recurred" if code == HANG_ESCALATED else f"{category} can be fixed in code"
        return Decision(Action.REPAIR, code, f"{why}: asking the LLM for a patch (attempt {attempt} of "
                        f"{spec.max_retries})", 0.0, attempt, remaining - 1)
    delay = backoff_delay(budgets.failures_in_a_row, spec)
    return Decision(Action.RESTART, BACKOFF, f"restarting in {delay:g}s (attempt {attempt} of {spec.max_retries})",
                    delay, attempt, remaining - 1)


def commit(budgets: Budgets, diagnosis: Diagnosis, decision: Decision, now: float) -> None:
    """Charge a decision to the budgets: an attempt on the signature and a failure in a row."""
    entry = budgets.signatures.get(diagnosis.signature)
    if entry is None:
        entry = budgets.signatures[diagnosis.signature] = SignatureBudget(
            category=diagnosis.category, first_seen=now)
    entry.last_seen = now
    entry.summary = diagnosis.summary
    if decision.action is not Action.STOP:
        entry.attempts += 1
        budgets.failures_in_a_row += 1


def refund(budgets: Budgets, diagnosis: Diagnosis) -> None:
    """Give back what `commit` charged for an attempt that a full disk, not the failure, spoiled."""
    entry = budgets.signatures.get(diagnosis.signature)
    if entry is not None and entry.attempts > 0:
        entry.attempts -= 1
        budgets.failures_in_a_row = max(0, budgets.failures_in_a_row - 1)


def backoff_delay(failures_in_a_row: int, spec: PolicySpec) -> float:
    """Exponential backoff: initial, 2x, 4x ... capped."""
    if spec.backoff_initial <= 0:
        return 0.0
    exponent = min(failures_in_a_row, 32)  # 2**32 x any sane initial delay is past every cap
    return min(spec.backoff_max, spec.backoff_initial * (2 ** exponent))


def _stop(code: str, reason: str, spec: PolicySpec, remaining: int) -> Decision:
    return Decision(Action.STOP, code, reason, spec.cooldown_seconds, 0, remaining)
