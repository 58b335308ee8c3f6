"""Plain records of the repair engine: requests, patches, outcomes, history rows. Pure, no I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from phoenix_sidecar.repair.outcomes import OK_OUTCOMES, Outcome
from phoenix_watchdog.diagnosis.failure import Diagnosis

PATCH_MODES = ("unified_diff", "replace_range", "search_replace")


@dataclass(frozen=True)
class RepairRequest:
    """What the supervisor asks the engine to repair."""

    diagnosis: Diagnosis
    log_tail: str
    stack: str | None = None  # hang stack dump, if any


@dataclass(frozen=True)
class RepairOutcome:
    """How one repair ended.

    Attributes:
        repair_id: the record under ``.phoenix_cli/repairs/<id>/``.
        outcome: how it ended (an `Outcome`).
        reason: one human line.
        files: workspace-relative files changed (or that would be, in a dry run).
        disk_full: the repair failed because a disk was full: not the failure's fault, so it must
            not be charged to its budget.
    """

    repair_id: str
    outcome: Outcome
    reason: str
    files: tuple[str, ...] = ()
    disk_full: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome in OK_OUTCOMES


@dataclass(frozen=True)
class RollbackResult:
    """How a rollback ended.

    Attributes:
        repair_id: the repair rolled back (or asked for), None when there was none to roll back.
        ok: the files were restored.
        reason: one human line.
        files: the files restored (or that would have been).
        changed: files edited since the promotion: why a rollback without ``force`` refused.
    """

    repair_id: str | None
    ok: bool
    reason: str
    files: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class RepairRecord:
    """One row of `phoenix history`: a repair as recorded on disk."""

    repair_id: str
    time: str
    signature: str
    category: str
    outcome: str  # an `Outcome`, or ``interrupted`` (outcomes.INTERRUPTED) for a repair that never finished
    reason: str
    files: tuple[str, ...]
    source: str = "llm"  # llm | phoenix patch
    client: str | None = None
    commit: str | None = None
    rolled_back: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = list(self.files)
        return data


@dataclass(frozen=True)
class Patch:
    """One edit proposed by an answer, in one of the three modes of ``PATCH_MODES``."""

    file_path: str
    mode: str
    diff: str = ""
    start_line: int = 0
    end_line: int = 0
    code: str = ""
    expected: str | None = None
    search: str = ""
    replace: str = ""

    def describe(self) -> str:
        if self.mode == "replace_range":
            return f"{self.file_path} lines {self.start_line}-{self.end_line}"
        return f"{self.file_path} ({self.mode})"


@dataclass(frozen=True)
class PatchStatus:
    """What became of one patch: ``applied``, ``already_applied``, ``rejected`` or ``not_applied``."""

    file_path: str
    mode: str
    status: str
    reason: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class FileChange:
    """A verified-to-be change of one workspace file: its bytes before and after."""

    path: str  # workspace-relative, posix
    old: bytes
    new: bytes


@dataclass
class PatchReport:
    """The result of running one answer through the pipeline (`phoenix patch --json`)."""

    repair_id: str
    outcome: Outcome
    reason: str
    reason_code: str = ""  # a `RejectReason` when the outcome is ``rejected``
    accepted: bool = False
    verified: bool = False
    promoted: bool = False
    dry_run: bool = False
    files: tuple[str, ...] = ()
    patches: list[PatchStatus] = field(default_factory=list)
    commit: str | None = None
    unverified: str | None = None  # why passing verification proves nothing (the tests pass without the fix)

    def to_json(self) -> dict[str, Any]:
        return {"repair_id": self.repair_id, "outcome": self.outcome, "reason": self.reason,
                "accepted": self.accepted, "verified": self.verified, "unverified": self.unverified,
                "promoted": self.promoted,
                "dry_run": self.dry_run, "files": list(self.files), "commit": self.commit,
                "patches": [p.to_json() for p in self.patches]}
