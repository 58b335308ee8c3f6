"""Repair: ask an LLM for a fix, prove it in an isolated worktree, and only then promote it.

Layout (pure modules first):
    model     records: RepairRequest, RepairOutcome, RollbackResult, RepairRecord, Patch
    answer    LLM answer text -> patches, or a rejection with a reason
    udiff     lenient unified-diff parser; unidiff as a second opinion on metadata
    locate    finds where a block of lines sits, tolerantly, never guessing
    lines     a text as lines with their own endings; edits applied bottom up
    apply     patches -> new file texts, all or nothing
    safety    allowlist, denylist, path resolution, content checks
    redact    secrets and invisible characters out of everything sent or kept
    prompt    the prompt, within its size limit
    llm, llm_http, llm_proc   the clients (gemini_cli, gemini_api, openai, command) and their chain
    proc      child processes with a time limit and a whole-group kill
    gitrepo   git plumbing that never touches the user's index, HEAD or files
    isolation the isolated worktree (or copy) and its clean-up after crashes
    verify    py_compile, then the test command, in the isolated copy
    promote   backups, journal, atomic writes; rollback
    records   .phoenix_cli/repairs/<id>/
    pipeline  check -> apply -> isolate -> verify -> promote
    engine    RepairEngine, the interface the supervisor and the CLI use
"""

from phoenix_sidecar.repair.engine import RepairEngine
from phoenix_sidecar.repair.model import (
    OUTCOMES,
    REJECT_REASONS,
    PatchReport,
    PatchStatus,
    RepairOutcome,
    RepairRecord,
    RepairRequest,
    RollbackResult,
)

__all__ = [
    "OUTCOMES", "REJECT_REASONS", "PatchReport", "PatchStatus", "RepairEngine", "RepairOutcome", "RepairRecord",
    "RepairRequest", "RollbackResult",
]
