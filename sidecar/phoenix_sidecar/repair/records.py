"""The repair records under ``.phoenix_cli/repairs/<id>/``: what was asked, answered, applied, verified, decided.

Each record holds ``meta.json`` (written first), ``diagnosis.json``, ``prompt.txt`` (as sent),
``answer*.txt`` (raw), ``patch.diff``, ``verify.log`` and ``outcome.json`` (written last, and updated
by promotion and rollback). Every text passes the redactor before it is written. Ids sort by time.
"""

from __future__ import annotations

import calendar
import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from phoenix_sidecar import fsutil
from phoenix_sidecar.errors import StateError
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.repair.outcomes import INTERRUPTED, Outcome
from phoenix_sidecar.repair.model import RepairRecord
from phoenix_sidecar.redact import Redactor

MAX_ARTEFACT_CHARS = 2_000_000
KEEP_RECORDS = 200


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


class RecordWriter:
    """Writes the artefacts of one repair."""

    def __init__(self, folder: Path, redactor: Redactor) -> None:
        self.folder = folder
        self.redactor = redactor

    @property
    def repair_id(self) -> str:
        return self.folder.name

    def text(self, name: str, text: str, *, code: bool = False) -> None:
        """Write a text artefact, redacted (``code``: as source code, see `Redactor.text`)."""
        cut = len(text) > MAX_ARTEFACT_CHARS
        # Cut first (redaction costs per byte), with a margin so no secret is cut in two unredacted.
        text = self.redactor.text(text[:MAX_ARTEFACT_CHARS + 4096], code=code)[:MAX_ARTEFACT_CHARS]
        if cut:
            text += f"\n[phoenix] cut at {MAX_ARTEFACT_CHARS} characters\n"
        fsutil.atomic_write_text(self.folder / name, text)

    def json(self, name: str, data: dict[str, Any]) -> None:
        fsutil.atomic_write_text(self.folder / name, json.dumps(self.redactor.data(data), indent=2) + "\n")

    def read_json(self, name: str) -> dict[str, Any]:
        return _load(self.folder / name)

    def update_outcome(self, **fields: Any) -> dict[str, Any]:
        data = self.read_json("outcome.json")
        data.update(fields)
        self.json("outcome.json", data)
        return data


class RepairStore:
    def __init__(self, paths: StatePaths, redactor: Redactor) -> None:
        self.paths = paths
        self.redactor = redactor

    def create(self, *, signature: str, category: str, source: str) -> RecordWriter:
        """A new record, with its meta written. Ids sort in creation order, even within a second."""
        ids = self.ids()
        last = _id_time(ids[-1]) if ids else 0
        micros = max(time.time_ns() // 1000, last + 1)
        for _ in range(100):
            repair_id = time_id(micros)
            folder = self.paths.repairs / repair_id
            try:
                folder.mkdir(parents=True)
                break
            except FileExistsError:
                micros += 1
            except OSError as exc:
                raise StateError(fsutil.describe_os_error(exc, folder)) from exc
        else:
            raise StateError("cannot create a repair record: every id was taken")
        writer = RecordWriter(folder, self.redactor)
        writer.json("meta.json", {"id": repair_id, "time": now_iso(), "signature": signature, "category": category,
                                  "source": source, "pid": os.getpid()})
        return writer

    def writer(self, repair_id: str) -> RecordWriter | None:
        folder = self.paths.repairs / repair_id
        if not repair_id or "/" in repair_id or repair_id.startswith(".") or not folder.is_dir():
            return None
        return RecordWriter(folder, self.redactor)

    def ids(self) -> list[str]:
        if not self.paths.repairs.is_dir():
            return []
        return sorted(p.name for p in self.paths.repairs.iterdir() if p.is_dir() and not p.name.startswith("."))

    def records(self) -> list[RepairRecord]:
        """Every record, oldest first."""
        return [self.record(i) for i in self.ids()]

    def record(self, repair_id: str) -> RepairRecord:
        folder = self.paths.repairs / repair_id
        meta, outcome = _load(folder / "meta.json"), _load(folder / "outcome.json")
        if outcome:
            result = str(outcome.get("outcome", Outcome.ERROR))
            if outcome.get("promotion") == "pending":
                result = INTERRUPTED
        else:
            result = INTERRUPTED
        return RepairRecord(
            repair_id=repair_id, time=str(meta.get("time", "")), signature=str(meta.get("signature", "")),
            category=str(meta.get("category", "")), outcome=result,
            reason=str(outcome.get("reason", "no outcome was recorded (Phoenix stopped during the repair)")),
            files=tuple(outcome.get("files") or ()), source=str(meta.get("source", "llm")),
            client=outcome.get("client"), commit=outcome.get("commit"),
            rolled_back=bool(outcome.get("rolled_back")))

    def outcome(self, repair_id: str) -> dict[str, Any]:
        return _load(self.paths.repairs / repair_id / "outcome.json")

    def previous_attempt(self, signature: str) -> str | None:
        """What the prompt should say about the last answer for this signature, if it failed or did not help."""
        for repair_id in reversed(self.ids()):
            rec = self.record(repair_id)
            if rec.signature != signature or rec.source != "llm":
                continue
            if rec.outcome == Outcome.REJECTED:
                return f"It was rejected: {rec.reason}"
            if rec.outcome == Outcome.VERIFY_FAILED:
                log = _tail(self.paths.repairs / repair_id / "verify.log", 3000)
                return f"It failed verification: {rec.reason}\n{log}".rstrip()
            if rec.outcome == Outcome.PROMOTED:
                if rec.rolled_back:
                    return "It was applied, then rolled back because the job failed sooner than before."
                return ("It was applied, but the same failure came back. Look for the real cause; do not repeat "
                        "that change.")
            if rec.outcome in (Outcome.LLM_FAILED, Outcome.NO_TARGET, Outcome.ERROR, INTERRUPTED):
                continue
            return None
        return None

    def prune(self, keep: int = KEEP_RECORDS) -> None:
        ids = self.ids()
        for repair_id in ids[: max(0, len(ids) - keep)]:
            shutil.rmtree(self.paths.repairs / repair_id, ignore_errors=True)


def time_id(micros: int | None = None) -> str:
    """``20250101T120000-123456``: UTC time to the microsecond, sortable as text."""
    micros = time.time_ns() // 1000 if micros is None else micros
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(micros // 1_000_000)) + f"-{micros % 1_000_000:06d}"


def _id_time(repair_id: str) -> int:
    try:
        stamp, frac = repair_id[:15], int(repair_id[16:22])
        return int(calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%S"))) * 1_000_000 + frac
    except (ValueError, IndexError):
        return 0


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _tail(path: Path, n: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return text[-n:]
