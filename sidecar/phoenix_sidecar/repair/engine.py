"""The repair engine: from a diagnosis to a verified, promoted fix (or a recorded reason why not).

`RepairEngine.repair` finds the files the traceback names that a repair may change, builds the
prompt (with the previous failed attempt for the same signature), asks the LLM clients in turn,
and runs the answer through the `Pipeline`. `apply_answer` runs a saved answer through the same
pipeline (`phoenix patch`). `rollback` restores a promoted repair's files from their backups.
`prune_stale` runs at start-up: it completes interrupted promotions and removes leftover
worktrees. The caller holds the workspace lock and has stopped the job.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
import urllib.parse
from collections.abc import Mapping
from typing import Any
from pathlib import Path

from phoenix_sidecar import fsutil

from phoenix_sidecar.errors import AnswerRejected, PhoenixError, StateError
from phoenix_sidecar.events import EventBus, RepairFinished, RepairRolledBack
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.repair import gitrepo, isolation, proc, sandbox, targets
from phoenix_sidecar.repair.patch.answer import parse_answer
from phoenix_sidecar.repair.llm import LlmChain, build_clients
from phoenix_sidecar.repair.outcomes import Outcome
from phoenix_sidecar.repair.model import PatchReport, RepairOutcome, RepairRecord, RepairRequest, RollbackResult
from phoenix_sidecar.repair.pipeline import Pipeline
from phoenix_sidecar.repair.promote import Promoter, Recovered, Step, file_sha, remove_temporaries
from phoenix_sidecar.repair.prompt import Prompt, PromptLimits, PromptSource, build_prompt, focus_lines, mentions
from phoenix_sidecar.repair.records import RecordWriter, RepairStore, now_iso, time_id
from phoenix_sidecar.redact import Redactor
from phoenix_sidecar.repair.safety import PathPolicy
from phoenix_sidecar.config.schema import Settings, secret
from phoenix_watchdog.diagnosis.failure import Diagnosis

log = logging.getLogger(__name__)
CHILDREN_LEDGER = "children.json"  # the repair's running children (see proc.py)

MAX_PROMPT_FILES = 6
MAX_SOURCE_BYTES = 4 * 1024 * 1024


class RepairEngine:
    def __init__(self, settings: Settings, paths: StatePaths, bus: EventBus, *,
                 environ: Mapping[str, str] | None = None, config_file: Path | None = None) -> None:
        self.settings = settings
        self.paths = paths
        self.bus = bus
        self.environ = dict(os.environ if environ is None else environ)
        self.workspace = Path(paths.workspace)
        keys = [secret(settings, "gemini_api_key", self.environ),
                secret(settings, "openai_api_key", self.environ)]
        self.redactor = Redactor.for_command(self.environ, settings.train_cmd or (), keys)
        self.policy = PathPolicy(self.workspace, settings.allowlist, config_file=config_file,
                                 test_cmd=settings.test_cmd)
        self.store = RepairStore(paths, self.redactor)
        self.promoter = Promoter(paths, settings.max_backups)
        proc.record_children_in(paths.root / CHILDREN_LEDGER)
        self._box: sandbox.SandboxStatus | None = None

    @property
    def box(self) -> sandbox.SandboxStatus:
        """Whether verification runs under bubblewrap here (probed once per process)."""
        if self._box is None:
            self._box = sandbox.probe(self.settings.sandbox, environ=self.environ)
        return self._box

    # -- start-up ------------------------------------------------------------------------------
    def prune_stale(self) -> None:
        """Complete (or report) an interrupted promotion and remove leftover isolated copies."""
        try:
            self.paths.ensure()
        except OSError as exc:
            raise StateError(fsutil.describe_os_error(exc, self.paths.root)) from exc
        stopped = proc.stop_recorded(self.paths.root / CHILDREN_LEDGER)
        if stopped:
            log.warning("stopped what an earlier Phoenix left running: %s", ", ".join(stopped))
        if self.settings.test_cmd:  # said once at start-up: only a test command runs repaired code
            (log.info if self.box.works else log.warning)("%s", self.box.line())
        recovered = self.promoter.recover()
        if recovered is not None:
            log.warning("%s", recovered.message)
            self._after_recovery(recovered)
        for repair_id in self.store.ids():
            outcome = self.store.outcome(repair_id)
            if outcome.get("promotion") == "pending":  # no journal: stopped before the first write
                self._settle_pending(repair_id, outcome)
        try:
            repo = gitrepo.discover(self.workspace)
        except PhoenixError as exc:
            log.warning("cannot inspect the workspace repository: %s", exc)
            repo = None
        removed = isolation.prune_stale(self.paths, repo)
        if removed:
            log.info("removed %d stale repair worktree(s): %s", len(removed), ", ".join(removed))
        self.store.prune()

    def _settle_pending(self, repair_id: str, outcome: dict[str, Any]) -> None:
        """A promotion that never got its journal wrote nothing, which its backups confirm: every
        file the repair names still holds its backup's content. Where one does not, the record says
        so (and names the backups, so `phoenix rollback` can restore them) instead of claiming that
        nothing changed."""
        writer = self.store.writer(repair_id)
        if writer is None:
            return
        changed = []
        for rel in outcome.get("files") or []:
            backup = self.paths.backups / urllib.parse.quote(str(rel), safe="") / repair_id
            remove_temporaries(self.workspace / str(rel))
            if not backup.is_file():
                continue
            before, now = file_sha(backup), file_sha(self.workspace / str(rel))
            if before != now:
                changed.append({"path": str(rel), "before": before, "after": now, "backup": str(backup)})
        if changed:
            names = ", ".join(c["path"] for c in changed)
            writer.update_outcome(outcome=Outcome.PROMOTED, promotion="partial", changes=changed,
                                  reason=f"Phoenix stopped during the promotion; {names} differ from their backups "
                                         f"(undo: phoenix rollback {repair_id})")
        else:
            writer.update_outcome(outcome=Outcome.ERROR, promotion=None,
                                  reason="Phoenix stopped before the promotion began; no file was changed "
                                         "(each file still matches its backup)")
        shutil.rmtree(writer.folder / "staged", ignore_errors=True)

    def _after_recovery(self, recovered: Recovered) -> None:
        writer = self.store.writer(recovered.repair_id)
        if writer is None:
            return
        if recovered.op == "reverted":
            writer.update_outcome(outcome=Outcome.ERROR, promotion=None, reason=recovered.message,
                                  recovery=recovered.message)
            shutil.rmtree(writer.folder / "staged", ignore_errors=True)
        elif recovered.op == "promote":
            writer.update_outcome(outcome=Outcome.PROMOTED, promotion="done" if recovered.ok else "partial",
                                  recovery=recovered.message,
                                  changes=[{"path": s.path, "before": s.before, "after": s.after, "backup": s.backup}
                                           for s in recovered.steps])
            shutil.rmtree(writer.folder / "staged", ignore_errors=True)
        elif recovered.op == "rollback":
            writer.update_outcome(rolled_back={"at": now_iso(), "automatic": False, "recovery": recovered.message})

    # -- repair --------------------------------------------------------------------------------
    def repair(self, request: RepairRequest) -> RepairOutcome:
        """Ask for a fix of ``request.diagnosis``, verify it in isolation and promote it."""
        d = request.diagnosis
        try:
            record = self.store.create(signature=d.signature, category=d.category, source="llm")
        except PhoenixError as exc:  # no record can be kept (disk full): no repair without one
            self.bus.emit(RepairFinished(category=d.category, outcome=Outcome.ERROR))
            return RepairOutcome("", Outcome.ERROR, f"cannot record the repair: {exc}", disk_full=disk_full(exc))
        outcome = RepairOutcome(record.repair_id, Outcome.ERROR, "the repair did not finish")
        try:
            record.json("diagnosis.json", d.to_json())
            outcome = self._repair(request, record)
        except PhoenixError as exc:
            if disk_full(exc):
                outcome = self._out_of_space(record, exc)
            else:
                outcome = self._finish(record, Outcome.ERROR, str(exc))
        except Exception as exc:  # a bug must not take the supervisor down
            log.exception("repair %s failed unexpectedly", record.repair_id)
            outcome = self._finish(record, Outcome.ERROR, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self.bus.emit(RepairFinished(category=d.category, outcome=outcome.outcome, repair_id=outcome.repair_id,
                                         reason=outcome.reason, files=tuple(outcome.files)))
        return outcome

    def _repair(self, request: RepairRequest, record: RecordWriter) -> RepairOutcome:
        d = request.diagnosis
        # A fix that spans files: the last answer for this failure may have failed verification in
        # another file; its traceback names that file, which becomes a target too.
        failed_in = self._last_verify_failure(d.signature)
        sources, aliases = self._sources(d, request.log_tail, request.stack, failed_in)
        if not sources:
            return self._finish(record, Outcome.NO_TARGET, "nothing the traceback names is a workspace file a repair may "
                                                     f"change (allowlist: {'; '.join(self.settings.allowlist)})")
        s = self.settings
        answers: list[str] = []

        def keep(client: str, answer: str) -> None:
            answers.append(client)
            record.text(f"answer-{len(answers)}-{client}.txt", answer, code=True)

        chain = LlmChain(build_clients(s, self.environ, self.workspace), self.bus, parse_answer,
                         scrub=self.redactor.text, on_answer=keep)
        previous = self.store.previous_attempt(d.signature)

        def build(max_chars: int) -> Prompt:  # the prompt cut to what the model's context window takes
            built = build_prompt(
                d, request.log_tail, sources, stack=request.stack, previous=previous,
                limits=PromptLimits(s.tail, s.max_file_chars, max_chars, s.max_patch_files, s.max_patch_lines),
                redactor=self.redactor, nonce=secrets.token_hex(6))
            record.text("prompt.txt", built.text)
            return built

        prompt = build(chain.prompt_chars(s.max_prompt_chars))

        def refit(max_chars: int) -> str:
            nonlocal prompt
            prompt = build(max_chars)
            return prompt.text

        result = chain.ask(prompt.text, refit=refit)
        record.json("llm.json", {"attempts": [a.__dict__ for a in result.attempts]})
        if not result.ok or result.parsed is None:
            return self._finish(record, Outcome.LLM_FAILED, f"no usable answer: {result.failure()}")
        record.text("answer.txt", result.answer or "", code=True)
        policy = self.policy.narrowed([src.path for src in sources], aliases)
        report = self._pipeline(policy).run(result.parsed, record, shown=prompt.shown, client=result.client,
                                            focus={src.path: src.focus for src in sources})
        return RepairOutcome(record.repair_id, report.outcome, _one_line(report.reason), report.files)

    def _pipeline(self, policy: PathPolicy | None = None) -> Pipeline:
        box = self.box if self.settings.test_cmd else None
        return Pipeline(self.settings, self.paths, self.bus, self.environ, policy or self.policy, self.promoter, box)

    def _out_of_space(self, record: RecordWriter, exc: PhoenixError) -> RepairOutcome:
        """A full disk stopped the repair. Its half-written record goes (it would say nothing true,
        and its space lets the supervisor save the state that says why), unless a promotion journal
        still needs it for recovery."""
        if not self.promoter.journal.exists():
            shutil.rmtree(record.folder, ignore_errors=True)
        return RepairOutcome(record.repair_id, Outcome.ERROR, _one_line(self.redactor.text(str(exc))), disk_full=True)

    def _finish(self, record: RecordWriter, outcome: Outcome, reason: str) -> RepairOutcome:
        try:
            record.json("outcome.json", {"id": record.repair_id, "finished": now_iso(), "outcome": outcome,
                                         "reason": reason, "files": [], "dry_run": self.settings.dry_run})
        except StateError as exc:
            log.error("cannot record the outcome of repair %s: %s", record.repair_id, exc)
        return RepairOutcome(record.repair_id, outcome, _one_line(self.redactor.text(reason)))

    # -- targets -------------------------------------------------------------------------------
    def _last_verify_failure(self, signature: str) -> str:
        """The test command's output of the last answer for ``signature``, when verification failed."""
        for repair_id in reversed(self.store.ids()):
            rec = self.store.record(repair_id)
            if rec.signature != signature or rec.source != "llm":
                continue
            if rec.outcome == Outcome.PROMOTED:
                return ""
            if rec.outcome != Outcome.VERIFY_FAILED:
                continue  # this repair itself (not finished), or one refused before verification
            try:
                text = (self.paths.repairs / repair_id / "verify.log").read_text(encoding="utf-8", errors="replace")
            except OSError:
                return ""
            return text[text.rfind("[phoenix] stage "):] if "[phoenix] stage " in text else text
        return ""

    def _sources(self, d: Diagnosis, log_tail: str, stack: str | None = None,
                 failed_in: str = "") -> tuple[list[PromptSource], dict[str, str]]:
        """The files to show and allow: traceback files a repair may change, innermost first.

        A hung job has no traceback: the frames of its stack dump (most recent call first) stand in.
        Files in the traceback of the last answer's failed verification (``failed_in``) follow.
        """
        names: list[str] = []
        if d.frame is not None:
            names.append(d.frame.file)
        names.extend(reversed(d.files))
        names.extend(path for path, _ in mentions(stack or ""))
        names.extend(path for path, _ in reversed(mentions(failed_in)))
        aliases: dict[str, str] = {}
        found: list[str] = []
        for name in dict.fromkeys(names):
            rel = self.map_path(name)
            if rel is None:
                continue
            if name != rel and name != str(self.workspace / rel):
                aliases[name] = rel  # the name the job saw (in a container, from a sub-directory)
            target = self.policy.allowed(rel)
            if target is not None and target.rel not in found:
                found.append(target.rel)
        if d.category == "cuda_oom":
            found.extend(c for c in targets.config_files(self.workspace, self.policy) if c not in found)
        # Small models often name a file by its base name: kept where it names one shown file only
        # and no file of that name sits at the workspace root.
        for rel in found[:MAX_PROMPT_FILES]:
            base = rel.rsplit("/", 1)[-1]
            if base != rel and sum(f.rsplit("/", 1)[-1] == base for f in found[:MAX_PROMPT_FILES]) == 1 \
                    and not os.path.lexists(self.workspace / base):
                aliases.setdefault(base, rel)
        sources = []
        for rel in found[:MAX_PROMPT_FILES]:
            path = self.workspace / rel
            try:
                if path.stat().st_size > MAX_SOURCE_BYTES:
                    continue
                text = path.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            focus = focus_lines(lambda p, rel=rel: self.map_path(p) == rel, d, log_tail,
                                "\n".join(t for t in (stack, failed_in) if t))
            sources.append(PromptSource(rel, text, focus))
        return sources, aliases

    def map_path(self, name: str) -> str | None:
        """The workspace file a traceback path means, or None (see `targets.map_path`)."""
        return targets.map_path(self.workspace, name)

    # -- phoenix patch -------------------------------------------------------------------------
    def apply_answer(self, answer: str, *, source: str = "phoenix patch") -> PatchReport:
        """Run a saved LLM answer through the pipeline, with no job and no LLM."""
        record = self.store.create(signature="", category="", source=source)
        record.text("answer.txt", answer, code=True)
        pipeline = self._pipeline()
        try:
            patches = parse_answer(answer)
        except AnswerRejected as exc:
            return pipeline._rejected(record, PatchReport(record.repair_id, Outcome.REJECTED, "",
                                                           dry_run=self.settings.dry_run), [], exc, {})
        return pipeline.run(patches, record)

    # -- history and rollback ------------------------------------------------------------------
    def history(self) -> list[RepairRecord]:
        """Every recorded repair, oldest first."""
        return self.store.records()

    def rollback(self, repair_id: str | None = None, *, automatic: bool = False, force: bool = False) -> RollbackResult:
        """Restore the files a promoted repair changed (by default the last one) from their backups."""
        if repair_id is None:
            repair_id = self._last_promoted()
            if repair_id is None:
                return RollbackResult(None, False, "no promoted repair to roll back")
        writer = self.store.writer(repair_id)
        if writer is None:
            return RollbackResult(repair_id, False, f"no repair {repair_id!r} is recorded")
        outcome = writer.read_json("outcome.json")
        if outcome.get("outcome") != Outcome.PROMOTED or outcome.get("promotion") not in ("done", "partial"):
            return RollbackResult(repair_id, False, f"repair {repair_id} was not promoted "
                                                    f"(outcome: {outcome.get('outcome', 'none')})")
        if outcome.get("rolled_back"):
            return RollbackResult(repair_id, False, f"repair {repair_id} was already rolled back")
        steps, changed, files = [], [], []
        for change in outcome.get("changes") or []:
            rel = str(change.get("path", ""))
            files.append(rel)
            current = file_sha(self.workspace / rel)
            if current == change.get("before"):
                continue  # already holds the content from before the repair
            if current != change.get("after"):
                changed.append(rel)
            backup = Path(str(change.get("backup", "")))
            if not backup.is_file() or file_sha(backup) != change.get("before"):
                return RollbackResult(repair_id, False, f"the backup of {rel} from before repair {repair_id} is gone "
                                                        f"(only {self.settings.max_backups} generations are kept)",
                                      tuple(files))
            steps.append(Step(rel, current or "", str(change.get("before")), str(backup)))
        if changed and not force:
            return RollbackResult(repair_id, False, f"{', '.join(changed)} changed since repair {repair_id} was "
                                                    f"promoted; use --force to discard those edits",
                                  tuple(files), tuple(changed))
        for rel in changed:  # keep what --force discards
            data = (self.workspace / rel).read_bytes() if (self.workspace / rel).is_file() else b""
            self.promoter.backup(rel, data, f"{time_id()}-before-rollback-of-{repair_id}")
        if steps:
            self.promoter.restore(repair_id, steps)
        writer.update_outcome(rolled_back={"at": now_iso(), "automatic": automatic, "forced": bool(changed)})
        self.bus.emit(RepairRolledBack(automatic=automatic))
        return RollbackResult(repair_id, True, f"restored {len(files)} file(s) as they were before repair {repair_id}",
                              tuple(files), tuple(changed))

    def _last_promoted(self) -> str | None:
        for repair_id in reversed(self.store.ids()):
            outcome = self.store.outcome(repair_id)
            if outcome.get("outcome") == Outcome.PROMOTED and outcome.get("promotion") in ("done", "partial") \
                    and not outcome.get("rolled_back"):
                return repair_id
        return None


def disk_full(exc: BaseException) -> bool:
    """Whether an error comes from a full disk (ENOSPC, or EDQUOT: a full quota), anywhere in its chain."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 400 else line[:397] + "..."

