"""Write detection around verification, for where no sandbox can be had.

Before the test command runs, `WriteGuard.capture` takes the ``lstat`` of every entry of the
workspace (its ``.git`` and Phoenix's backups included; ``ctime`` is part of it, and no process can
set that back) and of the top of ``$HOME`` (plus ``~/.ssh`` and ``~/.config``), and keeps a private
copy of every workspace file up to 8 MiB (512 MiB in all). `changes` compares afterwards; `restore`
puts copied files back, removes what appeared, and names what it could not restore. Phoenix's
own files that change while a repair runs (the run log, state, records, incidents) are left out.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from phoenix_sidecar.paths import STATE_DIR_NAME

MAX_COPY_FILE = 8 * 1024 * 1024
MAX_COPY_TOTAL = 512 * 1024 * 1024
# Under .phoenix_cli/: what Phoenix itself writes during a repair (everything else there is watched).
_OWN = ("run.log", "state.json", "repairs", "incidents", "worktrees", "train.lock", "tmp")
_HOME_DEEP = (".ssh", ".config")
# In the home only new entries count, and changes to these: a user's shell may write its history meanwhile.
_HOME_WATCHED = (".bashrc", ".profile", ".bash_profile", ".bash_login", ".zshrc", ".zprofile", ".pythonrc",
                 ".gitconfig", ".netrc", ".pypirc", ".ssh")

Entry = tuple[int, int, int, int, int]  # mode, size, mtime_ns, ctime_ns, inode


@dataclass
class WriteGuard:
    workspace: Path
    home: Path | None
    vault: Path  # private copies of workspace files
    before: dict[str, Entry] = field(default_factory=dict)
    home_before: dict[str, Entry] = field(default_factory=dict)
    copied: set[str] = field(default_factory=set)

    @classmethod
    def capture(cls, workspace: Path, home: Path | None, vault: Path) -> WriteGuard:
        guard = cls(Path(workspace), home, vault)
        guard.before = _scan(guard.workspace)
        guard.home_before = _scan_home(home) if home is not None else {}
        os.makedirs(vault, mode=0o700, exist_ok=True)
        total = 0
        for rel, entry in guard.before.items():
            if stat.S_ISREG(entry[0]) and entry[1] <= MAX_COPY_FILE and total + entry[1] <= MAX_COPY_TOTAL:
                target = vault / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copy2(guard.workspace / rel, target, follow_symlinks=False)
                except OSError:
                    continue
                total += entry[1]
                guard.copied.add(rel)
        return guard

    def changes(self) -> list[str]:
        """What changed since `capture`: workspace-relative paths, and ``~/...`` for the home."""
        found = _diff(self.before, _scan(self.workspace))
        if self.home is not None:
            found += [f"~/{rel}" for rel in _home_diff(self.home_before, _scan_home(self.home))]
        return found

    def restore(self) -> list[str]:
        """Undo the changes; returns what could not be undone."""
        left: list[str] = []
        now = _scan(self.workspace)
        for rel in sorted(set(now) - set(self.before), key=len, reverse=True):  # appeared: remove, deepest first
            path = self.workspace / rel
            try:
                if stat.S_ISDIR(now[rel][0]):
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                left.append(rel)
        for rel in sorted(self.before, key=len):  # changed or gone: put back, parents first
            if now.get(rel) == self.before[rel]:
                continue
            mode = self.before[rel][0]
            path = self.workspace / rel
            try:
                if stat.S_ISDIR(mode):
                    path.mkdir(parents=True, exist_ok=True)
                    os.chmod(path, stat.S_IMODE(mode))
                elif rel in self.copied:
                    if path.is_symlink() or path.is_dir():
                        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
                    shutil.copy2(self.vault / rel, path, follow_symlinks=False)
                else:
                    left.append(rel)
            except OSError:
                left.append(rel)
        if self.home is not None:
            home_now = _scan_home(self.home)
            for rel in _home_diff(self.home_before, home_now):
                path = self.home / rel
                if rel not in self.home_before and stat.S_ISREG(home_now[rel][0]):
                    path.unlink(missing_ok=True)  # a file that appeared: removing it restores the home
                else:
                    left.append(f"~/{rel}")
        return left


def _diff(before: dict[str, Entry], after: dict[str, Entry]) -> list[str]:
    changed = [rel for rel in before if after.get(rel) != before[rel] and not _dir_touch(before[rel], after.get(rel))]
    return sorted(changed + [rel for rel in after if rel not in before])


def _home_diff(before: dict[str, Entry], after: dict[str, Entry]) -> list[str]:
    watched = {rel for rel in before if rel.split("/")[0] in _HOME_WATCHED}
    return [rel for rel in _diff({k: v for k, v in before.items() if k in watched}, after)
            if rel in watched or rel not in before]


def _dir_touch(old: Entry, new: Entry | None) -> bool:
    """A directory whose entries came and went (they are reported themselves) is no change of its own."""
    return new is not None and stat.S_ISDIR(old[0]) and old[0] == new[0] and old[4] == new[4]


def _entry(st: os.stat_result) -> Entry:
    return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _scan(root: Path) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_here = here.relative_to(root)
        if rel_here == Path(STATE_DIR_NAME):
            dirnames[:] = [d for d in dirnames if d not in _OWN]
            filenames = [f for f in filenames if not f.startswith(_OWN)]
        for name in [*dirnames, *filenames]:
            try:
                out[(rel_here / name).as_posix()] = _entry(os.lstat(here / name))
            except OSError:
                continue
    return out


def _scan_home(home: Path) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for rel in _listing(home, ""):
        try:
            out[rel] = _entry(os.lstat(home / rel))
        except OSError:
            continue
    return out


def _listing(home: Path, sub: str) -> Iterable[str]:
    try:
        names = os.listdir(home / sub) if sub or home.is_dir() else []
    except OSError:
        return []
    out = []
    for name in names:
        rel = f"{sub}/{name}" if sub else name
        out.append(rel)
        if not sub and name in _HOME_DEEP and (home / name).is_dir() and not (home / name).is_symlink():
            out.extend(_listing(home, name))
    return out
