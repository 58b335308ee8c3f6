"""An isolated copy of the workspace, where a patch is applied and verified before anything is promoted.

The copy lives outside the workspace, so nothing verification runs can reach the workspace by a
relative path: under ``<tmp>/phoenix-<uid>/<workspace hash>/<id>/`` (a directory Phoenix owns, mode
0700, checked not to be a link or another user's), holding ``wt/`` (the copy) and ``scratch/`` (the
test command's home and temporary files). In a git repository ``wt`` is a detached worktree checked
out from a snapshot of the workspace as it is (`gitrepo.snapshot`); elsewhere a plain copy (without
Phoenix's state, caches and files over 64 MiB). Each copy has a small ledger in the workspace's
``.phoenix_cli/worktrees/`` naming where it is and the process groups started inside, so
`prune_stale` can end them and remove the copy after a crash, even one that left git's
``initializing`` lock behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import hashlib
import signal
import stat
import tempfile
from pathlib import Path

from phoenix_sidecar.errors import RepairError
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.repair import gitrepo, proc
from phoenix_sidecar.repair.gitrepo import Repo, Snapshot
from phoenix_watchdog.probes.groupkill import kill_group
from phoenix_watchdog.probes.proctree import start_token

log = logging.getLogger(__name__)

MAX_COPY_FILE_BYTES = gitrepo.MAX_SNAPSHOT_FILE_BYTES
MAX_COPY_BYTES = 2 * 1024 ** 3
_SKIP_DIRS = {"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


class Isolated:
    """A private copy of the workspace. ``workspace`` is the workspace's place inside it."""

    def __init__(self, root: Path, workspace: Path, ledger: Path, *, repo: Repo | None = None,
                 snapshot: Snapshot | None = None, scratch: Path | None = None) -> None:
        self.root = root
        self.workspace = workspace
        self.scratch = scratch if scratch is not None else root.parent / "scratch"
        self.ledger = ledger
        self.repo = repo
        self.snapshot = snapshot

    def read(self, rel: str) -> bytes | None:
        path = self._path(rel)
        try:
            return path.read_bytes() if path is not None else None
        except OSError:
            return None

    def write(self, rel: str, data: bytes) -> None:
        path = self._path(rel)
        if path is None:
            raise RepairError(f"{rel} is not a regular file in the isolated copy")
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)

    def _path(self, rel: str) -> Path | None:
        """The file in the copy, provided no component is a link and it is a regular file."""
        current = self.workspace
        for part in Path(rel).parts:
            current = current / part
            try:
                st = os.lstat(current)
            except OSError:
                return None
            if stat.S_ISLNK(st.st_mode):
                return None
        return current if stat.S_ISREG(os.lstat(current).st_mode) else None

    def track(self, pgid: int) -> None:
        """Remember a process group started in the copy, for `prune_stale` after a crash."""
        record = _read_ledger(self.ledger)
        record.setdefault("groups", []).append({"pgid": pgid, "token": start_token(pgid)})
        self.ledger.write_text(json.dumps(record), encoding="utf-8")

    def tree(self, files: list[str]) -> str | None:
        """The git tree of the copy with ``files`` (workspace-relative) changed; None outside git."""
        if self.repo is None:
            return None
        prefix = self.repo.prefix
        return gitrepo.tree_with(self.root, [prefix + f for f in files])

    def close(self) -> None:
        # Every process group started here is already gone (`proc.run` waits for that).
        if self.repo is not None:
            gitrepo.worktree_remove(self.repo, self.root)
        shutil.rmtree(self.root.parent, ignore_errors=True)
        self.ledger.unlink(missing_ok=True)

    def __enter__(self) -> Isolated:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def isolate(paths: StatePaths, repair_id: str, repo: Repo | None, *, only: list[str] | None = None) -> Isolated:
    """Make the isolated copy for one repair.

    Args:
        only: workspace files that are all verification needs (no test command runs): only those
            are written, so the cost does not grow with the size of the repository.

    Raises:
        RepairError: git failed, the repository has submodules, or the workspace is too big to copy.
    """
    paths.worktrees.mkdir(parents=True, exist_ok=True)
    home = copies_dir(paths, create=True) / repair_id
    root = home / "wt"
    ledger = paths.worktrees / f"{repair_id}.json"
    # The ledger first: a crash from here on leaves a record of where the copy is.
    ledger.write_text(json.dumps({"pid": os.getpid(), "token": start_token(os.getpid()), "groups": [],
                                  "root": str(home)}), encoding="utf-8")
    try:
        os.mkdir(home, 0o700)
        os.mkdir(home / "scratch", 0o700)
        if repo is None:
            if only is None:
                _copy_tree(paths.workspace, root, paths.root)
            else:
                for rel in only:
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(paths.workspace / rel, root / rel, follow_symlinks=False)
            return Isolated(root, root, ledger, scratch=home / "scratch")
        gitlinks = gitrepo.submodules(repo)
        if gitlinks:
            raise RepairError(f"the repository has submodules ({', '.join(gitlinks[:3])}); Phoenix cannot verify "
                              f"a patch in isolation there, so it does not repair such workspaces")
        snap = gitrepo.snapshot(repo, paths.root / "tmp" / repair_id, f"phoenix: snapshot for repair {repair_id}")
        gitrepo.worktree_add(repo, root, snap.commit,
                             only=None if only is None else [repo.prefix + rel for rel in only])
        return Isolated(root, root / repo.prefix, ledger, repo=repo, snapshot=snap, scratch=home / "scratch")
    except BaseException:
        if repo is not None:
            gitrepo.worktree_remove(repo, root)
        shutil.rmtree(home, ignore_errors=True)
        ledger.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(paths.root / "tmp" / repair_id, ignore_errors=True)


