"""`phoenix run` repairs a real PyTorch training script with a planted bug, and the job finishes.

The LLM is a stand-in that answers with the fix: a real command reading the prompt on stdin, or a
real OpenAI-compatible HTTP server on 127.0.0.1. Everything else is real: the training job, the
diagnosis, git, the isolated worktree, py_compile, the test command, the promotion.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kits.repairkit import ScriptedServer, openai_reply
from testkit import REPO, run_phoenix

pytest.importorskip("torch", reason="the repair scenario trains a real PyTorch model")
pytestmark = [pytest.mark.torch, pytest.mark.slow]

GOOD = "nn.Linear(hidden, hidden)"
BAD = "nn.Linear(hidden // 2, hidden)"  # the planted bug: a shape mismatch at the first forward
FIX = {"patches": [{"file_path": "train.py", "mode": "search_replace", "search": BAD, "replace": GOOD}]}
TRAIN = ["--epochs", "2", "--steps-per-epoch", "5", "--batch-size", "32", "--hidden", "32", "--log-every", "5"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A git repository with the example trainer committed, and the bug planted but not committed."""
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(REPO / "examples" / "trainer" / "train.py", ws / "train.py")
    git(ws, "init", "-q", "-b", "main")
    git(ws, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "trainer", "--allow-empty")
    git(ws, "add", "train.py")
    git(ws, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "add trainer")
    source = (ws / "train.py").read_text()
    assert source.count(GOOD) == 1
    (ws / "train.py").write_text(source.replace(GOOD, BAD))
    return ws


def settings(ws: Path, *extra: str) -> list[str]:
    # The test command's script (protected: it names it) trains one step; train.py stays patchable.
    smoke = [sys.executable, "train.py", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "8", "--hidden",
             "16", "--checkpoint-dir", "/tmp/phoenix-verify-ckpt"]
    (ws / "smoke.py").write_text(f"import subprocess, sys\nsys.exit(subprocess.call([sys.executable, *{smoke[1:]!r}]))\n")
    test_cmd = shlex.join([sys.executable, "smoke.py"])
    return ["--set", "backoff_initial_seconds=0.1", "--set", f"test_cmd={test_cmd}", "--set", "test_timeout_seconds=120",
            "--set", "llm_timeout_seconds=60", *extra]


def check_repaired(ws: Path, result: subprocess.CompletedProcess[bytes], head_before: str) -> None:
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert b"training finished" in result.stdout
    source = (ws / "train.py").read_text()
    assert GOOD in source and BAD not in source
    state = json.loads((ws / ".phoenix_cli" / "state.json").read_text())
    first = state["incidents"][0]
    assert (first["category"], first["action"]) == ("code_bug", "repair")
    assert first["repair"]["outcome"] == "promoted" and first["repair"]["files"] == ["train.py"]
    assert state["job"]["state"] == "succeeded"
    # The user's branch and HEAD are untouched; the fix is kept on phoenix/repairs and in a backup.
    assert git(ws, "rev-parse", "HEAD") == head_before
    assert git(ws, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert GOOD in git(ws, "show", "phoenix/repairs:train.py")
    backups = list((ws / ".phoenix_cli" / "backups").rglob("*"))
    assert any(p.is_file() and BAD in p.read_text(errors="replace") for p in backups)
    history = json.loads(run_phoenix(["history", "--json", "--repairs", "-w", str(ws)], cwd=ws).stdout)
    assert [r["outcome"] for r in history] == ["promoted"]


def test_command_stand_in_repairs_the_planted_bug(workspace: Path, tmp_path: Path) -> None:
    prompt_seen = tmp_path / "prompt.txt"
    standin = tmp_path / "llm.py"
    standin.write_text(textwrap.dedent(f"""
        import json, sys
        prompt = sys.stdin.read()
        open({str(prompt_seen)!r}, "w").write(prompt)
        print("Here is the fix:\\n```json\\n" + json.dumps({FIX!r}) + "\\n```")
    """))
    head = git(workspace, "rev-parse", "HEAD")
    result = run_phoenix(["run", *settings(workspace, "--set", "primary=command", "--set",
                                           f"llm_cmd={sys.executable} {standin}"),
                          "--", sys.executable, "train.py", *TRAIN], cwd=workspace, timeout=600)
    check_repaired(workspace, result, head)
    prompt = prompt_seen.read_text()
    assert "mat1 and mat2 shapes cannot be multiplied" in prompt  # the diagnosis and the log tail
    assert BAD in prompt  # the source of the failing file, with line numbers
    assert "train.py" in prompt


def test_openai_compatible_server_repairs_the_planted_bug(workspace: Path) -> None:
    with ScriptedServer([openai_reply(json.dumps(FIX))]) as server:
        head = git(workspace, "rev-parse", "HEAD")
        result = run_phoenix(["run", *settings(workspace, "--set", "primary=openai", "--set",
                                               f"openai_url={server.url}/v1", "--set", "openai_model=local-coder"),
                              "--", sys.executable, "train.py", *TRAIN], cwd=workspace, timeout=600)
        check_repaired(workspace, result, head)
        request = server.requests[0]
        assert request["path"] == "/v1/chat/completions"
        assert request["body"]["model"] == "local-coder"
        assert "mat1 and mat2" in json.dumps(request["body"]["messages"])


def test_a_wrong_fix_is_not_promoted_and_phoenix_gives_up(workspace: Path, tmp_path: Path) -> None:
    # An answer that compiles but does not fix the job fails the test command in the worktree:
    # nothing reaches the workspace, and the budget ends the attempts.
    wrong = {"patches": [{"file_path": "train.py", "mode": "search_replace", "search": BAD,
                          "replace": "nn.Linear(hidden // 4, hidden)"}]}
    standin = tmp_path / "llm.py"
    standin.write_text(f"import json; print(json.dumps({wrong!r}))\n")
    before = (workspace / "train.py").read_bytes()
    result = run_phoenix(["run", *settings(workspace, "--set", "primary=command", "--set",
                                           f"llm_cmd={sys.executable} {standin}", "--set", "max_retries=2"),
                          "--", sys.executable, "train.py", *TRAIN], cwd=workspace, timeout=600)
    assert result.returncode == 4
    assert (workspace / "train.py").read_bytes() == before
    err = result.stderr.decode()
    assert "verify_failed" in err
    outcomes = [r["outcome"] for r in json.loads(run_phoenix(["history", "--json", "--repairs", "-w", str(workspace)],
                                                             cwd=workspace).stdout)]
    assert outcomes == ["verify_failed", "verify_failed"]
