"""No secret at rest: a real crash-and-repair run with 10 planted secrets, then a grep of everything.

The secrets sit in the job's environment, its output, its exception message, its command line and
untracked files of the workspace. The LLM is a command stand-in that fixes the crashing line. Then
every file Phoenix wrote (state, run log, incidents, lock, repair records), the ``phoenix/repairs``
branch (every file of every commit on it), ``/metrics``, ``phoenix status --json`` and Phoenix's
own console lines are searched: none may hold any secret. The job's own output still reaches the
terminal byte for byte (it is the user's stream).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

from testkit import PHOENIX, clean_env, run_phoenix

HANG_GUARD = 120.0
ENV_SECRETS = {
    "HF_TOKEN": "hf_EnvSecretAAAAAAAAAAAAAAAAAAAA1",
    "WANDB_API_KEY": "0123456789abcdef0123456789abcdef01234567",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
    "GITHUB_TOKEN": "ghp_EnvSecretBBBBBBBBBBBBBBBBBBBBBBBBBB",
    "DB_PASSWORD": "Sup3rS3cretPassw0rd",
}
OUTPUT_SECRETS = ["xoxb-1234567890-abcdefghijkl",
                  "AKIAIOSFODNN7EXAMPLE",
                  "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"]
ARGV_SECRETS = ["hf_CmdlineSecretCCCCCCCCCCCCCCCCCCC", "sk-proj-CmdlineSecretDDDDDDDDDDDDDDDD"]
SECRETS = [*ENV_SECRETS.values(), *OUTPUT_SECRETS, *ARGV_SECRETS]
BUG = 'raise ValueError("cannot log in with " + os.environ["GITHUB_TOKEN"])'
FIX = 'print("logged in", flush=True)'


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _train(done: Path, service: Path) -> str:
    # The output secrets come from a file outside the workspace: only the output carries them.
    return textwrap.dedent(f"""
        import os, sys, time
        slack, aws, jwt = open({str(service)!r}).read().split()
        print("token", os.environ["HF_TOKEN"], "wandb", os.environ["WANDB_API_KEY"], flush=True)
        print("db password", os.environ["DB_PASSWORD"], "args", " ".join(sys.argv[1:]), flush=True)
        print("slack", slack, "aws", aws, flush=True)
        print("Authorization: Bearer " + jwt, file=sys.stderr, flush=True)
        {BUG}
        while not os.path.exists({str(done)!r}):
            time.sleep(0.05)
    """)


def _wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not predicate():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def _state(ws: Path) -> dict:
    try:
        return json.loads((ws / ".phoenix_cli" / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def _branch_text(ws: Path) -> str:
    """Every message, diff and file content of every commit on phoenix/repairs."""
    commits = git(ws, "rev-list", "phoenix/repairs", "--not", "main").split()
    parts = [git(ws, "log", "-p", "phoenix/repairs")]
    for commit in commits:
        for path in git(ws, "ls-tree", "-r", "--name-only", commit).split():
            parts.append(git(ws, "show", f"{commit}:{path}"))
    return "\n".join(parts)


def test_a_crash_and_repair_run_keeps_and_serves_no_secret(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    done = tmp_path / "done"
    service = tmp_path / "service.txt"
    service.write_text(" ".join(OUTPUT_SECRETS))
    (ws / "train.py").write_text(_train(done, service))
    git(ws, "init", "-q", "-b", "main")
    git(ws, "add", "train.py")
    git(ws, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "trainer")
    # Untracked, not ignored: part of the repair's snapshot, never of the repairs branch.
    (ws / "credentials").write_text(f"[default]\naws_secret_access_key = {ENV_SECRETS['AWS_SECRET_ACCESS_KEY']}\n")
    (ws / "hub_config.json").write_text(json.dumps({"token": ENV_SECRETS["HF_TOKEN"]}))
    standin = tmp_path / "llm.py"
    answer = {"patches": [{"file_path": "train.py", "mode": "search_replace", "search": BUG, "replace": FIX}]}
    standin.write_text(f"import json, sys; sys.stdin.read(); print(json.dumps({answer!r}))\n")

    cmd = [*PHOENIX, "run", "--set", "backoff_initial_seconds=0.05", "--set", "primary=command",
           "--set", f"llm_cmd={sys.executable} {standin}", "--set", "metrics_addr=127.0.0.1:0",
           "--", sys.executable, "train.py", "--hf-token", ARGV_SECRETS[0], f"--api-key={ARGV_SECRETS[1]}"]
    proc = subprocess.Popen(cmd, cwd=ws, env=clean_env(ENV_SECRETS), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _state(ws).get("job", {}).get("run") == 2 and _state(ws)["job"]["state"] == "running"
                  or proc.poll() is not None, "the repaired job's second run")
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        address = _state(ws)["supervisor"]["metrics"]
        metrics = urllib.request.urlopen(f"http://{address}/metrics", timeout=30).read().decode()
        status = run_phoenix(["status", "--json"], cwd=ws, env=ENV_SECRETS).stdout.decode()
        lock_now = (ws / ".phoenix_cli" / "train.lock").read_text()
    finally:
        done.write_text("")
        out, err = proc.communicate(timeout=HANG_GUARD)
    assert proc.returncode == 0, err.decode()[-3000:]
    assert FIX in (ws / "train.py").read_text()

    # The pass-through is the user's own stream: byte for byte, secrets and all.
    assert f"slack {OUTPUT_SECRETS[0]}".encode() in out and ARGV_SECRETS[0].encode() in out
    console = "\n".join(line for line in err.decode().splitlines() if line.startswith(("[phoenix", "phoenix:")))
    assert "incident #1" in console

    kept = {str(p.relative_to(ws)): p.read_text(errors="replace")
            for p in (ws / ".phoenix_cli").rglob("*") if p.is_file() and "worktrees" not in p.parts}
    assert any(name.startswith(".phoenix_cli/incidents/") for name in kept)
    assert any(name.startswith(".phoenix_cli/repairs/") for name in kept)
    assert "[REDACTED]" in kept[".phoenix_cli/run.log"]
    served = {"metrics": metrics, "status --json": status, "lock (running)": lock_now, "console": console,
              "phoenix/repairs": _branch_text(ws)}
    assert "phoenix_target_info" in metrics and "train.py" not in metrics.split("phoenix_target_info")[1][:200]
    for where, text in {**kept, **served}.items():
        found = [s for s in SECRETS if s in text]
        assert not found, f"{where} holds {found}"
    # The repairs branch has the repaired file only, not the snapshot's untracked files.
    names = git(ws, "ls-tree", "-r", "--name-only", "phoenix/repairs").split()
    assert names == ["train.py"]

    # Private: the folder 0700, every file Phoenix made 0600.
    root = ws / ".phoenix_cli"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    loose = [p for p in root.rglob("*") if p.is_file() and "worktrees" not in p.parts
             and stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert not loose, [(str(p), oct(p.stat().st_mode)) for p in loose]
    assert os.access(ws / "train.py", os.R_OK)
