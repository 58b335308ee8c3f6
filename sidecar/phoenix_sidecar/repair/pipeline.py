"""One answer through the whole pipeline: check, apply in memory, isolate, verify, promote.

Everything that can refuse an answer runs before anything is written: the paths (`safety`), the
placement of every patch (`apply`), the content and size of the result. Only then is the isolated
copy made, the change written there and verified; only a verified change is promoted (or, in a
dry run, only recorded). The outcome is written to the record at every exit.
"""

from __future__ import annotations

import difflib
import logging
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from phoenix_sidecar.errors import AnswerRejected, PhoenixError, RepairError
from phoenix_sidecar.events import EventBus, PatchRejected, RepairPromoted
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.repair import gitrepo, isolation, sandbox
from phoenix_sidecar.repair.patch import diff as udiff
from phoenix_sidecar.repair.patch.apply import FLAG_REASONS, apply_patches
from phoenix_sidecar.repair.capability import check_capabilities
from phoenix_sidecar.repair.outcomes import Outcome, RejectReason
from phoenix_sidecar.repair.model import Patch, PatchReport, PatchStatus
from phoenix_sidecar.repair.promote import Promoter, Step
from phoenix_sidecar.repair.proximity import far_changes
from phoenix_sidecar.repair.records import RecordWriter, now_iso
from phoenix_sidecar.repair.safety import PathPolicy, changed_lines, check_added, decode_source, encode_source
from phoenix_sidecar.repair.verify import Verification, run_tests, verify
from phoenix_sidecar.config.schema import Settings

log = logging.getLogger(__name__)

Change = tuple[str, bytes, bytes]  # workspace path, bytes before, bytes after


