"""Where Phoenix keeps its files in a workspace: everything lives under ``.phoenix_cli/``.

The folder is private: created ``0700`` (and made so when an older Phoenix left it open), and the
files in it are created ``0600`` (`fsutil`, the lock, the run log), since they may describe the
job's failures, its command and its output.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from phoenix_sidecar.errors import StateError

STATE_DIR_NAME = ".phoenix_cli"
DIR_MODE = 0o700
FILE_MODE = 0o600


@dataclass(frozen=True)
class StatePaths:
    """The layout of ``<workspace>/.phoenix_cli/``."""

    workspace: Path

    @property
    def root(self) -> Path:
        return self.workspace / STATE_DIR_NAME

    @property
    def lock(self) -> Path:
        return self.root / "train.lock"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def run_log(self) -> Path:
        return self.root / "run.log"

    @property
    def incidents(self) -> Path:
        return self.root / "incidents"

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    @property
    def worktrees(self) -> Path:
        return self.root / "worktrees"

    @property
    def repairs(self) -> Path:
        return self.root / "repairs"

    def ensure(self) -> StatePaths:
        """Create the private state directory (and keep git from tracking it).

        Raises:
            StateError: it cannot be created (a read-only workspace, no permission), named with why.
        """
        try:
            self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            if self.root.stat().st_mode & 0o077 and self.root.stat().st_uid == os.geteuid():
                os.chmod(self.root, DIR_MODE)
            ignore = self.root / ".gitignore"
            if not ignore.exists():
                fd = os.open(ignore, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write("*\n")
        except FileExistsError:
            pass
        except OSError as exc:
            why = "the file system is read-only" if exc.errno == errno.EROFS else (exc.strerror or str(exc))
            raise StateError(f"cannot create Phoenix's state folder {self.root}: {why}; Phoenix keeps its "
                             f"lock, state and logs there") from exc
        return self
