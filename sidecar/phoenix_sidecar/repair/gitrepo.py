"""The git seam: every git command the repair engine runs, and what it must never disturb.

The user's branch, index, HEAD and working files are never written. A snapshot of the workspace
as it is (uncommitted and untracked-but-not-ignored changes included) is made with plumbing on a
private copy of the index (``GIT_INDEX_FILE``); worktrees are detached; the ``phoenix/repairs``
branch is moved with a compare-and-swap ``update-ref``. Hooks, fsmonitor and auto-gc are switched
off for every command, and no command takes git's optional index lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from phoenix_sidecar.errors import RepairError

REPAIRS_BRANCH = "refs/heads/phoenix/repairs"
MAX_SNAPSHOT_FILE_BYTES = 64 * 1024 * 1024  # larger untracked files (data, checkpoints) stay out
_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "gc.auto=0",
           "-c", "maintenance.auto=false", "-c", "advice.detachedHead=false", "-c", "core.quotePath=false")
_IDENTITY = {"GIT_AUTHOR_NAME": "Phoenix", "GIT_AUTHOR_EMAIL": "phoenix@localhost",
             "GIT_COMMITTER_NAME": "Phoenix", "GIT_COMMITTER_EMAIL": "phoenix@localhost"}
_SCRUB = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
          "GIT_PREFIX", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES")


@dataclass(frozen=True)
class Repo:
    """Where a workspace sits in its git repository."""

    toplevel: Path
    git_dir: Path  # this worktree's git dir
    common_dir: Path  # shared objects, refs, worktrees/
    prefix: str  # the workspace's path inside the repository ("" or "sub/dir/")


@dataclass(frozen=True)
class Snapshot:
    commit: str
    tree: str
    head: str | None  # None in a repository without commits


def git(cwd: str | os.PathLike[str], *args: str, env: Mapping[str, str] | None = None, input: bytes | None = None,
        timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run one git command under the engine's fixed configuration."""
    full_env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    full_env.update({"GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **_IDENTITY})
    full_env.update(env or {})
    try:
        result = subprocess.run(["git", *_CONFIG, *args], cwd=cwd, env=full_env, input=input,
                                stdin=None if input is not None else subprocess.DEVNULL,
                                capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise RepairError("git is not installed; repairs need it (or a workspace that is not a repository)") from None
    except subprocess.TimeoutExpired:
        raise RepairError(f"git {args[0]} did not finish within {timeout:g} s") from None
    if check and result.returncode != 0:
        err = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RepairError(f"git {args[0]} failed: {err[-1] if err else f'exit {result.returncode}'}")
    return result


def out(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stdout.decode("utf-8", "surrogateescape").strip()


def discover(workspace: Path) -> Repo | None:
    """The repository holding ``workspace``, or None when it is not in one."""
    result = git(workspace, "rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir",
                 "--show-prefix", check=False)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace")
        if "not a git repository" in message:
            return None
        if "dubious ownership" in message:
            raise RepairError(f"git refuses the repository at {workspace} (owned by another user); "
                              f"add it to safe.directory or run Phoenix as its owner")
        raise RepairError(f"git cannot read the repository at {workspace}: {message.strip()[-300:]}")
    lines = out(result).split("\n")
    toplevel, git_dir, common = Path(lines[0]), Path(lines[1]), Path(lines[2])
    if not common.is_absolute():
        common = (workspace / common).resolve()
    prefix = lines[3] if len(lines) > 3 else ""
    return Repo(toplevel, git_dir, common, prefix)


def submodules(repo: Repo) -> list[str]:
    """Paths of submodules (gitlinks) in the index."""
    listing = out(git(repo.toplevel, "ls-files", "--stage", "-z"))
    return [e.split("\t", 1)[1] for e in listing.split("\0") if e.startswith("160000 ")]


def head(repo: Repo) -> str | None:
    result = git(repo.toplevel, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    return out(result) or None


def snapshot(repo: Repo, scratch: Path, message: str) -> Snapshot:
    """A commit of the whole working tree as it is, made without touching the user's index or HEAD."""
    scratch.mkdir(parents=True, exist_ok=True)
    index = scratch / "index"
    real_index = Path(out(git(repo.toplevel, "rev-parse", "--path-format=absolute", "--git-path", "index")))
    if real_index.exists():
        shutil.copyfile(real_index, index)
    env = {"GIT_INDEX_FILE": str(index)}
    parent = head(repo)
    if not real_index.exists() and parent:
        git(repo.toplevel, "read-tree", parent, env=env)
    untracked = out(git(repo.toplevel, "ls-files", "-z", "--others", "--exclude-standard", env=env)).split("\0")
    big = [p for p in untracked if p and _size(repo.toplevel / p) > MAX_SNAPSHOT_FILE_BYTES]
    if not big:
        git(repo.toplevel, "add", "-A", "--", ".", env=env)
    else:
        small = [p for p in untracked if p and p not in set(big)]
        git(repo.toplevel, "add", "-u", "--", ".", env=env)
        if small:
            git(repo.toplevel, "add", "--pathspec-from-file=-", "--pathspec-file-nul", env={**env,
                "GIT_LITERAL_PATHSPECS": "1"}, input="\0".join(small).encode("utf-8", "surrogateescape"))
    tree = out(git(repo.toplevel, "write-tree", env=env))
    args = ["commit-tree", tree, "-m", message]
    if parent:
        args[2:2] = ["-p", parent]
    commit = out(git(repo.toplevel, *args))
    index.unlink(missing_ok=True)
    return Snapshot(commit, tree, parent)


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def worktree_add(repo: Repo, path: Path, commit: str, *, only: Sequence[str] | None = None) -> None:
    """A detached worktree of ``commit``; with ``only``, just those files (repository paths) are written.

    Its index always holds the whole tree, so a commit made from it is complete.
    """
    if only is not None:
        git(repo.toplevel, "worktree", "add", "--no-checkout", "--detach", str(path), commit)
        git(path, "read-tree", commit)
        if only:
            git(path, "checkout-index", "--", *only)
        return
    # Writing thousands of files is the bulk of a repair's cost; parallel checkout (git >= 2.32,
    # ignored by older versions) spreads it over the cores.
    workers = str(min(8, max(2, os.cpu_count() or 2)))
    git(repo.toplevel, "-c", f"checkout.workers={workers}", "worktree", "add", "--detach", str(path), commit)


def worktree_remove(repo: Repo, path: Path) -> None:
    """Remove one of our worktrees, whatever state a crash left it in (locked, half made, gone)."""
    git(repo.toplevel, "worktree", "remove", "--force", "--force", str(path), check=False)
    for admin in admin_dirs(repo, path.parent):
        if admin[1] == path:
            shutil.rmtree(admin[0], ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)


def admin_dirs(repo: Repo, under: Path) -> list[tuple[Path, Path]]:
    """``(admin dir, worktree path)`` of every registered worktree whose path lies under ``under``."""
    found = []
    root = repo.common_dir / "worktrees"
    if not root.is_dir():
        return []
    under = Path(os.path.realpath(under))
    for admin in root.iterdir():
        try:
            gitdir = Path((admin / "gitdir").read_text(encoding="utf-8").strip())
        except OSError:
            continue
        wt = Path(os.path.realpath(gitdir.parent))
        if wt.is_relative_to(under) and wt != under:
            found.append((admin, gitdir.parent))
    return found


def tree_with(worktree: Path, files: Sequence[str]) -> str:
    """The tree of a worktree after staging ``files`` (paths relative to the worktree root)."""
    git(worktree, "add", "--", *files, env={"GIT_LITERAL_PATHSPECS": "1"})
    return out(git(worktree, "write-tree"))


def record_commit(repo: Repo, snap: Snapshot, tree: str, message: str) -> str | None:
    """Commit the repair on the ``phoenix/repairs`` branch; None when the branch cannot be moved.

    The branch records only the files the repair changed, never the rest of the snapshot (whose
    untracked files may hold credentials that a ``git push --all`` would publish): the fix commit
    is HEAD's tree with the repaired files, and its only parent is HEAD's tree with those files as
    they were before, whose parents are HEAD and the branch's previous tip. So ``git show
    phoenix/repairs`` is exactly the change and every earlier repair stays reachable.
    """
    previous = out(git(repo.toplevel, "rev-parse", "--verify", "--quiet", REPAIRS_BRANCH + "^{commit}", check=False))
    current = out(git(repo.toplevel, "symbolic-ref", "--quiet", "HEAD", check=False))
    if current == REPAIRS_BRANCH:
        return None  # the user has it checked out: moving it would change their working tree's status
    changed = [p for p in out(git(repo.toplevel, "diff-tree", "-r", "-z", "--name-only", "--no-renames",
                                  snap.tree, tree)).split("\0") if p]
    before = _overlay(repo, snap.head, snap.tree, changed)
    after = _overlay(repo, snap.head, tree, changed)
    parents = [p for p in (snap.head, previous) if p]
    base_args = ["commit-tree", before, "-m", f"phoenix: workspace before {message.splitlines()[0]}"]
    for p in parents:
        base_args += ["-p", p]
    base = out(git(repo.toplevel, *base_args))
    fix = out(git(repo.toplevel, "commit-tree", after, "-p", base, "-m", message))
    moved = git(repo.toplevel, "update-ref", "-m", "phoenix repair", REPAIRS_BRANCH, fix, previous or "",
                check=False)
    return fix if moved.returncode == 0 else None


def _overlay(repo: Repo, head_commit: str | None, source_tree: str, files: Sequence[str]) -> str:
    """HEAD's tree (or an empty one) with ``files`` taken from ``source_tree`` (removed where absent)."""
    with tempfile.TemporaryDirectory(prefix="phoenix-index-") as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        if head_commit:
            git(repo.toplevel, "read-tree", head_commit, env=env)
        else:
            git(repo.toplevel, "read-tree", "--empty", env=env)
        listing = out(git(repo.toplevel, "ls-tree", "-r", "-z", "--full-tree", source_tree, "--", *files,
                          env={"GIT_LITERAL_PATHSPECS": "1"})) if files else ""
        present = {}
        for entry in filter(None, listing.split("\0")):
            meta, path = entry.split("\t", 1)
            mode, _kind, sha = meta.split()
            present[path] = (mode, sha)
        lines = [f"{present[f][0]} {present[f][1]}\t{f}" if f in present else f"0 {'0' * 40}\t{f}" for f in files]
        if lines:
            git(repo.toplevel, "update-index", "-z", "--index-info", env=env,
                input="\0".join(lines).encode("utf-8", "surrogateescape") + b"\0")
        return out(git(repo.toplevel, "write-tree", env=env))
