"""Supervise: keep one job alive within its budgets, and decide what to do when a run ends badly.

Layout (pure modules first):
    state     JobState and its checked transition table; state.json (budgets, incidents, job status)
    policy    the restart policy: diagnosis + budgets -> restart, repair or stop
    lock      the workspace lock (one supervisor per workspace)
    seams     the loop's clock, gates, repairer and triager protocols, and their production/null versions
    triage    LLM triage of unknown failures: when to ask, prompt, answer parser, verdict (`TriageResult`)
    incidents incident records, their log files, the rollback of a repair that made things worse
    giveup    the give-up summary a human reads
    loop      `Supervisor`: start, watch, diagnose, decide, act
    triage_llm  the production triager: the repair's LLM clients asked for a category, in one time limit
    session   the composition root: builds a session (lock, state, bus, runtime, observability,
              repair, signals) around one `Supervisor`

This face exports the pure vocabularies only (state, policy, lock), which other wings use:
observe/ and config/ import `JobState` and the policy's names from here. It deliberately does not
import `loop` or `session`: session imports config/, observe/, runtime/ and repair/, so importing it
here would put every wing that uses a vocabulary in an import circle. Commands import
``phoenix_sidecar.supervise.session`` for the composition root; tests import ``supervise.loop``.

May import: the top-level modules (errors, events, fsutil, paths, redact), config/ (settings),
phoenix_watchdog; loop also runtime/'s base, observe/'s gates and repair/'s model; triage_llm
repair/'s llm face (the clients); session everything it composes. Nothing imports session but commands/.
"""

from phoenix_sidecar.supervise.lock import WorkspaceLock, holder_is_dead, read_holder
from phoenix_sidecar.supervise.policy import Action, Decision, PolicySpec
from phoenix_sidecar.supervise.state import (
    TRANSITIONS,
    Budgets,
    IllegalTransition,
    Incident,
    JobState,
    JobStatus,
    SignatureBudget,
    StateStore,
    SupervisorState,
    check_transition,
    read_state,
)

__all__ = [
    "TRANSITIONS", "Action", "Budgets", "Decision", "IllegalTransition", "Incident", "JobState", "JobStatus",
    "PolicySpec", "SignatureBudget", "StateStore", "SupervisorState", "WorkspaceLock", "check_transition",
    "holder_is_dead", "read_holder", "read_state",
]
