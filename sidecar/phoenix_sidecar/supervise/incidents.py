"""What an incident keeps for the human beyond state.json: its log file, and where it happened.

``incidents/<id>.log`` holds the whole output tail of the failed run (and the stack dump of a hung
one); the newest `MAX_INCIDENT_FILES` are kept. `place` names the rank and node of the failure
when the runtime knows them (a multi-node job on Slurm).
"""

from __future__ import annotations

import logging

from phoenix_sidecar.errors import PhoenixError
from phoenix_sidecar.fsutil import atomic_write_text
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.runtime.base import RunEnd
from phoenix_watchdog.diagnosis.failure import Diagnosis

log = logging.getLogger(__name__)
MAX_INCIDENT_FILES = 100


def write_details(paths: StatePaths, number: int, end: RunEnd) -> str | None:
    """Write ``incidents/<number>.log``; its path relative to the workspace, or None if it could not be kept."""
    directory = paths.incidents
    directory.mkdir(parents=True, exist_ok=True)
    text = end.tail
    if end.hang is not None:
        why = end.hang.detail or f"no output for {end.hang.silent_seconds:.0f}s"
        text += f"\n\n=== phoenix: {why}; stack dump ===\n"
        text += end.hang.stack or "(no stack dump could be taken)"
    path = directory / f"{number}.log"
    try:
        atomic_write_text(path, text)
    except PhoenixError as exc:
        log.error("%s", exc)
        return None
    for old in sorted(directory.glob("*.log"), key=lambda p: p.stat().st_mtime)[:-MAX_INCIDENT_FILES]:
        old.unlink(missing_ok=True)
    return str(path.relative_to(paths.workspace))


def place(end: RunEnd, diagnosis: Diagnosis) -> str:
    """`` (rank 1 on node n2)`` when the runtime knows where the deciding rank ran, else ``""``."""
    stream = diagnosis.stream
    if not stream or not stream.startswith("rank") or stream not in end.ranks:
        return ""
    return f" (rank {stream[4:]} on node {end.ranks[stream]})"
