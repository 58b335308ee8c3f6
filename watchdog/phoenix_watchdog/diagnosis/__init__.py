"""Diagnosis: reduce a failed run's output to a `Diagnosis`: category, stable signature, root cause, evidence.

Modules (all pure: text in, records out):
    categories  `Category`, the failure vocabulary the whole of Phoenix uses, and `PATCHABLE`
    failure     the records: `Diagnosis`, `ExitStatus`, `HangInfo`, `Frame`
    logtext     log lines cleaned and tagged with the rank that wrote them (rich boxes, glued
                progress bars); prefixes: repeated per-line prefixes found by their shape
    pytrace     Python tracebacks (chained, per rank); stackparse: stack dumps of hung jobs
    markers     line-level evidence (Xid, NCCL watchdog, OOM kills, segfaults), as `Finding`s
    launcher    torchrun's summary of which rank failed first
    rules       the declarative rule table (pattern -> category, strength, signature key, examples)
    trends      divergence no single line announces: fp16 overflow cascades, loss blow-ups
    classify    category rules for exceptions, and the strength scale evidence is ranked on
    candidate   `Candidate`: a finding competing to explain the failure
    diagnose    `diagnose`: every candidate, ranked; the strongest wins
    report      the winner -> `Diagnosis` (summary, evidence, patchable); hang diagnoses
    signature   normalisation and the ``<category>-<16 hex>`` signature
    usercode    which frames are the user's code

Imports run diagnose -> report -> candidate -> markers, pytrace; nothing imports `diagnose` back.
May import: the standard library and other ``phoenix_watchdog.diagnosis`` modules only (no probes,
no sources, never ``phoenix_sidecar``).

Public names: `diagnose`, `explain`, `Diagnosis`, `ExitStatus`, `HangInfo`, `Frame`, `Category`,
`PATCHABLE`, `Rule`, `user_rules` (the user's ``rules:`` validated into `Rule`s for `diagnose`).
"""

from phoenix_watchdog.diagnosis.categories import PATCHABLE, Category
from phoenix_watchdog.diagnosis.diagnose import diagnose, explain
from phoenix_watchdog.diagnosis.failure import Diagnosis, ExitStatus, Frame, HangInfo
from phoenix_watchdog.diagnosis.rules import Rule, user_rules

__all__ = ["PATCHABLE", "Category", "Diagnosis", "ExitStatus", "Frame", "HangInfo", "Rule", "diagnose", "explain",
           "user_rules"]
