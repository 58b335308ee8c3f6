"""Phoenix's event-driven Prometheus metrics: their definitions and the listener that updates them.

Everything lives on a `CollectorRegistry` passed in (never the global one). `PhoenixMetrics`
changes when the supervisor emits an event; the scrape-time collectors live in `collectors`.

Label rules: every label value comes from a bounded set. The sets are the vocabularies' own enums
(`Category` from the watchdog, `Outcome` and `RejectReason` from the repair wing, `GiveUpReason`
from the policy, `TriageResult` from the triage), never retyped here. Free-form values from events are mapped onto known values
or, past a small cap, onto "other"; signatures, file paths and messages never become labels.
Known label combinations are created at 0 up front, so ``increase()`` sees the first event.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from phoenix_sidecar import __version__
from phoenix_sidecar import events as ev
from phoenix_sidecar.config.schema import Action, Settings
from phoenix_sidecar.observe.gates import GATES, GateChange
from phoenix_sidecar.repair.outcomes import Outcome, RejectReason
from phoenix_sidecar.runtime.base import EngineCause
from phoenix_sidecar.supervise.policy import GiveUpReason
from phoenix_watchdog.diagnosis.categories import Category
from phoenix_sidecar.supervise.state import JobState
from phoenix_sidecar.supervise.triage import TriageResult

# No `<name>_created` series beside every counter and histogram: they double the series and no rule
# or panel reads them. (A process-wide switch of prometheus_client; Phoenix owns its process.)
disable_created_metrics()

INCIDENT_KINDS = ("crash", "hang", "safety", "engine")
DECISIONS = (*(a.value for a in Action), "wait", "rollback")
CATEGORIES = tuple(c.value for c in Category)
RESTART_REASONS = (*CATEGORIES, "repair", "safety", *(c.value for c in EngineCause))
GIVE_UP_REASONS = tuple(r.value for r in GiveUpReason)
REPAIR_OUTCOMES = tuple(o.value for o in Outcome)
PATCH_REJECTIONS = tuple(r.value for r in RejectReason)
# Rejections whose series exist at 0 from the start (the rules an alert is most likely to watch);
# every other reason appears on its first use.
PRECREATED_REJECTIONS = (RejectReason.ALLOWLIST, RejectReason.NOT_SHOWN, RejectReason.DENYLIST,
                         RejectReason.OUTSIDE_WORKSPACE, RejectReason.NOT_FOUND, RejectReason.AMBIGUOUS)
LLM_ERRORS = ("timeout", "http", "rate_limited", "process", "parse", "config", "other")
VERIFY_STAGES = ("py_compile", "test_cmd")
WEBHOOK_RESULTS = ("sent", "failed", "dropped")
TRIAGE_RESULTS = tuple(r.value for r in TriageResult)
LLM_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 180, 300, 600)
VERIFY_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1200)
_LABEL_VALUE = re.compile(r"^[a-z0-9_]{1,40}$")


class BoundedLabel:
    """Maps free-form values onto a bounded label set: known values, a few extra ones, then "other"."""

    def __init__(self, known: Iterable[str], extra: int = 8) -> None:
        self._known = set(known)
        self._extra = extra
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        value = (value or "").strip().lower()
        if value in self._known or value in self._seen:
            return value
        if _LABEL_VALUE.match(value) and len(self._seen) < self._extra:
            self._seen.add(value)
            return value
        return "other"


class PhoenixMetrics:
    """The event-driven metrics, and the listener that turns `events` into them (``handle``)."""

    def __init__(self, registry: CollectorRegistry, settings: Settings, *, target: str) -> None:
        r = registry
        self.run_started_at: float | None = None
        self._safety_incidents: set[int] = set()  # their decisions say nothing about the retry budget
        Gauge("phoenix_build_info", "Phoenix version (always 1)", ["version"], registry=r).labels(__version__).set(1)
        Gauge("phoenix_target_info", "What this Phoenix supervises (always 1)", ["target"],
              registry=r).labels(target[:80]).set(1)
        # -- the job -------------------------------------------------------------------------
        self.state = Gauge("phoenix_job_state", "1 for the job's current state, 0 for the others", ["state"], registry=r)
        self._set_state(JobState.STARTING)
        self.runs = Counter("phoenix_job_runs", "Runs of the job started (the first start and every restart)", registry=r)
        self.last_start = Gauge("phoenix_job_last_start_timestamp_seconds", "When the current run started (Unix time)", registry=r)
        self.incidents = Counter("phoenix_incidents", "Runs that ended badly, by kind", ["kind"], registry=r)
        self.hangs = Counter("phoenix_hangs", "Runs stopped because the job was silent past the heartbeat timeout", registry=r)
        self.crashes = Counter("phoenix_crashes", "Runs that crashed, by diagnosed category", ["category"], registry=r)
        self.decisions = Counter("phoenix_decisions", "Decisions taken on incidents, by action", ["action"], registry=r)
        self.restarts = Counter("phoenix_job_restarts", "Restarts of the job, by reason", ["reason"], registry=r)
        self.budget = Gauge("phoenix_budget_remaining", "Attempts left for the current error signature, as of the last decision", registry=r)
        self.budget.set(settings.max_retries)
        self.gave_up = Counter("phoenix_gave_up", "Times Phoenix stopped the job for good, by reason", ["reason"], registry=r)
        self._categories = BoundedLabel(CATEGORIES)
        self._restart_reasons = BoundedLabel(RESTART_REASONS)
        self._give_up_reasons = BoundedLabel(GIVE_UP_REASONS)
        _precreate(self.incidents, INCIDENT_KINDS)
        _precreate(self.crashes, CATEGORIES)
        _precreate(self.decisions, DECISIONS)
        _precreate(self.restarts, RESTART_REASONS)
        _precreate(self.gave_up, GIVE_UP_REASONS)
        # -- repair --------------------------------------------------------------------------
        self.repairs = Counter("phoenix_repairs", "Repair attempts, by failure category and outcome", ["category", "outcome"], registry=r)
        self._outcomes = BoundedLabel(REPAIR_OUTCOMES)
        for category in CATEGORIES:
            if settings.action_for(category) is Action.REPAIR:
                for outcome in REPAIR_OUTCOMES:
                    self.repairs.labels(category, outcome)
        self.llm_seconds = Histogram("phoenix_llm_request_duration_seconds", "Duration of LLM calls, by client",
                                     ["client"], buckets=LLM_BUCKETS, registry=r)
        self.llm_requests = Counter("phoenix_llm_requests", "LLM calls, by client and result", ["client", "result"], registry=r)
        self.llm_errors = Counter("phoenix_llm_errors", "Failed LLM calls, by client and kind of error", ["client", "error"], registry=r)
        clients = list(dict.fromkeys([settings.primary, *settings.fallback]))
        self._clients = BoundedLabel(clients, extra=4)
        self._llm_errors = BoundedLabel(LLM_ERRORS, extra=0)
        for client in clients:
            self.llm_seconds.labels(client)
            _precreate(self.llm_requests, [(client, "ok"), (client, "error")])
            _precreate(self.llm_errors, [(client, e) for e in LLM_ERRORS])
        self.rejected = Counter("phoenix_patches_rejected", "LLM patches refused before applying, by reason", ["reason"], registry=r)
        self._rejections = BoundedLabel(PATCH_REJECTIONS, extra=0)  # events carry only RejectReason values
        _precreate(self.rejected, PRECREATED_REJECTIONS)
        self.verify_seconds = Histogram("phoenix_verification_duration_seconds", "Duration of patch verification, by stage",
                                        ["stage"], buckets=VERIFY_BUCKETS, registry=r)
        self.verifications = Counter("phoenix_verifications", "Patch verifications, by stage and result", ["stage", "result"], registry=r)
        self._stages = BoundedLabel(VERIFY_STAGES, extra=2)
        for stage in VERIFY_STAGES:
            self.verify_seconds.labels(stage)
            _precreate(self.verifications, [(stage, "passed"), (stage, "failed")])
        self.promotions = Counter("phoenix_repair_promotions", "Verified repairs promoted into the workspace", registry=r)
        self.promoted_files = Counter("phoenix_repair_promoted_files", "Files changed by promoted repairs", registry=r)
        self.rollbacks = Counter("phoenix_repair_rollbacks", "Repairs rolled back, by trigger", ["trigger"], registry=r)
        _precreate(self.rollbacks, ("automatic", "manual"))
        self.triages = Counter("phoenix_triage", "Failures the rules called unknown that the LLM was asked to name "
                               "(llm_triage), by result; a reuse of the session's answer is not counted",
                               ["result"], registry=r)
        _precreate(self.triages, TRIAGE_RESULTS)
        # -- safety and notifications ---------------------------------------------------------
        self.gate_tripped = Gauge("phoenix_safety_gate_tripped", "1 while a hardware safety gate holds the job stopped", ["gate"], registry=r)
        self.trips = Counter("phoenix_safety_trips", "Times a hardware safety gate tripped", ["gate"], registry=r)
        _precreate(self.gate_tripped, GATES)
        _precreate(self.trips, GATES)
        if settings.gpu_max_temp_c > 0:
            Gauge("phoenix_safety_gpu_temperature_limit_celsius", "GPU temperature that stops the job",
                  registry=r).set(settings.gpu_max_temp_c)
        if settings.gpu_max_power_ratio > 0:
            Gauge("phoenix_safety_gpu_power_limit_ratio", "GPU power, as a fraction of its enforced limit, that stops the job",
                  registry=r).set(settings.gpu_max_power_ratio)
        if settings.min_free_disk_gb > 0:
            Gauge("phoenix_safety_disk_min_free_bytes", "Free space below which the job stops",
                  registry=r).set(settings.min_free_disk_gb * 2**30)
        self.webhook = Counter("phoenix_webhook_notifications", "Webhook notifications, by result", ["result"], registry=r)
        _precreate(self.webhook, WEBHOOK_RESULTS)
        # -- the supervisor's own liveness ----------------------------------------------------
        self.last_tick = Gauge("phoenix_supervisor_last_tick_timestamp_seconds", "Last iteration of the supervisor loop (Unix time)", registry=r)
        self.tick_timeout = Gauge("phoenix_supervisor_tick_timeout_seconds", "Silence of the supervisor loop after which /healthz fails", registry=r)

    # -- the listener --------------------------------------------------------------------------

    def handle(self, event: ev.Event) -> None:
        """Update the metrics for one event (an `events.Listener`)."""
        handler = self._HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _set_state(self, state: JobState) -> None:
        for s in JobState:
            self.state.labels(s.value).set(1 if s is state else 0)

    def _on_state(self, e: ev.StateChanged) -> None:
        self._set_state(JobState(e.state))

    def _on_started(self, e: ev.JobStarted) -> None:
        self.runs.inc()
        self.run_started_at = e.started_at or e.at  # an attached run began at the container's StartedAt
        self.last_start.set(e.at)

    def _on_hang(self, e: ev.HangDetected) -> None:
        self.hangs.inc()

    def _on_incident(self, e: ev.IncidentOpened) -> None:
        kind = e.kind if e.kind in INCIDENT_KINDS else "crash"
        self.incidents.labels(kind).inc()
        if kind == "crash":
            self.crashes.labels(self._categories(e.category)).inc()
        elif kind == "safety":
            if len(self._safety_incidents) > 100:
                self._safety_incidents.clear()
            self._safety_incidents.add(e.incident)

    def _on_decision(self, e: ev.DecisionMade) -> None:
        self.decisions.labels(e.action if e.action in DECISIONS else "other").inc()
        if e.incident not in self._safety_incidents:
            self.budget.set(e.budget_remaining)

    def _on_restart(self, e: ev.JobRestarted) -> None:
        self.restarts.labels(self._restart_reasons(e.reason)).inc()

    def _on_gave_up(self, e: ev.GaveUp) -> None:
        self.gave_up.labels(self._give_up_reasons(e.reason)).inc()

    def _on_repair(self, e: ev.RepairFinished) -> None:
        self.repairs.labels(self._categories(e.category), self._outcomes(e.outcome)).inc()

    def _on_llm(self, e: ev.LlmCalled) -> None:
        client = self._clients(e.client)
        self.llm_seconds.labels(client).observe(max(0.0, e.seconds))
        self.llm_requests.labels(client, "ok" if e.ok else "error").inc()
        if not e.ok:
            self.llm_errors.labels(client, self._llm_errors(e.error or "other")).inc()

    def _on_rejected(self, e: ev.PatchRejected) -> None:
        self.rejected.labels(self._rejections(e.reason)).inc()

    def _on_verified(self, e: ev.VerificationFinished) -> None:
        stage = self._stages(e.stage)
        self.verify_seconds.labels(stage).observe(max(0.0, e.seconds))
        self.verifications.labels(stage, "passed" if e.ok else "failed").inc()

    def _on_promoted(self, e: ev.RepairPromoted) -> None:
        self.promotions.inc()
        self.promoted_files.inc(max(0, e.files))

    def _on_rolled_back(self, e: ev.RepairRolledBack) -> None:
        self.rollbacks.labels("automatic" if e.automatic else "manual").inc()

    def _on_triaged(self, e: ev.FailureTriaged) -> None:
        if not e.cached:
            self.triages.labels(e.result if e.result in TRIAGE_RESULTS else TriageResult.FAILED.value).inc()

    _HANDLERS: dict[type, Callable[[Any, Any], None]] = {
        ev.StateChanged: _on_state, ev.JobStarted: _on_started, ev.HangDetected: _on_hang, ev.IncidentOpened: _on_incident,
        ev.DecisionMade: _on_decision, ev.JobRestarted: _on_restart, ev.GaveUp: _on_gave_up,
        ev.RepairFinished: _on_repair, ev.LlmCalled: _on_llm, ev.PatchRejected: _on_rejected,
        ev.VerificationFinished: _on_verified, ev.RepairPromoted: _on_promoted,
        ev.RepairRolledBack: _on_rolled_back, ev.FailureTriaged: _on_triaged,
    }

    # -- safety and notifications ----------------------------------------------------------------

    def gate_changed(self, change: GateChange) -> None:
        self.gate_tripped.labels(change.gate).set(1 if change.tripped else 0)
        if change.tripped:
            self.trips.labels(change.gate).inc()

    def webhook_result(self, result: str) -> None:
        self.webhook.labels(result if result in WEBHOOK_RESULTS else "failed").inc()


def _precreate(metric: Counter | Gauge, combos: Iterable[str | tuple[str, ...]]) -> None:
    for combo in combos:
        metric.labels(*((combo,) if isinstance(combo, str) else combo))
