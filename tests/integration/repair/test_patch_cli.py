"""`phoenix patch`, `phoenix history` and `phoenix rollback` end to end, through the real command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from phoenix_sidecar.supervise.lock import WorkspaceLock
from kits.repairkit import TRAIN, fingerprint, git
from testkit import run_phoenix

FIX = {"patches": [{"file_path": "train.py", "mode": "search_replace", "search": 'print("Hello!")',
                    "replace": 'print("Bye!")'}]}
PATCH_KEYS = {"file_path", "mode", "status", "reason"}


def _write(tmp_path: Path, answer: object, name: str = "answer.json") -> Path:
    path = tmp_path / name
    path.write_text(answer if isinstance(answer, str) else json.dumps(answer))
    return path


def _patch(ws: Path, response: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run_phoenix(["patch", "--workspace", str(ws), "--response", str(response), *extra], cwd=ws)


def test_a_good_answer_is_promoted_and_exits_0(ws: Path, tmp_path: Path) -> None:
    result = _patch(ws, _write(tmp_path, FIX), "--json", "--set", f"test_cmd={sys.executable} -c 'import train'")
    assert result.returncode == 0, result.stderr.decode()
    out = json.loads(result.stdout)
    assert {"accepted", "verified", "promoted", "patches"} <= set(out)
    assert (out["accepted"], out["verified"], out["promoted"]) == (True, True, True)
    assert out["patches"] == [{"file_path": "train.py", "mode": "search_replace", "status": "applied", "reason": ""}]
    assert (ws / "train.py").read_text() == TRAIN.replace("Hello!", "Bye!")


def test_a_rejected_answer_exits_1_and_says_why(ws: Path, tmp_path: Path) -> None:
    answer = {"patches": [FIX["patches"][0], {"file_path": ".github/workflows/ci.yml", "mode": "search_replace",
                                              "search": "a", "replace": "b"}]}
    before = fingerprint(ws)
    result = _patch(ws, _write(tmp_path, answer), "--json")
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert (out["accepted"], out["verified"], out["promoted"]) == (False, False, False)
    assert all(set(p) == PATCH_KEYS for p in out["patches"])
    assert [p["status"] for p in out["patches"]] == ["not_applied", "rejected"]
    assert "[denylist]" in out["patches"][1]["reason"]
    assert fingerprint(ws) == before
    human = _patch(ws, _write(tmp_path, answer))
    assert human.returncode == 1 and b"rejected" in human.stdout and b".github" in human.stdout


def test_an_answer_that_fails_verification_exits_1(ws: Path, tmp_path: Path) -> None:
    result = _patch(ws, _write(tmp_path, FIX), "--json", "--set",
                    f"test_cmd={sys.executable} -c 'raise SystemExit(1)'")
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert (out["accepted"], out["verified"], out["promoted"]) == (True, False, False)
    assert out["outcome"] == "verify_failed"
    assert (ws / "train.py").read_text() == TRAIN


def test_dry_run_exits_0_when_verified_and_changes_nothing(ws: Path, tmp_path: Path) -> None:
    before = fingerprint(ws)
    result = _patch(ws, _write(tmp_path, FIX), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr.decode()
    out = json.loads(result.stdout)
    assert (out["accepted"], out["verified"], out["promoted"], out["dry_run"]) == (True, True, False, True)
    assert fingerprint(ws)["files"] == before["files"]


def test_usage_errors_exit_2(ws: Path, tmp_path: Path) -> None:
    missing = run_phoenix(["patch", "--workspace", str(ws)], cwd=ws)
    assert missing.returncode == 2 and b"--response" in missing.stderr
    unreadable = _patch(ws, tmp_path / "no-such-answer.json")
    assert unreadable.returncode == 2 and b"cannot read the response file" in unreadable.stderr
    bad_setting = _patch(ws, _write(tmp_path, FIX), "--set", "max_patch_lines=lots")
    assert bad_setting.returncode == 2 and b"max_patch_lines" in bad_setting.stderr
    assert (ws / "train.py").read_text() == TRAIN


def test_garbage_and_giant_answers_exit_1(ws: Path, tmp_path: Path) -> None:
    garbage = _patch(ws, _write(tmp_path, "I am sorry, as an AI I cannot"), "--json")
    assert garbage.returncode == 1 and json.loads(garbage.stdout)["outcome"] == "rejected"
    giant = _patch(ws, _write(tmp_path, "[" + " " * (12 * 1024 * 1024) + "]", "giant.json"), "--json")
    assert giant.returncode == 1 and "too_large" in json.loads(giant.stdout)["reason"]


def test_patch_takes_the_workspace_lock(ws: Path, tmp_path: Path) -> None:
    lock = WorkspaceLock(ws / ".phoenix_cli" / "train.lock", command="phoenix run")
    lock.acquire()
    try:
        result = _patch(ws, _write(tmp_path, FIX))
    finally:
        lock.release()
    assert result.returncode == 3 and b"phoenix run" in result.stderr
    assert (ws / "train.py").read_text() == TRAIN


def test_history_and_rollback_from_the_command_line(ws: Path, tmp_path: Path) -> None:
    assert _patch(ws, _write(tmp_path, FIX)).returncode == 0
    history = run_phoenix(["history", "--workspace", str(ws), "--json", "--repairs"], cwd=ws)
    assert history.returncode == 0
    [row] = json.loads(history.stdout)
    assert row["outcome"] == "promoted" and row["files"] == ["train.py"] and row["source"] == "phoenix patch"
    table = run_phoenix(["history", "-w", str(ws)], cwd=ws)
    assert row["repair_id"].encode() in table.stdout and b"promoted" in table.stdout

    (ws / "train.py").write_text((ws / "train.py").read_text() + "# later edit\n")
    refused = run_phoenix(["rollback", "-w", str(ws)], cwd=ws)
    assert refused.returncode == 1 and b"--force" in refused.stdout
    unknown = run_phoenix(["rollback", "-w", str(ws), "20000101T000000-000000"], cwd=ws)
    assert unknown.returncode == 2 and b"no repair" in unknown.stderr
    done = run_phoenix(["rollback", "-w", str(ws), row["repair_id"], "--force", "--json"], cwd=ws)
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["ok"] and (ws / "train.py").read_text() == TRAIN
    assert "train.py" not in git(ws, "status", "--porcelain")
