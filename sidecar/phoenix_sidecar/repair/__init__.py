"""Repair: ask an LLM for a fix, prove it in an isolated worktree, and only then promote it.

Layout (pure modules first):
    outcomes  the wing's vocabularies: `Outcome` (how a repair ended), `RejectReason` (which rule refused)
    model     records: RepairRequest, RepairOutcome, RollbackResult, RepairRecord, Patch
    patch/    answer text -> patches -> new file texts (answer, diff, ladder, locate, lines, apply)
    safety    allowlist, denylist, path resolution, content checks
    capability  new process, network, dynamic-code or escape capabilities a patch would add
    proximity   changes far from every frame of the failure (flagged in the record)
    targets   traceback paths -> workspace files; the config files an OOM repair may see
    prompt    the prompt, within its size limit
    llm/      the clients (gemini_cli, gemini_api, openai, command), their registry and their chain
    proc      child processes with a time limit and a whole-group kill
    gitrepo   git plumbing that never touches the user's index, HEAD or files
    isolation the isolated worktree (or copy) outside the workspace, and its clean-up after crashes
    sandbox   bubblewrap around the test command, probed once
    writeguard  without a sandbox: writes outside the copy detected and undone
    verify    py_compile, then the test command, in the isolated copy
    promote   backups, journal, atomic writes; rollback
    records   .phoenix_cli/repairs/<id>/
    pipeline  check -> apply -> isolate -> verify -> promote
    engine    RepairEngine, the interface the supervisor and the CLI use

Imports: ``errors``, ``events``, ``paths``, ``fsutil``, ``redact`` (the sidecar's one redactor), ``config.schema`` (plain data) and
``phoenix_watchdog.diagnosis``; never ``config.loader`` (settings, the environment and the config
file's path are handed to `RepairEngine`), never ``supervise``, ``observe``, ``runtime`` or ``commands``.

Public names: `RepairEngine`, the records below, `Outcome` and `RejectReason`.
"""

from phoenix_sidecar.repair.outcomes import Outcome, RejectReason
from phoenix_sidecar.repair.engine import RepairEngine
from phoenix_sidecar.repair.model import (
    PatchReport,
    PatchStatus,
    RepairOutcome,
    RepairRecord,
    RepairRequest,
    RollbackResult,
)

__all__ = [
    "Outcome", "PatchReport", "PatchStatus", "RejectReason", "RepairEngine", "RepairOutcome", "RepairRecord",
    "RepairRequest", "RollbackResult",
]
