"""Error signatures: what stays the same when the same failure happens again.

A signature is ``<category>-<16 hex>``: the category, then a SHA-256 prefix of the failure's
*identity*. The identity is built from parts that describe the failure and not the run:

- the root exception's class name (last dotted component: ``torch.cuda.OutOfMemoryError`` and
  ``torch.OutOfMemoryError`` are the same class under two names);
- its message with everything run-specific folded (`normalise`): numbers, hex addresses, uuids,
  timestamps, pids, ranks, hosts, ports, temporary paths, tensor shapes, step counts, and the
  directories of absolute paths (their last two components stay);
- the innermost user-code location as file name, function and normalised source line (see
  `report.location_key`). Directory and line number are left out on purpose: a re-run from another
  directory moves the one, a repair or any edit above the failing line moves the other, and a
  failure that survives a repair attempt must still count against the same budget;
- for categories whose messages are boilerplate (CUDA OOM, host OOM, disk full, hardware, NCCL)
  a fixed key per kind of failure replaces the message (see `classify`).

Python's ``hash()`` is salted per process; hashlib is not, so signatures are stable across runs.
"""

from __future__ import annotations

import hashlib
import re

MAX_KEY_CHARS = 200

_FOLDS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, f), r) for p, f, r in (
    # Order matters: the wide, structured forms first, bare numbers last.
    (r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I, "<uuid>"),
    (r"\bGPU-[0-9a-f-]{8,}", re.I, "<uuid>"),
    (r"\d{4}-\d{2}-\d{2}[T _]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?", 0, "<time>"),
    (r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", 0, "<time>"),
    (r"\b0x[0-9a-f]+\b", re.I, "<addr>"),
    (r"\bPCI:[0-9a-f:.]+", re.I, "PCI:<bus>"),
    (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+|<\d+>)?", 0, "<ip>"),
    (r"\[[0-9a-f:]*:[0-9a-f:]+\](?::\d+)?", re.I, "<ip>"),  # [::1]:29500
    (r"(?<![\w/])/(?:tmp|var/tmp|dev/shm|run/user)(?:/[^\s'\":,)/]+)*/", 0, "<tmp>/"),  # keep the name
    # Any other absolute path keeps its last two components: the same file reached from another
    # scratch directory, node or container mount is the same file.
    (r"(?<![\w.:/<])/(?:[^\s'\"/:,()<>]+/)*(?=[^\s'\"/:,()<>]+/[^\s'\"/:,()<>]+)", 0, ""),
    (r"\b[\w.-]+<\d+>", 0, "<host>"),                              # NCCL: node-b03<47861>
    (r"\b(?=[a-z0-9]*\d)(?=[a-z0-9]*[a-z])[a-z0-9]{8,}\b", re.I, "<id>"),  # run ids, hashes
    (r"\b\d+(?:\.\d+)?\s?(?:[KMGTP]i?B|bytes)\b", 0, "<size>"),  # 2.00 GiB vs 512.00 MiB
    (r"\d+(?:\.\d+)?(?:e[+-]?\d+)?", re.I, "N"),
))
_SPACE = re.compile(r"\s+")


def normalise(text: str, workspace: str | None = None) -> str:
    """Fold the run-specific parts of a message, keeping the words that name the failure.

    >>> normalise("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 3; 79.11 GiB total)")
    'CUDA out of memory. Tried to allocate <size> (GPU N; <size> total)'
    """
    if workspace:
        text = text.replace(workspace.rstrip("/") + "/", "")
    for pattern, repl in _FOLDS:
        text = pattern.sub(repl, text)
    text = _SPACE.sub(" ", text).strip()
    return text[:MAX_KEY_CHARS]


def make_signature(category: str, *parts: str | None) -> str:
    """``<category>-<16 hex>`` from the category and the identity parts (None parts are skipped)."""
    identity = "\x1f".join([category, *(p for p in parts if p)])
    return f"{category}-{hashlib.sha256(identity.encode('utf-8', 'replace')).hexdigest()[:16]}"