def copies_dir(paths: StatePaths, *, create: bool = False) -> Path:
    """Where this workspace's isolated copies live: ``<tmp>/phoenix-<uid>/<hash of the workspace path>``.

    Raises:
        RepairError: (with ``create``) the directory is a link, or not this user's, or open to others.
    """
    base = Path(tempfile.gettempdir()) / f"phoenix-{os.getuid()}"
    digest = hashlib.sha256(os.path.realpath(paths.workspace).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    if create:
        for folder in (base, base / digest):
            try:
                os.mkdir(folder, 0o700)
            except FileExistsError:
                pass
            except OSError as exc:
                raise RepairError(f"cannot create {folder} for the isolated copy: {exc.strerror}") from exc
            st = os.lstat(folder)
            # Someone else's directory (or a link planted in a shared /tmp) would hand them the copy.
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
                raise RepairError(f"{folder} is not a private directory of this user (a link, another user's, "
                                  f"or open to others); remove it so Phoenix can verify repairs in isolation")
    return base / digest


def prune_stale(paths: StatePaths, repo: Repo | None) -> list[str]:
    """Remove every isolated copy left behind (the caller holds the workspace lock, so all are stale)."""
    removed: list[str] = []
    copies = copies_dir(paths)
    if paths.worktrees.is_dir():
        for ledger in paths.worktrees.glob("*.json"):
            recorded = _read_ledger(ledger).get("root")
            home = Path(recorded) if isinstance(recorded, str) else copies / ledger.stem
            _end_groups(ledger, home)
    if repo is not None:
        for under in (copies, paths.worktrees):  # (copies made by older versions lived in the workspace)
            for _admin, wt in gitrepo.admin_dirs(repo, under):
                gitrepo.worktree_remove(repo, wt)
                removed.append(wt.parent.name if wt.name == "wt" else wt.name)
    if copies.is_dir() and not copies.is_symlink():
        for entry in copies.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
            else:
                entry.unlink(missing_ok=True)
    if paths.worktrees.is_dir():
        for entry in paths.worktrees.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
            else:
                entry.unlink(missing_ok=True)
    shutil.rmtree(paths.root / "tmp", ignore_errors=True)
    return sorted(set(removed))


def _read_ledger(ledger: Path) -> dict:  # type: ignore[type-arg]
    try:
        data = json.loads(ledger.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _end_groups(ledger: Path, copy: Path) -> None:
    """End what a crashed Phoenix left running in ``copy``: the groups its ledger names, and no other."""
    for group in _read_ledger(ledger).get("groups", []):
        pgid, token = group.get("pgid"), group.get("token")
        if not isinstance(pgid, int) or pgid <= 1 or token is None:
            continue
        if start_token(pgid) == token:  # the leader we started is alive: the group is ours
            kill_group(pgid)
            continue
        # The leader is gone: only members that started after it and still work inside the copy are
        # ours (a recycled group id would have neither property).
        for pid in proc.group_members(pgid, since=int(token)):
            try:
                cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
            except OSError:
                continue
            if cwd == copy or cwd.is_relative_to(copy):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


def _copy_tree(src: Path, dst: Path, state_root: Path) -> None:
    total = 0
    skipped: list[str] = []
    state_root = Path(os.path.realpath(state_root))
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        rel = here.relative_to(src)
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS
                       and Path(os.path.realpath(here / d)) != state_root]
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for d in list(dirnames):
            if (here / d).is_symlink():
                os.symlink(os.readlink(here / d), dst / rel / d)
                dirnames.remove(d)
        for name in filenames:
            source = here / name
            st = os.lstat(source)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(source), dst / rel / name)
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if st.st_size > MAX_COPY_FILE_BYTES:
                skipped.append(str(rel / name))
                continue
            total += st.st_size
            if total > MAX_COPY_BYTES:
                raise RepairError(f"the workspace is not a git repository and holds more than "
                                  f"{MAX_COPY_BYTES // 1024 ** 3} GiB of files to copy for verification; "
                                  f"make it a repository (git init) so Phoenix can use a worktree")
            shutil.copy2(source, dst / rel / name, follow_symlinks=False)
    if skipped:
        log.info("isolated copy leaves out %d large files (e.g. %s)", len(skipped), skipped[0])
