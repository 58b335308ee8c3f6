"""Promotion and rollback: backups bounded, dry runs write nothing, crashes mid-promotion are completed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from phoenix_sidecar.errors import StateError
from phoenix_sidecar.events import RepairPromoted, RepairRolledBack
from phoenix_sidecar.repair import promote
from kits.repairkit import TRAIN, build_harness, fingerprint
from testkit import clean_env


def _answer(*edits: tuple[str, str, str]) -> str:
    return json.dumps({"patches": [{"file_path": p, "mode": "search_replace", "search": s, "replace": r}
                                   for p, s, r in edits]})


HELLO_BYE = ("train.py", 'print("Hello!")', 'print("Bye!")')


def test_dry_run_verifies_but_writes_nothing(ws: Path) -> None:
    h = build_harness(ws, dry_run=True)
    before = fingerprint(ws)
    report = h.engine.apply_answer(_answer(HELLO_BYE))
    assert report.outcome == "dry_run" and report.verified and not report.promoted
    assert fingerprint(ws)["files"] == before["files"]
    assert not (ws / ".phoenix_cli" / "backups").exists() or not any((ws / ".phoenix_cli" / "backups").iterdir())
    assert not h.of(RepairPromoted)
    diff = (ws / ".phoenix_cli" / "repairs" / report.repair_id / "patch.diff").read_text()
    assert '+    print("Bye!")' in diff


def test_promotion_keeps_mode_and_backs_up_the_old_content(ws: Path) -> None:
    (ws / "train.py").chmod(0o755)
    h = build_harness(ws)
    report = h.engine.apply_answer(_answer(HELLO_BYE))
    assert report.promoted and [e.files for e in h.of(RepairPromoted)] == [1]
    assert (ws / "train.py").stat().st_mode & 0o777 == 0o755
    backups = list((ws / ".phoenix_cli" / "backups" / "train.py").iterdir())
    assert [b.read_text() for b in backups] == [TRAIN]
    outcome = json.loads((ws / ".phoenix_cli" / "repairs" / report.repair_id / "outcome.json").read_text())
    assert outcome["promotion"] == "done" and outcome["changes"][0]["path"] == "train.py"


def test_backup_generations_are_bounded(ws: Path) -> None:
    h = build_harness(ws, max_backups=2)
    texts = [TRAIN]
    for n in range(4):
        prev = "Hello!" if n == 0 else f"v{n - 1}"
        assert h.engine.apply_answer(_answer(("train.py", f'print("{prev}")', f'print("v{n}")'))).promoted
        texts.append((ws / "train.py").read_text())
    backups = sorted((ws / ".phoenix_cli" / "backups" / "train.py").iterdir())
    assert [b.read_text() for b in backups] == texts[2:4]  # the two newest "before" contents
    # The newest repair rolls back; an older one whose backup was pruned refuses clearly.
    oldest = h.engine.history()[0].repair_id
    result = h.engine.rollback(oldest, force=True)
    assert not result.ok and "backup" in result.reason
    assert h.engine.rollback().ok
    assert (ws / "train.py").read_text() == texts[3]


def test_rollback_restores_and_refuses_over_later_edits(ws: Path) -> None:
    h = build_harness(ws)
    first = h.engine.apply_answer(_answer(HELLO_BYE, ("model.py", "LAYERS = 2", "LAYERS = 3")))
    assert first.promoted
    (ws / "model.py").write_text("LAYERS = 5  # a human's edit\n")

    refused = h.engine.rollback()
    assert not refused.ok and refused.changed == ("model.py",) and "--force" in refused.reason
    assert (ws / "model.py").read_text() == "LAYERS = 5  # a human's edit\n"

    forced = h.engine.rollback(force=True, automatic=True)
    assert forced.ok and forced.repair_id == first.repair_id
    assert (ws / "train.py").read_text() == TRAIN and (ws / "model.py").read_text() == "LAYERS = 2\n"
    assert [e.automatic for e in h.of(RepairRolledBack)] == [True]
    kept = [b.read_text() for b in (ws / ".phoenix_cli" / "backups" / "model.py").iterdir()]
    assert "LAYERS = 5  # a human's edit\n" in kept  # what --force discarded is kept
    again = h.engine.rollback(first.repair_id)
    assert not again.ok and "already rolled back" in again.reason
    assert h.engine.history()[-1].rolled_back


def test_rollback_without_a_promoted_repair(ws: Path) -> None:
    h = build_harness(ws, dry_run=True)
    assert h.engine.rollback().repair_id is None
    dry = h.engine.apply_answer(_answer(HELLO_BYE))
    result = h.engine.rollback(dry.repair_id)
    assert not result.ok and "not promoted" in result.reason
    assert not h.engine.rollback("no-such-id").ok


CRASH = textwrap.dedent('''
    import os, sys
    from pathlib import Path
    from phoenix_sidecar.events import EventBus
    from phoenix_sidecar.paths import StatePaths
    from phoenix_sidecar.repair import RepairEngine, promote
    from phoenix_sidecar.config.schema import Settings
    real, written = promote._write, []
    def write_then_die(path, data):
        real(path, data)
        written.append(path)
        if len(written) == 1:
            os._exit(9)  # the power goes out between the first and second file
    promote._write = write_then_die
    ws = Path(sys.argv[1])
    RepairEngine(Settings(workspace=str(ws)), StatePaths(ws).ensure(), EventBus()).apply_answer(sys.stdin.read())
''')


def test_a_promotion_interrupted_by_a_crash_is_completed_at_start_up(ws: Path) -> None:
    answer = _answer(HELLO_BYE, ("model.py", "LAYERS = 2", "LAYERS = 3"))
    crashed = subprocess.run([sys.executable, "-c", CRASH, str(ws)], input=answer.encode(), env=clean_env(),
                             capture_output=True, timeout=60)
    assert crashed.returncode == 9, crashed.stderr.decode()
    half = {(ws / "train.py").read_text() != TRAIN, (ws / "model.py").read_text() != "LAYERS = 2\n"}
    assert half == {True, False}  # exactly one file was written
    assert (ws / ".phoenix_cli" / "promotion.journal").exists()

    h = build_harness(ws)
    h.engine.prune_stale()

    assert (ws / "train.py").read_text() == TRAIN.replace("Hello!", "Bye!")
    assert (ws / "model.py").read_text() == "LAYERS = 3\n"
    assert not (ws / ".phoenix_cli" / "promotion.journal").exists()
    record = h.engine.history()[-1]
    assert record.outcome == "promoted" and set(record.files) == {"train.py", "model.py"}
    assert h.engine.rollback().ok  # its backups were recorded by the recovery
    assert (ws / "train.py").read_text() == TRAIN and (ws / "model.py").read_text() == "LAYERS = 2\n"


def test_a_crash_before_the_journal_leaves_the_files_alone(ws: Path) -> None:
    script = CRASH.replace("promote._write = write_then_die",
                           "promote.Promoter._run = lambda *a: os._exit(9)")
    crashed = subprocess.run([sys.executable, "-c", script, str(ws)], input=_answer(HELLO_BYE).encode(),
                             env=clean_env(), capture_output=True, timeout=60)
    assert crashed.returncode == 9, crashed.stderr.decode()
    h = build_harness(ws)
    h.engine.prune_stale()
    assert (ws / "train.py").read_text() == TRAIN
    record = h.engine.history()[-1]
    assert record.outcome == "error" and "no file was changed" in record.reason


def test_a_write_failing_midway_restores_the_files_already_written(ws: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real = promote._write
    calls = []

    def fail_second(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise StateError(f"cannot write {path}: the disk is full")
        real(path, data)

    monkeypatch.setattr(promote, "_write", fail_second)
    h = build_harness(ws)
    report = h.engine.apply_answer(_answer(HELLO_BYE, ("model.py", "LAYERS = 2", "LAYERS = 3")))
    assert report.outcome == "error" and "disk is full" in report.reason and "restored" in report.reason
    assert (ws / "train.py").read_text() == TRAIN and (ws / "model.py").read_text() == "LAYERS = 2\n"
    assert not (ws / ".phoenix_cli" / "promotion.journal").exists()
    assert not h.of(RepairPromoted)


def test_promotion_keeps_the_owner_of_a_file(ws: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing file owners needs root")
    os.chown(ws / "train.py", 1234, 1234)
    assert build_harness(ws).engine.apply_answer(_answer(HELLO_BYE)).promoted
    st = (ws / "train.py").stat()
    assert (st.st_uid, st.st_gid) == (1234, 1234)
