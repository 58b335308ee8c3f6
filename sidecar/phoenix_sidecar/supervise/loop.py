"""The supervision loop shared by `phoenix run` and `phoenix watch`.

Start the job, watch it (output, heartbeat, safety gates, shutdown requests), and when a run ends
badly: diagnose it, record an incident, let the policy decide, and act (restart after a backoff,
repair then restart, or stop and explain). Everything the loop touches is passed in: the runtime,
the state store, the event bus, the repair engine and the observability; the loop itself only
decides and sequences. Time, waits and the gates come through the seams in `seams`, so tests
drive the loop with a fake clock and scripted runs, without a process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from phoenix_sidecar import events as ev
from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.errors import GaveUp, StateError
from phoenix_sidecar.events import EventBus
from phoenix_sidecar.observe.gates import SafetyTrip
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.repair.model import RepairRequest
from phoenix_sidecar.runtime.base import ENGINE, RunEnd, Runtime, engine_cause, engine_job_of
from phoenix_sidecar.supervise import policy
from phoenix_sidecar.supervise import progress as prog
from phoenix_sidecar.supervise.giveup import give_up_summary
from phoenix_sidecar.supervise.incidents import note_decision, open_incident, place, roll_back_if_worse
from phoenix_sidecar.repair.outcomes import Outcome
from phoenix_sidecar.supervise.policy import Action, Decision, GiveUpReason, PolicySpec
from phoenix_sidecar.supervise.seams import Clock, Gates, NullGates, Repairer, SystemClock, Triager, default_diagnosis
from phoenix_sidecar.supervise.triage import SessionTriage, TriageVerdict
from phoenix_sidecar.supervise.state import Incident, JobState, StateStore, check_transition
from phoenix_watchdog.diagnosis.failure import Diagnosis, HangInfo
from phoenix_watchdog.heartbeat import Heartbeat
from phoenix_watchdog.progress import Divergence, HangVerdict

log = logging.getLogger(__name__)
STATUS_SAVE_SECONDS = 15.0  # how often a quiet loop refreshes the job status in state.json
IDLE_TICK_SECONDS = 5.0


class Supervisor:
    """Keeps one job alive within its budgets.

    Args:
        settings: the effective settings.
        runtime: starts, watches and stops the job.
        heartbeat: the same object the runtime feeds.
        store: state.json.
        bus: receives every event (metrics, console, run log, webhook).
        paths: the workspace's ``.phoenix_cli`` layout.
        repair: the repair engine, or None (repairs then give up with a summary).
        gates: observability (liveness ticks, hardware safety gates); None: no ticks, no gates.
        diagnose: the diagnosis function (the watchdog's by default).
        clock: the time and the waits (the system's by default; the heartbeat should share it).
        triage: asks an LLM to name failures the rules call unknown (``llm_triage``); None: never.
    """

    def __init__(self, settings: Settings, runtime: Runtime, heartbeat: Heartbeat, store: StateStore,
                 bus: EventBus, paths: StatePaths, *, repair: Repairer | None = None,
                 gates: Gates | None = None, diagnose: Callable[..., Diagnosis] | None = None,
                 clock: Clock | None = None, triage: Triager | None = None) -> None:
        self.settings = settings
        self.runtime = runtime
        self.heartbeat = heartbeat
        self.store = store
        self.bus = bus
        self.paths = paths
        self.repair = repair
        self.gates: Gates = gates if gates is not None else NullGates()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.diagnose = diagnose if diagnose is not None else default_diagnosis(settings)
        self.triage = SessionTriage(triage)
        self.spec = PolicySpec.from_settings(settings, repair_available=repair is not None)
        self.state = store.load()
        # Progress (the steps in the output) and the hang judge: the same under `run` and `watch`.
        self.progress = prog.attach_tracker(settings, heartbeat, self.state.progress, clock=self.clock.monotonic,
                                            wall=self.clock.time)
        self.judge = prog.make_judge(settings, heartbeat, self.gates.gpu_snapshot, clock=self.clock.monotonic)
        self._gpu_baseline: dict[str, int] | None = None
        self._stopped_for: HangVerdict | Divergence | None = None
        self.tick_seconds = min(IDLE_TICK_SECONDS, settings.gpu_poll_seconds)
        self._shutdown: int | None = None
        self._trip: SafetyTrip | None = None
        self._wake = threading.Event()
        self._last_status_save = 0.0
        self._job_state: JobState | None = None  # this session's, checked; state.json may hold an older one

    # -- public -------------------------------------------------------------------------------
    def request_shutdown(self, signum: int) -> None:
        """Stop the job and return (from a signal handler or another thread)."""
        self._shutdown = signum
        self._wake.set()
        self.runtime.wakeup()

    @property
    def shutdown_requested(self) -> bool:
        return self._shutdown is not None

    def reset_budgets(self) -> None:
        """Forget the attempts spent (a human fixed the cause); the incident history stays."""
        self.state.budgets = type(self.state.budgets)()
        self.store.save(self.state)

    def run(self) -> int:
        """Supervise until the job succeeds (0), Phoenix gives up (`GaveUp`), or a shutdown (128+sig)."""
        self._start(reason=None)
        while True:
            end = self._watch()
            if self._shutdown is not None:
                return self._interrupted()
            if end.stopped_for and end.stopped_for.startswith("safety:"):
                if not self._safety_stop(end):
                    return self._interrupted()
                continue
            if engine_cause(end.stopped_for):
                self._engine_end(end)  # the scheduler's doing, not the code's
                continue
            if end.exit.succeeded and end.hang is None:
                self._set_state(JobState.SUCCEEDED)
                self.bus.emit(ev.JobSucceeded())
                return 0
            if not self._failure(end):
                return self._interrupted()

    # -- watching -----------------------------------------------------------------------------
    def _start(self, reason: str | None, *, counts: bool = True) -> None:
        """Start the job; a restart (``reason`` set) spends the total budget unless ``counts`` is off."""
        self._set_state(JobState.STARTING)
        if reason is None:  # what the GPUs hold without the job: a restart waits until they are back to it
            self._gpu_baseline = prog.memory_by_gpu(self.gates.gpu_snapshot())
        else:
            s = self.settings
            prog.wait_reclaimed(self._gpu_baseline, self.gates.gpu_snapshot, timeout=s.gpu_reclaim_timeout_seconds,
                                tolerance_bytes=s.gpu_reclaim_tolerance_mb * prog.MIB, now=self.clock.monotonic,
                                sleep=self._sleep)
        self._stopped_for = None
        began = self.runtime.start()
        attached = began is not None and began.attached
        same_run = attached and abs((self.state.job.started_at or 0.0) - began.started_at) < 1e-3
        if not same_run:  # attaching to the run Phoenix last saw (a restarted sidecar) counts nothing
            self.state.job.run += 1
        if reason is not None:
            if counts:
                self.state.budgets.total_restarts += 1
            self.bus.emit(ev.JobRestarted(reason=reason))
        self.state.job.target = self.runtime.target
        self.state.job.started_at = began.started_at if began is not None else self.clock.time()
        self.bus.emit(ev.JobStarted(run=self.state.job.run, target=self.runtime.target, attached=attached,
                                    started_at=self.state.job.started_at))
        self._set_state(JobState.RUNNING)

    def _watch(self) -> RunEnd:
        while True:
            left = self.judge.seconds_left()
            timeout = self.tick_seconds if left is None else min(left, self.tick_seconds)
            end = self.runtime.wait(timeout)
            if end is not None:
                return end
            self.gates.loop_tick()
            if self._shutdown is not None:
                return self._stop(reason="shutdown")
            verdict = self.judge.verdict()
            if verdict is not None:
                return self._stop_hung(verdict)
            divergence = self.progress.divergence if self.progress is not None else None
            if divergence is not None:
                self._stopped_for = divergence
                self._set_state(JobState.STOPPING)
                return self._stop(reason=f"divergence:{divergence.kind}")
            trip = self.gates.safety_trip()
            if trip is not None:
                self._trip = trip
                self.bus.emit(ev.SafetyTripped(gate=trip.gate, detail=trip.detail))
                self._set_state(JobState.STOPPING)
                return self._stop(reason=f"safety:{trip.gate}")
            if self.clock.monotonic() - self._last_status_save >= STATUS_SAVE_SECONDS:
                self.state.job.last_output = self.heartbeat.last_output
                prog.publish(self.state.progress, self.progress)
                self._save()

    def _stop_hung(self, verdict: HangVerdict) -> RunEnd:
        self._stopped_for = verdict
        self._set_state(JobState.STOPPING)
        self.bus.emit(ev.HangDetected(silent_seconds=verdict.silent_seconds, detail=verdict.detail))
        stack = self.runtime.dump_stack()
        return self._stop(hang=HangInfo(silent_seconds=verdict.silent_seconds, stack=stack, detail=verdict.detail))

    def _stop(self, *, hang: HangInfo | None = None, reason: str | None = None) -> RunEnd:
        """Stop the job, saying so while the grace runs (SIGTERM, then SIGKILL after it)."""
        grace = self.settings.kill_grace_seconds
        step = f"stopping the job: SIGTERM, SIGKILL after {grace:g} s"
        self.bus.emit(ev.StepProgress(step="stop", detail=step, limit_seconds=grace))
        try:
            return self.runtime.stop(hang=hang, reason=reason)
        finally:
            self.bus.emit(ev.StepProgress(step="stop", detail=step, limit_seconds=grace, done=True))

    # -- failures -----------------------------------------------------------------------------
    def _failure(self, end: RunEnd) -> bool:
        """Handle a failed run. Returns False when a shutdown interrupted the handling."""
        diagnosis = self.diagnose(end.tail, end.exit, end.hang, str(self.paths.workspace))
        stopped_for = self._stopped_for
        if isinstance(stopped_for, Divergence):
            diagnosis = prog.diverged_diagnosis(diagnosis, stopped_for)
        diagnosis, verdict = self.triage.apply(diagnosis, end.tail, end.hang)  # only what the rules call unknown
        budgets = self.state.budgets
        policy.note_run(budgets, end.duration, self.spec, prog.end_of_run(self.state.progress, self.progress))
        incident = self._open_incident(end, diagnosis, verdict)
        incident.evidence = stopped_for.detail if stopped_for is not None else None
        incident.step = self.state.progress.step
        if self._maybe_roll_back(end, incident):
            return self._restart_after(0.0, reason="rollback")
        seen_before = diagnosis.signature in budgets.signatures
        decision = policy.decide(diagnosis, budgets, self.spec, seen_before=seen_before,
                                 blowup=isinstance(stopped_for, Divergence) and stopped_for.kind == "blowup")
        self._record_decision(incident, diagnosis, decision)
        if decision.action is Action.STOP:
            self._give_up(incident, diagnosis, decision)
        if decision.action is Action.RESTART:
            return self._restart_after(decision.delay, reason=diagnosis.category)
        return self._repair(incident, diagnosis, end)

    def _open_incident(self, end: RunEnd, diagnosis: Diagnosis, verdict: TriageVerdict | None) -> Incident:
        incident = open_incident(self.state, self.paths, end, kind="hang" if end.hang else "crash",
                                 category=diagnosis.category, signature=diagnosis.signature,
                                 summary=diagnosis.summary + place(end, diagnosis), now=self.clock.time(),
                                 diagnosis=diagnosis)
        if verdict is not None:
            incident.category_source, incident.triage = verdict.category_source, verdict.record()
        self.bus.emit(ev.IncidentOpened(incident=incident.id, kind=incident.kind, category=diagnosis.category,
                                        signature=diagnosis.signature, summary=incident.summary,
                                        category_source=incident.category_source))
        if verdict is not None:
            self.bus.emit(verdict.event(incident.id))
        return incident

    def _record_decision(self, incident: Incident, diagnosis: Diagnosis, decision: Decision) -> None:
        policy.commit(self.state.budgets, diagnosis, decision, self.clock.time())
        note_decision(incident, decision, self.clock.time())
        self._save()
        self.bus.emit(ev.DecisionMade(incident=incident.id, action=decision.action.value, reason=decision.reason,
                                      delay_seconds=decision.delay, budget_remaining=decision.budget_remaining))

    def _restart_after(self, delay: float, *, reason: str) -> bool:
        if delay > 0:
            self._set_state(JobState.BACKOFF)
            if not self._sleep(delay):
                return False
        self._start(reason=reason)
        return True

    def _repair(self, incident: Incident, diagnosis: Diagnosis, end: RunEnd) -> bool:
        assert self.repair is not None
        request = RepairRequest(diagnosis, end.tail, end.hang.stack if end.hang else None)
        while True:
            self._set_state(JobState.REPAIRING)
            outcome = self.repair.repair(request)
            incident.repair = {"id": outcome.repair_id, "outcome": outcome.outcome, "reason": outcome.reason,
                               "files": list(outcome.files)}
            if outcome.disk_full:  # not the failure's fault: its attempt is given back, and Phoenix stops (exit 7)
                policy.refund(self.state.budgets, diagnosis)
                self._save()
                raise StateError(f"a full disk stopped the repair ({outcome.reason}); the attempt was not "
                                 f"counted: free some space and run again")
            self._save()
            if outcome.ok:
                if outcome.outcome == Outcome.PROMOTED:
                    self.state.promoted_repair = {"id": outcome.repair_id, "run_seconds_before": end.duration,
                                                  "signature": diagnosis.signature, "run": self.state.job.run + 1}
                return self._restart_after(0.0, reason="repair")
            if outcome.outcome == Outcome.NO_TARGET:
                self._give_up(incident, diagnosis, Decision(
                    Action.STOP, GiveUpReason.REPAIR_FAILED, f"nothing Phoenix may patch: {outcome.reason}",
                    self.spec.cooldown_seconds, 0, incident.budget_remaining))
            decision = policy.decide(diagnosis, self.state.budgets, self.spec, seen_before=True)
            if decision.action is Action.RESTART:
                self._record_decision(incident, diagnosis, decision)
                return self._restart_after(decision.delay, reason=diagnosis.category)
            if decision.action is Action.STOP:
                self._give_up(incident, diagnosis, Decision(
                    decision.action, GiveUpReason.REPAIR_FAILED,
                    f"the repair failed ({outcome.outcome}: {outcome.reason}) and {decision.reason}",
                    decision.delay, 0, 0))
            self._record_decision(incident, diagnosis, decision)
            if outcome.outcome == Outcome.LLM_FAILED:
                # The LLM may come back: wait like a restart would before asking again.
                self._set_state(JobState.BACKOFF)
                if not self._sleep(policy.backoff_delay(self.state.budgets.failures_in_a_row - 1, self.spec)):
                    return False

    def _maybe_roll_back(self, end: RunEnd, incident: Incident) -> bool:
        """A repaired job that fails sooner than before gets its repair rolled back."""
        if not roll_back_if_worse(self.state, end, incident, repairer=self.repair, enabled=self.settings.auto_rollback,
                                  now=self.clock.time()):
            return False
        self._save()
        self.bus.emit(ev.DecisionMade(incident=incident.id, action="rollback", reason=incident.reason,
                                      delay_seconds=0.0, budget_remaining=incident.budget_remaining))
        return True

    def _give_up(self, incident: Incident, diagnosis: Diagnosis, decision: Decision) -> None:
        incident.action = "stop"
        incident.reason = decision.reason
        incident.decided_at = incident.decided_at or self.clock.time()
        self._set_state(JobState.GAVE_UP)
        self.bus.emit(ev.GaveUp(category=diagnosis.category, reason=decision.code))
        if decision.delay > 0:
            log.warning("cooling down %gs before stopping", decision.delay)
            self._sleep(decision.delay)
        raise GaveUp(give_up_summary(incident, diagnosis, decision, self.state, self.spec, self.paths),
                     {"id": incident.id, "signature": diagnosis.signature, "category": diagnosis.category})

    # -- safety -------------------------------------------------------------------------------
    def _safety_stop(self, end: RunEnd) -> bool:
        trip = self._trip
        assert trip is not None
        incident = open_incident(self.state, self.paths, end, kind="safety", category=trip.gate,
                                 signature=f"safety-{trip.gate}", summary=trip.detail, now=self.clock.time())
        self.bus.emit(ev.IncidentOpened(incident=incident.id, kind="safety", category=trip.gate,
                                        signature=f"safety-{trip.gate}", summary=trip.detail))
        resume = trip.recoverable and self.settings.safety_resume
        incident.action = "wait" if resume else "stop"
        incident.reason = (f"{trip.detail}: waiting for it to clear, then resuming" if resume
                           else f"{trip.detail}: stopped for a human")
        incident.decided_at = self.clock.time()
        self._set_state(JobState.SAFETY_STOP)
        self.bus.emit(ev.DecisionMade(incident=incident.id, action=incident.action, reason=incident.reason,
                                      delay_seconds=0.0, budget_remaining=0))
        if not resume:
            self._set_state(JobState.GAVE_UP)
            self.bus.emit(ev.GaveUp(category=trip.gate, reason=GiveUpReason.SAFETY))
            raise GaveUp(f"phoenix stopped the job for safety: {trip.detail}\n"
                         f"  nothing was patched; fix the hardware condition, then start Phoenix again",
                         {"id": incident.id, "category": trip.gate})
        while self.gates.safety_trip() is not None:
            self.gates.loop_tick()
            if not self._sleep(self.tick_seconds):
                return False
        self.bus.emit(ev.SafetyCleared(gate=trip.gate))
        self._start(reason="safety", counts=False)  # a safety pause is not the job's failure
        return True

    # -- the engine's doing (Slurm: preemption, node failure, requeue, time limit) ---------------
    def _engine_end(self, end: RunEnd) -> None:
        """Record an end the scheduler caused and restart without spending a failure budget."""
        judged = engine_cause(end.stopped_for)
        assert judged is not None and end.stopped_for is not None
        kind = judged[0].value
        cause = end.stopped_for.removeprefix(ENGINE)
        diagnosis = self.diagnose(end.tail, end.exit, None, str(self.paths.workspace))
        found = f"; {diagnosis.summary}{place(end, diagnosis)}" if diagnosis.category != "unknown" else ""
        incident = open_incident(self.state, self.paths, end, kind="engine", category=kind,
                                 signature=f"engine-{kind}", summary=f"{cause}{found}", now=self.clock.time())
        self.bus.emit(ev.IncidentOpened(incident=incident.id, kind="engine", category=kind,
                                        signature=incident.signature, summary=incident.summary))
        incident.action, incident.decided_at = "restart", self.clock.time()
        incident.reason = f"{cause}: not the job's fault; restarted without spending a failure budget"
        self._save()
        self.bus.emit(ev.DecisionMade(incident=incident.id, action="restart", reason=incident.reason,
                                      delay_seconds=0.0, budget_remaining=incident.budget_remaining))
        self._start(reason=kind, counts=False)

    # -- plumbing -----------------------------------------------------------------------------
    def _interrupted(self) -> int:
        self._set_state(JobState.INTERRUPTED)
        return 128 + (self._shutdown or 15)

    def _sleep(self, seconds: float) -> bool:
        """Wait, waking early for a shutdown. Returns False when a shutdown was requested."""
        deadline = self.clock.monotonic() + seconds
        while self._shutdown is None:
            left = deadline - self.clock.monotonic()
            if left <= 0:
                return True
            self.clock.wait(self._wake, min(left, self.tick_seconds))
            self.gates.loop_tick()
        return False

    def _set_state(self, state: JobState) -> None:
        self._job_state = check_transition(self._job_state, state)
        self.state.job.state = state
        self.state.job.last_output = self.heartbeat.last_output
        self._save()
        self.bus.emit(ev.StateChanged(state=state))

    def _save(self) -> None:
        self._last_status_save = self.clock.monotonic()
        self.state.job.engine = job.as_dict() if (job := engine_job_of(self.runtime)) else None
        self.store.save(self.state)
