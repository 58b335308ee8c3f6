"""A promotion is done or undone, whatever stops it: a real SIGKILL in the promotion window, a real
full disk (a 64 KiB tmpfs) when the outcome is recorded. Never "no file was changed" while a file was."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kits.tmpfs import tmpfs
from kits.repairkit import TRAIN, build_harness
from phoenix_sidecar.repair import promote
from testkit import clean_env, process_alive

BYE = TRAIN.replace("Hello!", "Bye!")
ANSWER = json.dumps({"patches": [
    {"file_path": "train.py", "mode": "search_replace", "search": 'print("Hello!")', "replace": 'print("Bye!")'},
    {"file_path": "model.py", "mode": "search_replace", "search": "LAYERS = 2", "replace": "LAYERS = 3"}]})

# Runs a repair in a child Phoenix and SIGKILLs it (a real signal, from itself) at ``WHERE``.
KILLER = textwrap.dedent('''
    import os, signal, sys
    from pathlib import Path
    from phoenix_sidecar import fsutil
    from phoenix_sidecar.events import EventBus
    from phoenix_sidecar.paths import StatePaths
    from phoenix_sidecar.repair import RepairEngine, promote
    from phoenix_sidecar.config.schema import Settings
    where = sys.argv[2]
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    if where == "before_outcome":  # every file written, the outcome not yet recorded
        real_promote = promote.Promoter.promote
        def promote_then_die(self, repair_id, changes, staging, on_done=None):
            return real_promote(self, repair_id, changes, staging, on_done=lambda steps: die())
        promote.Promoter.promote = promote_then_die
    elif where == "mid_rename":  # the second file's temporary written, not yet renamed over it
        real_replace = os.replace
        def replace_or_die(src, dst):
            if str(dst).endswith("model.py"):
                die()
            real_replace(src, dst)
        fsutil.os.replace = replace_or_die
    ws = Path(sys.argv[1])
    RepairEngine(Settings(workspace=str(ws)), StatePaths(ws).ensure(), EventBus()).apply_answer(sys.stdin.read())
''')


def _kill_during(ws: Path, where: str) -> None:
    child = subprocess.run([sys.executable, "-c", KILLER, str(ws), where], input=ANSWER.encode(), env=clean_env(),
                           capture_output=True, timeout=120)
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    assert (ws / ".phoenix_cli" / "promotion.journal").exists()


def _outcome(ws: Path, repair_id: str) -> dict:
    return json.loads((ws / ".phoenix_cli" / "repairs" / repair_id / "outcome.json").read_text())


def test_sigkill_before_the_outcome_is_recorded_is_finished_and_recorded_as_promoted(ws: Path) -> None:
    _kill_during(ws, "before_outcome")
    assert (ws / "train.py").read_text() == BYE  # written, but the record still said "pending"
    h = build_harness(ws)
    h.engine.prune_stale()
    record = h.engine.history()[-1]
    assert record.outcome == "promoted" and set(record.files) == {"train.py", "model.py"}
    assert _outcome(ws, record.repair_id)["promotion"] == "done"
    assert h.engine.rollback().ok  # the backups are found: there is something to roll back
    assert (ws / "train.py").read_text() == TRAIN and (ws / "model.py").read_text() == "LAYERS = 2\n"


def test_sigkill_mid_rename_is_finished_and_its_temporary_file_removed(ws: Path) -> None:
    _kill_during(ws, "mid_rename")
    assert [p.name for p in ws.glob(".model.py.*.tmp")]  # the kill left one behind
    h = build_harness(ws)
    h.engine.prune_stale()
    assert not list(ws.glob(".*.tmp"))
    assert (ws / "train.py").read_text() == BYE and (ws / "model.py").read_text() == "LAYERS = 3\n"
    assert h.engine.history()[-1].outcome == "promoted"


def test_a_promotion_that_cannot_be_finished_is_reverted_never_called_unchanged(ws: Path) -> None:
    _kill_during(ws, "mid_rename")
    for staged in (ws / ".phoenix_cli" / "repairs").glob("*/staged"):
        shutil.rmtree(staged)  # the new content is lost: finishing is impossible
    h = build_harness(ws)
    h.engine.prune_stale()
    assert (ws / "train.py").read_text() == TRAIN and (ws / "model.py").read_text() == "LAYERS = 2\n"
    record = h.engine.history()[-1]
    assert record.outcome == "error" and "reverted" in record.reason and "no file was changed" not in record.reason
    assert not list(ws.glob(".*.tmp"))


@pytest.fixture
def small_state_disk(ws: Path):
    """``.phoenix_cli/`` on a real 64 KiB tmpfs (needs root; skipped where mounting is not allowed)."""
    with tmpfs(ws / ".phoenix_cli") as root:
        yield root


def _fill(root: Path) -> Path:
    filler = root / "filler"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_when_the_outcome_is_recorded_undoes_the_promotion(ws: Path, small_state_disk: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real_promote = promote.Promoter.promote
    filled: list[Path] = []

    def promote_on_a_filling_disk(self, repair_id, changes, staging, on_done=None):  # type: ignore[no-untyped-def]
        def fill_then_record(steps):  # type: ignore[no-untyped-def]
            filled.append(_fill(small_state_disk))
            on_done(steps)
        return real_promote(self, repair_id, changes, staging, on_done=fill_then_record)

    monkeypatch.setattr(promote.Promoter, "promote", promote_on_a_filling_disk)
    h = build_harness(ws)
    report = h.engine.apply_answer(ANSWER)
    assert filled and report.outcome == "error" and not report.promoted, report.reason
    assert "restored" in report.reason
    assert (ws / "train.py").read_text() == TRAIN and (ws / "model.py").read_text() == "LAYERS = 2\n"
    assert not (small_state_disk / "promotion.journal").exists()

    filled[0].unlink()  # space again: the record (written once the staged copies were freed) stays true
    monkeypatch.undo()
    h = build_harness(ws)
    h.engine.prune_stale()
    record = h.engine.history()[-1]
    assert record.outcome == "error" and ("restored" in record.reason or "matches its backup" in record.reason)
    assert (ws / "train.py").read_text() == TRAIN


def test_a_pending_promotion_whose_files_differ_from_their_backups_is_not_called_unchanged(ws: Path) -> None:
    _kill_during(ws, "before_outcome")
    (ws / ".phoenix_cli" / "promotion.journal").unlink()  # as an older Phoenix left it: journal gone, record pending
    h = build_harness(ws)
    h.engine.prune_stale()
    record = h.engine.history()[-1]
    assert record.outcome == "promoted" and "differ from their backups" in record.reason
    assert h.engine.rollback().ok
    assert (ws / "train.py").read_text() == TRAIN


def test_an_llm_command_orphaned_by_a_killed_phoenix_is_stopped_at_the_next_start(ws: Path, tmp_path: Path) -> None:
    marker = tmp_path / "llm.pid"
    llm = tmp_path / "llm.py"
    llm.write_text(f"import os, time\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)\n")
    script = textwrap.dedent(f'''
        import sys
        from pathlib import Path
        from phoenix_sidecar.events import EventBus
        from phoenix_sidecar.paths import StatePaths
        from phoenix_sidecar.repair import RepairEngine, RepairRequest
        from phoenix_sidecar.config.schema import Settings
        from phoenix_watchdog.diagnosis import diagnose
        ws = Path(sys.argv[1])
        log = 'Traceback (most recent call last):\\n  File "' + str(ws / "train.py") + '", line 5, in <module>\\nNameError: name "x" is not defined\\n'
        engine = RepairEngine(Settings(workspace=str(ws), primary="command", llm_cmd=[sys.executable, {str(llm)!r}]),
                              StatePaths(ws).ensure(), EventBus())
        engine.repair(RepairRequest(diagnose(log, None, None, str(ws)), log, None))
    ''')
    child = subprocess.Popen([sys.executable, "-c", script, str(ws)], env=clean_env(), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (marker.exists() and marker.read_text()):
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the LLM command never started"
        time.sleep(0.05)
    llm_pid = int(marker.read_text())
    child.kill()
    child.wait()
    assert process_alive(llm_pid)  # orphaned: it would run until its own time limit
    assert (ws / ".phoenix_cli" / "children.json").exists()

    build_harness(ws).engine.prune_stale()
    assert not process_alive(llm_pid)
    assert not (ws / ".phoenix_cli" / "children.json").exists()
