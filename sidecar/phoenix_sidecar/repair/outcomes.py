"""The repair wing's bounded codes: how a repair ended (`Outcome`) and why an answer was refused (`RejectReason`).

They are metric labels (``phoenix_repairs_total{outcome}``, ``phoenix_patches_rejected_total{reason}``),
values in repair records and in `phoenix patch --json`, and documented names: never rename one.
Every rule that refuses an answer has its own reason, so a label says which rule fired.
"""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    """How one repair (`RepairEngine.repair`, `phoenix patch`) ended."""

    PROMOTED = "promoted"            # verified and written into the workspace
    DRY_RUN = "dry_run"              # verified; dry_run kept the workspace as it was
    REJECTED = "rejected"            # the answer broke a rule (see `RejectReason`); nothing was written
    VERIFY_FAILED = "verify_failed"  # py_compile or the test command failed in the isolated copy
    LLM_FAILED = "llm_failed"        # no client gave a usable answer
    NO_TARGET = "no_target"          # the traceback names no workspace file a repair may change
    ERROR = "error"                  # Phoenix itself failed (I/O, git, an internal error)


OK_OUTCOMES = frozenset({Outcome.PROMOTED, Outcome.DRY_RUN})
# A record whose repair never finished (Phoenix stopped during it): shown by `phoenix history`,
# never the outcome of a repair, so not an `Outcome` and not a metric label.
INTERRUPTED = "interrupted"


class RejectReason(enum.StrEnum):
    """Why an answer was refused before anything was written: the ``reason`` of ``AnswerRejected``."""

    # the answer as a whole
    INVALID_JSON = "invalid_json"
    BAD_FORMAT = "bad_format"
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    # the path a patch names
    BAD_PATH = "bad_path"
    ABSOLUTE_PATH = "absolute_path"
    TRAVERSAL = "traversal"
    SYMLINK = "symlink"
    OUTSIDE_WORKSPACE = "outside_workspace"
    HARD_LINK = "hard_link"
    NOT_FOUND = "not_found"
    NOT_A_FILE = "not_a_file"
    # the repair's rules about which files it may change
    DENYLIST = "denylist"        # a file Phoenix never patches (VCS internals, its own state, ...)
    ALLOWLIST = "allowlist"      # outside the configured ``allowlist`` globs
    NOT_SHOWN = "not_shown"      # allowlisted, but not one of the files the prompt showed for this failure
    # what a diff may do
    NEW_FILE = "new_file"
    DELETION = "deletion"
    RENAME = "rename"
    MODE_CHANGE = "mode_change"
    # the content
    BINARY = "binary"
    BIDI = "bidi"
    CONTROL_CHARS = "control_chars"
    ELISION = "elision"
    # placing the edit
    DIFF_MISMATCH = "diff_mismatch"
    CONTEXT_MISMATCH = "context_mismatch"  # a hunk's context lines are not in the file: written for another version
    NO_MATCH = "no_match"
    AMBIGUOUS = "ambiguous"
    OVERLAP = "overlap"
    BAD_RANGE = "bad_range"
    STALE_RANGE = "stale_range"
    NO_CHANGE = "no_change"
    # the size of the whole change
    TOO_MANY_FILES = "too_many_files"
    TOO_MANY_LINES = "too_many_lines"
    # what the patched code may do
    CAPABILITY = "capability"  # adds process, network, dynamic-code or file-system powers the file did not have
    # what verification saw (the only reasons found after the answer ran, in its isolated copy)
    WROTE_OUTSIDE = "wrote_outside"  # no sandbox here: the test command changed the workspace or home (undone)
