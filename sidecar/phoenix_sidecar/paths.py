"""Where Phoenix keeps its files in a workspace: everything lives under ``.phoenix_cli/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STATE_DIR_NAME = ".phoenix_cli"


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
        """Create the state directory (and keep git from tracking it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n", encoding="utf-8")
        return self
