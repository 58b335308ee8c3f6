"""Helpers of the repair tests: real git workspaces, engines with recorded events, state fingerprints.

Import as ``from repair.kit import ...`` (``tests/`` is on the pytest path).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

from phoenix_sidecar.events import Event, EventBus
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.repair import RepairEngine
from phoenix_sidecar.settings import Settings

GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "Test",
           "GIT_COMMITTER_EMAIL": "test@example.com", "GIT_CONFIG_NOSYSTEM": "1"}

TRAIN = '''import sys


def batch_size(cfg):
    return cfg["batch"]


def main(args):
    # show a greeting
    print("Hello!")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''


def git(cwd: Path, *args: str, check: bool = True) -> str:
    env = {**os.environ, **GIT_ENV}
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr.decode()}")
    return result.stdout.decode()


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for rel, text in (files or {"train.py": TRAIN, "model.py": "LAYERS = 2\n"}).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


@dataclasses.dataclass
class Harness:
    """An engine on a workspace, and the events it emitted."""

    workspace: Path
    engine: RepairEngine
    events: list[Event]
    settings: Settings

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def build_harness(workspace: Path, *, environ: dict[str, str] | None = None, config_file: Path | None = None,
                  **overrides: Any) -> Harness:
    """An engine on ``workspace`` with ``Settings`` overrides; its events are collected."""
    settings = Settings(workspace=str(workspace), **overrides)
    events: list[Event] = []
    bus = EventBus()
    bus.subscribe(events.append)
    env = dict(os.environ) if environ is None else environ
    engine = RepairEngine(settings, StatePaths(workspace).ensure(), bus, environ=env, config_file=config_file)
    return Harness(workspace, engine, events, settings)


def fingerprint(workspace: Path) -> dict[str, Any]:
    """Everything a user could notice of a workspace and its repository, byte for byte.

    Files (content, mode, link targets) outside .phoenix_cli/, HEAD, the index file, refs, the
    worktree list and `git status`. The index is read before any git command runs.
    """
    files: dict[str, Any] = {}
    for root, dirs, names in os.walk(workspace):
        rel_root = Path(root).relative_to(workspace)
        dirs[:] = [d for d in dirs if not (rel_root == Path(".") and d in (".phoenix_cli",)) and d != ".git"]
        for name in names:
            p = Path(root) / name
            rel = str(p.relative_to(workspace))
            st = os.lstat(p)
            if os.path.islink(p):
                files[rel] = ("link", os.readlink(p))
            else:
                files[rel] = (st.st_mode, hashlib.sha256(p.read_bytes()).hexdigest())
    state: dict[str, Any] = {"files": files}
    git_dir = workspace / ".git"
    if git_dir.is_dir():
        state["index"] = hashlib.sha256((git_dir / "index").read_bytes()).hexdigest()
        state["HEAD"] = (git_dir / "HEAD").read_text()
        state["refs"] = git(workspace, "for-each-ref", "--format=%(refname) %(objectname)")
        state["worktrees"] = git(workspace, "worktree", "list", "--porcelain")
        state["status"] = git(workspace, "--no-optional-locks", "status", "--porcelain=v2", "--branch",
                              "--untracked-files=all")
        state["hooks"] = sorted(p.name for p in (git_dir / "hooks").iterdir())
        state["config"] = (git_dir / "config").read_text()
    return state
