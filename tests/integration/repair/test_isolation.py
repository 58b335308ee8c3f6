"""Isolation with real git: the user's branch, index, HEAD and files stay as they were; crashes leave nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from phoenix_sidecar.events import RepairPromoted
from kits.waiting import HANG_GUARD
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.repair import isolation
from kits.repairkit import TRAIN, build_harness, fingerprint, git, make_repo
from testkit import clean_env, process_alive

FIX = json.dumps({"patches": [{"file_path": "train.py", "mode": "search_replace", "search": 'print("Hello!")',
                               "replace": 'print("Bye!")'}]})

# Run inside the isolated copy: proves it holds the workspace as it is, and is not the workspace.
PROBE = textwrap.dedent('''
    import json, os, pathlib, sys
    here = pathlib.Path.cwd()
    out = {"cwd": str(here), "model": pathlib.Path("model.py").read_text(),
           "untracked": pathlib.Path("extra.py").read_text() if pathlib.Path("extra.py").exists() else None,
           "staged": pathlib.Path("staged.py").read_text() if pathlib.Path("staged.py").exists() else None,
           "ignored": pathlib.Path("data/big.bin").exists(), "state_dir": pathlib.Path(".phoenix_cli").exists(),
           "train": pathlib.Path("train.py").read_text()}
    pathlib.Path(sys.argv[1]).write_text(json.dumps(out))
''')


def _dirty(ws: Path) -> None:
    """Uncommitted, staged, untracked and ignored changes, as a user has them mid-work."""
    (ws / "model.py").write_text("LAYERS = 4  # uncommitted\n")
    (ws / "staged.py").write_text("STAGED = 1\n")
    git(ws, "add", "staged.py")
    (ws / "staged.py").write_text("STAGED = 2  # modified after staging\n")
    (ws / "extra.py").write_text("EXTRA = 1\n")
    (ws / ".gitignore").write_text("data/\n")
    (ws / "data").mkdir()
    (ws / "data" / "big.bin").write_bytes(b"\0" * 1024)


def _without(state: dict, *keys: str) -> dict:
    return {k: v for k, v in state.items() if k not in keys}


def test_verified_dry_run_sees_the_workspace_as_it_is_and_changes_nothing(ws: Path, tmp_path: Path) -> None:
    _dirty(ws)
    probe = tmp_path / "probe.json"
    h = build_harness(ws, dry_run=True, test_cmd=[sys.executable, "-c", PROBE, str(probe)], sandbox="detect")
    before = fingerprint(ws)

    report = h.engine.apply_answer(FIX)

    assert report.outcome == "dry_run" and report.verified and not report.promoted, report
    seen = json.loads(probe.read_text())
    assert seen["model"] == "LAYERS = 4  # uncommitted\n"
    assert seen["untracked"] == "EXTRA = 1\n"
    assert seen["staged"] == "STAGED = 2  # modified after staging\n"
    assert 'print("Bye!")' in seen["train"]
    assert not seen["ignored"] and not seen["state_dir"]
    # The copy lives outside the workspace, in this workspace's private folder of copies.
    assert Path(seen["cwd"]).parent.parent == isolation.copies_dir(StatePaths(ws)) and not Path(seen["cwd"]).is_relative_to(ws)
    after = fingerprint(ws)
    assert _without(after, "refs") == _without(before, "refs")  # files, index, HEAD, status, worktrees, hooks, config
    new_refs = set(after["refs"].splitlines()) - set(before["refs"].splitlines())
    assert [r.split()[0] for r in new_refs] == ["refs/heads/phoenix/repairs"]
    assert not h.of(RepairPromoted)
    assert git(ws, "show", "phoenix/repairs:train.py").count('print("Bye!")') == 1
    # The branch records only what the repair changed: the rest is HEAD's, and no untracked file
    # of the snapshot (it may hold credentials) is committed to a branch a push would publish.
    assert git(ws, "show", "phoenix/repairs:model.py") == git(ws, "show", "HEAD:model.py")
    assert "extra.py" not in git(ws, "ls-tree", "-r", "--name-only", "phoenix/repairs")
    assert git(ws, "diff", "--name-only", "phoenix/repairs^", "phoenix/repairs").split() == ["train.py"]


def test_promotion_changes_only_the_patched_file(ws: Path) -> None:
    _dirty(ws)
    h = build_harness(ws)
    before = fingerprint(ws)

    report = h.engine.apply_answer(FIX)

    assert report.outcome == "promoted", report
    after = fingerprint(ws)
    assert after["index"] == before["index"] and after["HEAD"] == before["HEAD"]
    assert after["worktrees"] == before["worktrees"]
    changed = {k for k in before["files"] if before["files"][k] != after["files"][k]}
    assert changed == {"train.py"} and set(after["files"]) == set(before["files"])
    assert (ws / "train.py").read_text() == TRAIN.replace("Hello!", "Bye!")
    assert git(ws, "rev-parse", "HEAD") == git(ws, "rev-parse", "main")
    # The record commit holds exactly the change, on top of the workspace as it was.
    show = git(ws, "show", "--format=%s", "phoenix/repairs")
    assert show.startswith(f"phoenix repair {report.repair_id}")
    assert '-    print("Hello!")' in show and '+    print("Bye!")' in show
    assert "model.py" not in show


def test_repairs_accumulate_on_the_branch(ws: Path) -> None:
    h = build_harness(ws)
    first = h.engine.apply_answer(FIX)
    second = h.engine.apply_answer(json.dumps({"patches": [{"file_path": "model.py", "mode": "search_replace",
                                                            "search": "LAYERS = 2", "replace": "LAYERS = 3"}]}))
    assert first.promoted and second.promoted
    log = git(ws, "log", "--format=%s", "phoenix/repairs")
    assert f"phoenix repair {first.repair_id}" in log and f"phoenix repair {second.repair_id}" in log


def test_workspace_in_a_subdirectory_of_the_repository(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"proj/train.py": TRAIN, "README": "x\n"})
    ws = repo / "proj"
    probe = tmp_path / "probe.json"
    script = "import json,pathlib,sys; pathlib.Path(sys.argv[1]).write_text(json.dumps(str(pathlib.Path.cwd())))"
    h = build_harness(ws, test_cmd=[sys.executable, "-c", script, str(probe)], sandbox="detect")
    report = h.engine.apply_answer(FIX)
    assert report.promoted, report
    assert Path(json.loads(probe.read_text())).name == "proj"  # the test ran in the workspace's place in the copy
    assert (ws / "train.py").read_text() == TRAIN.replace("Hello!", "Bye!")
    assert git(repo, "show", "phoenix/repairs:proj/train.py") == TRAIN.replace("Hello!", "Bye!")


def test_user_hooks_do_not_run_and_a_stale_index_lock_is_left_alone(ws: Path, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    hook = ws / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    (ws / ".git" / "index.lock").write_text("")  # a git command of the user's that died
    report = build_harness(ws).engine.apply_answer(FIX)
    assert report.promoted, report
    assert not marker.exists()
    assert (ws / ".git" / "index.lock").exists()


def test_a_repository_with_submodules_is_refused_clearly(ws: Path) -> None:
    sha = git(ws, "rev-parse", "HEAD").strip()
    git(ws, "update-index", "--add", "--cacheinfo", f"160000,{sha},vendor/lib")
    git(ws, "commit", "-q", "-m", "add a submodule")
    before = fingerprint(ws)
    report = build_harness(ws).engine.apply_answer(FIX)
    assert report.outcome == "error" and "submodules" in report.reason and "vendor/lib" in report.reason
    assert fingerprint(ws) == before


def test_a_workspace_outside_git_is_verified_in_a_copy(tmp_path: Path) -> None:
    ws = tmp_path / "plain"
    ws.mkdir()
    (ws / "train.py").write_text(TRAIN)
    (ws / "model.py").write_text("LAYERS = 2\n")
    probe = tmp_path / "probe.json"
    h = build_harness(ws, test_cmd=[sys.executable, "-c", PROBE, str(probe)], sandbox="detect")
    report = h.engine.apply_answer(FIX)
    assert report.promoted and report.commit is None, report
    seen = json.loads(probe.read_text())
    assert 'print("Bye!")' in seen["train"] and not seen["state_dir"]
    assert (ws / "train.py").read_text() == TRAIN.replace("Hello!", "Bye!")
    assert list((ws / ".phoenix_cli" / "worktrees").iterdir()) == []


def _engine_script(ws: Path, marker: Path, leader_lives: float = 300) -> str:
    return textwrap.dedent(f'''
        import sys
        from pathlib import Path
        from phoenix_sidecar.events import EventBus
        from phoenix_sidecar.paths import StatePaths
        from phoenix_sidecar.repair import RepairEngine
        from phoenix_sidecar.config.schema import Settings
        test = [sys.executable, "-c",
                "import os, subprocess, sys, time; child = subprocess.Popen(['sleep', '300']); "
                "open(sys.argv[1], 'w').write(f'{{os.getpid()}} {{child.pid}}'); time.sleep({leader_lives})",
                {str(marker)!r}]
        settings = Settings(workspace={str(ws)!r}, test_cmd=test, test_timeout_seconds=600, sandbox="detect")
        engine = RepairEngine(settings, StatePaths(Path({str(ws)!r})).ensure(), EventBus())
        engine.apply_answer(sys.stdin.read())
    ''')


@pytest.mark.parametrize("leader_lives", [300, 1], ids=["test-still-running", "only-its-child-left"])
def test_worktree_and_test_processes_left_by_a_sigkilled_phoenix_are_pruned(ws: Path, tmp_path: Path,
                                                                          leader_lives: float) -> None:
    before = fingerprint(ws)
    marker = tmp_path / "test-started"
    phoenix = subprocess.Popen([sys.executable, "-c", _engine_script(ws, marker, leader_lives)],
                               stdin=subprocess.PIPE, env=clean_env(), start_new_session=True)
    phoenix.stdin.write(FIX.encode())  # type: ignore[union-attr]
    phoenix.stdin.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + HANG_GUARD
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
        assert phoenix.poll() is None, "the engine ended before its test command started"
        time.sleep(0.05)
    test_pid, child_pid = map(int, marker.read_text().split())
    group = os.getpgid(test_pid)
    phoenix.send_signal(signal.SIGKILL)
    phoenix.wait()
    try:
        assert str(isolation.copies_dir(StatePaths(ws))) in git(ws, "worktree", "list")  # the crash left it behind
        deadline = time.monotonic() + HANG_GUARD
        while leader_lives < 300 and process_alive(test_pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # the test command ends by itself, leaving its child behind
        assert process_alive(child_pid) and process_alive(test_pid) == (leader_lives == 300)

        build_harness(ws).engine.prune_stale()

        assert git(ws, "worktree", "list", "--porcelain").count("worktree ") == 1
        assert not any((ws / ".phoenix_cli" / "worktrees").iterdir())
        assert not (ws / ".git" / "worktrees").exists() or not any((ws / ".git" / "worktrees").iterdir())
        deadline = time.monotonic() + HANG_GUARD
        while (process_alive(test_pid) or process_alive(child_pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(test_pid) and not process_alive(child_pid), "the orphaned test command still runs"
        assert fingerprint(ws) == before
        assert (ws / "train.py").read_text() == TRAIN  # never promoted
        assert build_harness(ws).engine.history()[-1].outcome == "interrupted"
    finally:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("damage", ["locked_initializing", "admin_dir_gone", "directory_gone"])
def test_prune_removes_worktrees_in_any_state_a_crash_leaves(ws: Path, damage: str) -> None:
    before = fingerprint(ws)
    wt = ws / ".phoenix_cli" / "worktrees" / "20250101T000000-abcdef"
    build_harness(ws)  # creates .phoenix_cli/
    if damage == "locked_initializing":  # what a SIGKILL during `git worktree add` leaves (reference 4.2)
        git(ws, "worktree", "add", "--detach", "--lock", "--reason", "initializing", str(wt), "HEAD")
    else:
        git(ws, "worktree", "add", "--detach", str(wt), "HEAD")
        if damage == "admin_dir_gone":
            import shutil
            shutil.rmtree(ws / ".git" / "worktrees" / wt.name)
        else:
            import shutil
            shutil.rmtree(wt)
    build_harness(ws).engine.prune_stale()
    assert not wt.exists()
    assert git(ws, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert fingerprint(ws) == before


def test_prune_leaves_the_users_own_worktrees_alone(ws: Path, tmp_path: Path) -> None:
    theirs = tmp_path / "their-worktree"
    git(ws, "worktree", "add", "--detach", str(theirs), "HEAD")
    gone = tmp_path / "their-missing-worktree"
    git(ws, "worktree", "add", "--detach", str(gone), "HEAD")
    import shutil
    shutil.rmtree(gone)  # e.g. on an unmounted disk: git would prune it, Phoenix must not
    before = git(ws, "worktree", "list", "--porcelain")
    build_harness(ws).engine.prune_stale()
    assert git(ws, "worktree", "list", "--porcelain") == before


def test_without_a_test_command_only_the_changed_files_are_checked_out(ws: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from phoenix_sidecar.repair import pipeline

    seen: list[list[str]] = []
    real = pipeline.verify

    def spy(iso, files, *args):  # type: ignore[no-untyped-def]
        seen.append(sorted(str(p.relative_to(iso.root)) for p in iso.root.rglob("*") if ".git" not in p.parts))
        return real(iso, files, *args)

    monkeypatch.setattr(pipeline, "verify", spy)
    report = build_harness(ws).engine.apply_answer(FIX)
    assert report.promoted
    assert seen == [["train.py"]]  # model.py was never written: compiling train.py is all verification does
    assert sorted(git(ws, "ls-tree", "--name-only", "phoenix/repairs").split()) == ["model.py", "train.py"]
    assert git(ws, "show", "phoenix/repairs:model.py") == "LAYERS = 2\n"
