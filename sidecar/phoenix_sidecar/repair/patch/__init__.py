"""Patches: from an LLM answer's text to new file texts, all or nothing, without touching a file.

Modules (all pure: text in, text or ``AnswerRejected`` out):
    answer    the answer text -> `Patch` records (JSON, fenced or not), or a rejection
    diff      a lenient unified-diff parser; ``unidiff`` as a second opinion on file metadata
    ladder    the comparison ladder: where a run of lines sits in a file, exactly or more loosely
    locate    `Locator`: places one block of old lines (tolerating how LLMs misquote code), never guessing
    lines     a text as lines with their own endings; edits applied bottom up, overlaps refused
    apply     `apply_patches`: patches -> new file texts, each patch's status

Every refusal raises ``errors.AnswerRejected`` with a ``repair.outcomes.RejectReason``. This wing
imports ``errors``, ``repair.outcomes`` and ``repair.model`` only: no I/O, no configuration, no events.

Public names: `parse_answer` (answer), `apply_patches` (apply), `Locator` and `Block` (locate).
"""
