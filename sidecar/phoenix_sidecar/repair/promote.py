"""Writes verified changes into the workspace, and takes them back: backups, a journal, atomic writes.

Promotion of several files is crash-safe. Before the first write, every file's current content is
backed up under ``.phoenix_cli/backups/`` (at most ``max_backups`` generations per file), the new
contents are staged beside the repair record, and a journal names each file with the hash of its
content before and after. Each file is then replaced atomically. The outcome is recorded
(``on_done``) *before* the journal is removed, so a promotion is never recorded as "nothing
changed" once a file was written. A promotion that fails midway, or whose outcome cannot be
recorded (a full disk), is undone on the spot from the backups; one interrupted by a crash is
finished by `recover` at the next start (the change was verified and its staged content is
there), or reverted from the backups when it cannot be finished, never left half done. Recovery
also removes the temporary files (``.name.XXXX.tmp``) an interrupted atomic write left beside the
journal's files. Rollbacks use the same journal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

from phoenix_sidecar import fsutil
from phoenix_sidecar.errors import RepairError, StateError
from phoenix_sidecar.paths import StatePaths

log = logging.getLogger(__name__)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha(path: Path) -> str | None:
    try:
        return sha(path.read_bytes())
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class Step:
    """One file of a promotion or rollback: from one content to another, the new bytes kept at ``source``."""

    path: str
    before: str
    after: str
    source: str  # absolute path of the bytes to write
    backup: str = ""  # absolute path of the backup of ``before`` (promotions)

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "before": self.before, "after": self.after, "source": self.source,
                "backup": self.backup}


@dataclass(frozen=True)
class Recovered:
    op: str
    repair_id: str
    ok: bool
    message: str
    steps: tuple[Step, ...] = ()


class Promoter:
    def __init__(self, paths: StatePaths, max_backups: int) -> None:
        self.paths = paths
        self.max_backups = max_backups

    @property
    def journal(self) -> Path:
        return self.paths.root / "promotion.journal"

    def backup(self, rel: str, data: bytes, name: str) -> Path:
        """Keep ``data`` as the generation ``name`` of ``rel``'s backups; prune the oldest beyond the limit."""
        folder = self.paths.backups / urllib.parse.quote(rel, safe="")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        fsutil.atomic_write_bytes(target, data, mode=0o600)
        generations = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        for old in generations[: max(0, len(generations) - self.max_backups)]:
            old.unlink(missing_ok=True)
        return target

    def promote(self, repair_id: str, changes: list[tuple[str, bytes, bytes]], staging: Path,
                on_done: Callable[[list[Step]], None] | None = None) -> list[Step]:
        """Write ``(path, old, new)`` changes into the workspace, all or none.

        Args:
            on_done: records the outcome once every file is written, while the journal still
                exists; if it fails, the files are restored and the error raised.

        Raises:
            RepairError: a file no longer holds the content the change was made from.
            StateError: a write failed (disk full, read-only); files already written were restored.
        """
        steps: list[Step] = []
        for rel, old, _new in changes:
            current = file_sha(self.paths.workspace / rel)
            if current != sha(old):
                raise RepairError(f"{rel} changed in the workspace while the repair was verified; not promoted")
        staging.mkdir(parents=True, exist_ok=True)
        for n, (rel, old, new) in enumerate(changes):
            backup = self.backup(rel, old, repair_id)
            staged = staging / f"{n}"
            fsutil.atomic_write_bytes(staged, new, mode=0o600)
            steps.append(Step(rel, sha(old), sha(new), str(staged), str(backup)))
        self._run("promote", repair_id, steps, on_done)
        return steps

    def restore(self, repair_id: str, steps: list[Step]) -> None:
        """Write each step's ``source`` over its file (a rollback), under the journal."""
        self._run("rollback", repair_id, steps)

    def _run(self, op: str, repair_id: str, steps: list[Step],
             on_done: Callable[[list[Step]], None] | None = None) -> None:
        fsutil.atomic_write_text(self.journal, json.dumps({"op": op, "repair_id": repair_id, "at": time.time(),
                                                           "files": [s.to_json() for s in steps]}))
        done: list[Step] = []
        try:
            for step in steps:
                _write(self.paths.workspace / step.path, Path(step.source).read_bytes())
                done.append(step)
        except (OSError, StateError) as exc:
            undone = self._undo(done)
            self.journal.unlink(missing_ok=True)
            raise StateError(f"{op} of repair {repair_id} failed at {step.path}: {exc}; "
                             f"{'the files already written were restored' if undone else 'restore them by hand'}"
                             ) from exc
        if on_done is not None:
            try:
                on_done(steps)
            except (OSError, StateError) as exc:
                if not self._undo(done):
                    raise StateError(f"{op} of repair {repair_id} could not be recorded ({exc}) nor undone; "
                                     f"the next start finishes it from {self.journal}") from exc
                self.journal.unlink(missing_ok=True)
                raise StateError(f"{op} of repair {repair_id} could not be recorded ({exc}); "
                                 f"the files were restored") from exc
        self.journal.unlink(missing_ok=True)
        fsutil.fsync_dir(self.paths.root)

    def _undo(self, done: list[Step]) -> bool:
        ok = True
        for step in reversed(done):
            source = step.backup
            try:
                data = Path(source).read_bytes() if source else None
                if data is None or sha(data) != step.before:
                    ok = False
                    continue
                _write(self.paths.workspace / step.path, data)
            except (OSError, StateError):
                ok = False
        return ok

    def recover(self) -> Recovered | None:
        """Finish a promotion or rollback a crash interrupted, or revert it; None when there was none.

        Every file the journal names is brought to its new content from the staged copy; when
        that is impossible for any of them (the staged copy is gone or corrupt), a promotion is
        reverted instead: the files already written get their backups back, so the workspace is
        as before the repair (``op`` is then ``reverted``). A file edited since is left alone.
        """
        try:
            record = json.loads(self.journal.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self.journal.unlink(missing_ok=True)
            return Recovered("unknown", "", False, f"unreadable promotion journal removed ({exc})")
        op, repair_id = str(record.get("op", "")), str(record.get("repair_id", ""))
        steps = steps_from(record.get("files") or [])
        for step in steps:
            remove_temporaries(self.paths.workspace / step.path)
        verb = "promotion" if op == "promote" else "rollback"
        edited = [s.path for s in steps if file_sha(self.paths.workspace / s.path) not in (s.before, s.after)]
        unfinishable = [s for s in steps if s.path not in edited and _staged(s) is None
                        and file_sha(self.paths.workspace / s.path) != s.after]
        if op == "promote" and unfinishable and not edited:
            undone = self._undo([s for s in steps if file_sha(self.paths.workspace / s.path) == s.after])
            self.journal.unlink(missing_ok=True)
            names = ", ".join(s.path for s in unfinishable)
            return Recovered("reverted", repair_id, undone,
                             f"interrupted promotion of repair {repair_id} reverted from the backups (the new "
                             f"content of {names} was gone)" + ("" if undone else "; some backups were missing"),
                             tuple(steps))
        problems = [f"{p} was edited since; left as it is" for p in edited]
        for step in steps:
            if step.path in edited or file_sha(self.paths.workspace / step.path) == step.after:
                continue
            data = _staged(step)
            if data is None:
                problems.append(f"{step.path}: its new content is gone or corrupt; left as it was")
                continue
            _write(self.paths.workspace / step.path, data)
        self.journal.unlink(missing_ok=True)
        if problems:
            return Recovered(op, repair_id, False, f"interrupted {verb} of repair {repair_id} completed in part: "
                                                   + "; ".join(problems), tuple(steps))
        return Recovered(op, repair_id, True, f"interrupted {verb} of repair {repair_id} completed", tuple(steps))


def _staged(step: Step) -> bytes | None:
    """The new content a step writes, if it is still there and intact."""
    try:
        data = Path(step.source).read_bytes()
    except OSError:
        return None
    return data if sha(data) == step.after else None


def remove_temporaries(path: Path) -> list[str]:
    """Remove what an interrupted atomic write of ``path`` left beside it (``.name.XXXX.tmp``)."""
    removed = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(f".{path.name}.") and entry.name.endswith(".tmp") and entry.is_file():
            try:
                entry.unlink()
                removed.append(entry.name)
            except OSError:
                pass
    return removed


def _write(path: Path, data: bytes) -> None:
    """Replace a workspace file atomically, keeping its mode and (where permitted) its owner."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    fsutil.atomic_write_bytes(path, data)
    if st is not None:
        try:
            os.chown(path, st.st_uid, st.st_gid)
        except OSError:
            pass  # not root: the file is ours anyway


def steps_from(entries: list[Any]) -> list[Step]:
    keys = ("path", "before", "after", "source", "backup")
    return [Step(**{k: str(e.get(k, "")) for k in keys}) for e in entries if isinstance(e, dict)]
