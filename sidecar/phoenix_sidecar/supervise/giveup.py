"""The give-up summary: the lines a human reads when Phoenix stops the job for good. Pure."""

from __future__ import annotations

from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.supervise.policy import Decision, GiveUpReason, PolicySpec
from phoenix_sidecar.supervise.state import Incident, SupervisorState
from phoenix_watchdog.diagnosis.failure import Diagnosis

# The reasons a human can clear by fixing the cause and resetting the budgets.
_RESETTABLE = (GiveUpReason.BUDGET_SIGNATURE, GiveUpReason.BUDGET_TOTAL, GiveUpReason.REPAIR_FAILED,
               GiveUpReason.NO_PROGRESS)


def give_up_summary(incident: Incident, diagnosis: Diagnosis, decision: Decision, state: SupervisorState,
                    spec: PolicySpec, paths: StatePaths) -> str:
    """The lines a human reads at 3 a.m.: what failed, how often, where, and what to do next."""
    entry = state.budgets.signatures.get(diagnosis.signature)
    attempts = entry.attempts if entry else 0
    where = f"{diagnosis.frame.file}:{diagnosis.frame.line} in {diagnosis.frame.function}" if diagnosis.frame else "-"
    error = ": ".join(x for x in (diagnosis.exception, diagnosis.message) if x) or diagnosis.summary
    lines = [
        f"phoenix gave up on the job: {decision.reason}",
        f"  signature:   {diagnosis.signature}",
        f"  category:    {diagnosis.category}" + (" (a code patch could fix it)" if diagnosis.patchable else "")
        + (f" (named by the LLM triage: {(incident.triage or {}).get('reason')})"
           if incident.category_source == "llm" else ""),
        f"  attempts:    {attempts} of {spec.max_retries} on this signature; "
        f"{state.budgets.total_restarts} of {spec.max_total_restarts} restarts in all",
        f"  last error:  {_clip(error, 300)}",
        f"  where:       {where}",
        f"  incident:    #{incident.id} ({incident.exit}); full output in {incident.details or paths.run_log}",
    ]
    progress = state.progress
    if progress.best_step is not None:
        lines.insert(5, f"  progress:    best step {progress.best_step}; this run reached {progress.run_best_step}; "
                        f"{state.budgets.no_progress_runs} run(s) in a row without passing the best")
    if incident.evidence:
        lines.insert(5, f"  evidence:    {_clip(incident.evidence, 300)}")
    if decision.code in _RESETTABLE:
        mode = state.supervisor.get("mode") or "run"
        lines.append(f"  after fixing the cause: phoenix {mode} --reset-budgets")
        if mode == "watch":  # the sidecar has exited: the command runs in a new one
            lines.append("    in the compose stack (Prometheus still scrapes it): "
                         "docker compose run --rm --use-aliases sidecar phoenix watch --reset-budgets")
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