class Pipeline:
    def __init__(self, settings: Settings, paths: StatePaths, bus: EventBus, environ: Mapping[str, str],
                 policy: PathPolicy, promoter: Promoter, box: sandbox.SandboxStatus | None = None) -> None:
        self.settings = settings
        self.box = box or sandbox.SandboxStatus(False, "not probed")
        self.paths = paths
        self.bus = bus
        self.environ = environ
        self.policy = policy
        self.promoter = promoter

    def run(self, patches: list[Patch], record: RecordWriter, *, shown: Mapping[str, str] | None = None,
            client: str | None = None, focus: Mapping[str, Sequence[int]] | None = None) -> PatchReport:
        """Carry ``patches`` as far as they go; the report says where they stopped and why.

        ``focus`` maps a file to the lines the failure points at in it: changes far from all of
        them are flagged in the record (``far_from_failure``), not refused.
        """
        report = PatchReport(record.repair_id, Outcome.ERROR, "", dry_run=self.settings.dry_run)
        extra: dict[str, Any] = {"client": client}
        try:
            changes = self._prepare(patches, report, shown)
        except AnswerRejected as exc:
            return self._rejected(record, report, patches, exc, extra)
        far = far_changes([(rel, decode_source(old, rel), decode_source(new, rel)) for rel, old, new in changes],
                          focus or {})
        if far:
            extra["far_from_failure"] = [f.to_json() for f in far]
            log.warning("repair %s changes %s far from every frame of the failure (see its outcome.json)",
                        record.repair_id, ", ".join(f.file for f in far))
        report.accepted = True
        report.files = tuple(rel for rel, _, _ in changes)
        record.text("patch.diff", render_diff(changes), code=True)
        try:
            self._verify_and_promote(changes, record, report, extra)
        except PhoenixError as exc:
            report.outcome, report.reason = Outcome.ERROR, str(exc)
        except Exception as exc:  # a bug must not take the supervisor down: record it and go on
            log.exception("repair %s failed unexpectedly", record.repair_id)
            report.outcome, report.reason = Outcome.ERROR, f"internal error: {type(exc).__name__}: {exc}"
        if not report.promoted:
            self._write_outcome(record, report, extra)
        return report

    # -- steps ---------------------------------------------------------------------------------
    def _prepare(self, patches: list[Patch], report: PatchReport, shown: Mapping[str, str] | None) -> list[Change]:
        targets = [(patch, self.policy.check(patch.file_path).rel) for patch in expand(patches, self.paths.workspace)]
        originals: dict[str, bytes] = {}

        def read(rel: str) -> str:
            data = (self.paths.workspace / rel).read_bytes()
            originals[rel] = data
            return decode_source(data, rel)

        applied = apply_patches(targets, read, shown=shown)
        report.patches = applied.statuses
        changes: list[Change] = []
        total = 0
        for rel, text in applied.texts.items():
            before = decode_source(originals[rel], rel)
            added, removed = changed_lines(before, text)
            check_added(added, rel)
            check_capabilities(before, text, rel, allowed=self.settings.allow_capabilities,
                               workspace=self.policy.workspace)
            total += len(added) + removed
            changes.append((rel, originals[rel], encode_source(text, rel)))
        if not changes:
            raise AnswerRejected(RejectReason.NO_CHANGE, "the patches change nothing (already applied, or identical text)")
        if len(changes) > self.settings.max_patch_files:
            raise AnswerRejected(RejectReason.TOO_MANY_FILES, f"the answer changes {len(changes)} files; at most "
                                                   f"{self.settings.max_patch_files} (max_patch_files)")
        if total > self.settings.max_patch_lines:
            raise AnswerRejected(RejectReason.TOO_MANY_LINES, f"the answer changes {total} lines; at most "
                                                   f"{self.settings.max_patch_lines} (max_patch_lines)")
        return changes

    def _verify_and_promote(self, changes: list[Change], record: RecordWriter, report: PatchReport,
                            extra: dict[str, Any]) -> None:
        repo = gitrepo.discover(self.paths.workspace)
        files = [rel for rel, _, _ in changes]
        # Without a test command, verification compiles the changed files only: nothing else is checked out.
        only = None if self.settings.test_cmd else files
        if self.settings.test_cmd and self.settings.sandbox == "bubblewrap" and not self.box.works:
            raise RepairError(f"{self.box.line()} (sandbox: bubblewrap requires it); no repair is verified here")
        with isolation.isolate(self.paths, record.repair_id, repo, only=only) as iso:
            for rel, old, new in changes:
                if iso.read(rel) != old:
                    raise RepairError(f"{rel} changed in the workspace while the repair was prepared; try again")
            baseline = self._baseline(iso, report)
            for rel, _old, new in changes:
                iso.write(rel, new)
            result = verify(iso, files, self.settings, self.environ, self.bus, self.box)
            record.text("verify.log", _log("baseline (without the patch)", baseline) + _log("stage " + result.stage, result))
            if result.wrote:
                self.bus.emit(PatchRejected(reason=RejectReason.WROTE_OUTSIDE))
                report.outcome, report.reason_code = Outcome.REJECTED, RejectReason.WROTE_OUTSIDE
                report.reason = (f"with no sandbox here, the test command of the patched code changed "
                                 f"{', '.join(result.wrote[:5])} outside its copy; "
                                 + (f"could not undo: {', '.join(result.unrestored[:5])}" if result.unrestored
                                    else "undone"))
                return
            if not result.ok:
                report.outcome = Outcome.VERIFY_FAILED
                report.reason = _verify_reason(result.stage, result.output, result.timed_out)
                return
            report.verified = True
            extra["unverified"] = report.unverified
            extra["sandbox"] = self.box.line() if self.settings.test_cmd else None
            tree = _tree(iso, files)
            if tree and iso.repo is not None and iso.snapshot is not None:
                report.commit = _commit(iso.repo, iso.snapshot, tree, record.repair_id, files)
        if self.settings.dry_run:
            report.outcome = Outcome.DRY_RUN
            report.reason = (f"verified{f' (unverified: {report.unverified})' if report.unverified else ''}; "
                             f"dry run, so {', '.join(files)} left unchanged")
            return
        self._promote(changes, record, report, extra)

    def _baseline(self, iso: isolation.Isolated, report: PatchReport) -> Verification | None:
        """Run the test command without the patch: if it passes there, it cannot tell a fix from no fix."""
        if not self.settings.test_cmd:
            return None
        base = run_tests(iso, self.settings, self.environ, self.box, label="baseline")
        if base.wrote:
            raise RepairError(f"with no sandbox here, the test command changes {', '.join(base.wrote[:5])} outside "
                              f"its copy even without a patch, so no patch can be verified safely; make it write "
                              f"only below its working directory, or install bubblewrap")
        if base.ok:
            report.unverified = "the test command passes without the fix"
        return base

    def _promote(self, changes: list[Change], record: RecordWriter, report: PatchReport,
                 extra: dict[str, Any]) -> None:
        files = [rel for rel, _, _ in changes]
        report.outcome = Outcome.PROMOTED
        report.reason = f"verified and promoted: {', '.join(files)}"
        if report.unverified:
            report.reason = f"promoted, unverified ({report.unverified}): {', '.join(files)}"
        self._write_outcome(record, report, extra, promotion="pending")  # the intent, before the first write
        staging = record.folder / "staged"
        def done(steps: list[Step]) -> None:  # recorded before the journal goes (see promote.py)
            self._write_outcome(record, report, extra, promotion="done",
                                changes=[{"path": s.path, "before": s.before, "after": s.after, "backup": s.backup}
                                         for s in steps])
        try:
            steps = self.promoter.promote(record.repair_id, changes, staging, on_done=done)
        except PhoenixError as exc:
            raise RepairError(f"promotion failed: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        report.promoted = True
        self.bus.emit(RepairPromoted(files=len(steps)))

    def _rejected(self, record: RecordWriter, report: PatchReport, patches: list[Patch], exc: AnswerRejected,
                  extra: dict[str, Any]) -> PatchReport:
        self.bus.emit(PatchRejected(reason=exc.reason))
        report.outcome, report.reason, report.reason_code = Outcome.REJECTED, str(exc), exc.reason
        other = "another patch of the answer was rejected"
        statuses = []
        blamed = False
        for p in patches:
            if exc.file_path is None or (not blamed and p.file_path == exc.file_path):
                statuses.append(PatchStatus(p.file_path, p.mode, "rejected", str(exc)))
                blamed = blamed or exc.file_path is not None
            else:
                statuses.append(PatchStatus(p.file_path, p.mode, "not_applied", other))
        if exc.file_path is not None and not blamed and statuses:
            statuses[0] = PatchStatus(statuses[0].file_path, statuses[0].mode, "rejected", str(exc))
        report.patches = statuses
        self._write_outcome(record, report, extra)
        return report

    def _write_outcome(self, record: RecordWriter, report: PatchReport, extra: dict[str, Any],
                       **fields: Any) -> None:
        data = {"id": record.repair_id, "finished": now_iso(), "outcome": report.outcome, "reason": report.reason,
                "reason_code": report.reason_code, "files": list(report.files), "client": extra.get("client"),
                "commit": report.commit, "dry_run": report.dry_run, "unverified": report.unverified,
                "sandbox": extra.get("sandbox"), "far_from_failure": extra.get("far_from_failure"),
                "patches": [p.to_json() for p in report.patches], **fields}
        record.json("outcome.json", data)


def _log(title: str, result: Verification | None) -> str:
    if result is None:
        return ""
    return f"[phoenix] {title}: {'passed' if result.ok else 'FAILED'} in {result.seconds:.2f} s\n{result.output}\n"


def _verify_reason(stage: str, output: str, timed_out: bool) -> str:
    lines = [line.strip() for line in output.splitlines()
             if line.strip() and not line.startswith("[phoenix]") and set(line.strip()) != {"^"}]
    last = lines[-1][:200] if lines else ""
    if stage == "py_compile":
        where = next((m for m in (re.search(r'File "([^"]+)", line (\d+)', line) for line in lines) if m), None)
        at = f"{Path(where.group(1)).name} line {where.group(2)}: " if where else ""
        return f"the patched code does not compile: {at}{last}".rstrip(": ")
    if timed_out:
        return "the test command timed out"
    verdict = [line[len("[phoenix] "):] for line in output.splitlines() if line.startswith("[phoenix] the test command exited 0, but")]
    if verdict:
        return verdict[-1]
    return f"the test command failed: {last}".rstrip(": ")


def _tree(iso: isolation.Isolated, files: list[str]) -> str | None:
    try:
        return iso.tree(files)
    except PhoenixError as exc:
        log.warning("cannot record the repair as a git tree: %s", exc)
        return None


def _commit(repo: gitrepo.Repo, snap: gitrepo.Snapshot, tree: str, repair_id: str, files: list[str]) -> str | None:
    message = f"phoenix repair {repair_id}\n\nChanged: {', '.join(files)}\n"
    try:
        commit = gitrepo.record_commit(repo, snap, tree, message)
    except PhoenixError as exc:
        log.warning("cannot record repair %s on %s: %s", repair_id, gitrepo.REPAIRS_BRANCH, exc)
        return None
    if commit is None:
        log.warning("repair %s: %s could not be moved (checked out, or a conflicting ref)", repair_id,
                    gitrepo.REPAIRS_BRANCH)
    return commit


def expand(patches: list[Patch], workspace: Path) -> list[Patch]:
    """Split any diff that spans several files into one patch per file."""
    out: list[Patch] = []
    for patch in patches:
        if patch.mode != "unified_diff":
            out.append(patch)
            continue
        try:
            files = udiff.parse(patch.diff)
        except AnswerRejected as exc:
            raise AnswerRejected(exc.reason, exc.detail, file_path=patch.file_path) from None
        for fd in files:  # what a diff does to files (create, delete, chmod, link) is refused before paths
            for flag, (reason, detail) in FLAG_REASONS.items():
                if flag in fd.flags:
                    raise AnswerRejected(reason, detail, file_path=patch.file_path)
        if len(files) == 1:
            out.append(patch)
            continue
        for fd in files:
            path = _pick(fd.path, workspace) if fd.path else patch.file_path
            body = "".join("@@ @@\n" + "".join(f"{tag}{text}\n" for tag, text in h.lines) for h in fd.hunks)
            out.append(Patch(path, "unified_diff", diff=body))
    return out


def _pick(header: str, workspace: Path) -> str:
    candidates = udiff.path_candidates(header)
    for c in reversed(candidates):
        if not c.startswith("/") and (workspace / c).exists():
            return c
    return candidates[-1]


def render_diff(changes: list[Change]) -> str:
    """The applied change as a unified diff, for the record and the human."""
    out = []
    for rel, old, new in changes:
        a = old.decode("utf-8", "replace").splitlines(keepends=True)
        b = new.decode("utf-8", "replace").splitlines(keepends=True)
        for line in difflib.unified_diff(a, b, f"a/{rel}", f"b/{rel}"):
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
