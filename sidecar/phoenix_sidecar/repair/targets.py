"""Which workspace files a failure points at: traceback paths mapped to the workspace, and config files.

A traceback names files as the job saw them: relative to its working directory, absolute in this
workspace, or absolute under another mount (``/workspace/train.py`` inside the trainer container).
`map_path` finds the workspace file each means, and never a library's file. For an out-of-memory
failure the fix is often a smaller batch in a config file: `config_files` lists the allowlisted ones
a repair may be shown.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from phoenix_sidecar.repair.safety import PathPolicy

CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".toml", ".cfg", ".ini")
CONFIG_FOLDERS = ("", "config", "configs", "conf")
SYSTEM_PATHS = ("/usr/lib/python", "/usr/local/lib/python", "/opt/conda/lib/", "<frozen", "<string>")


def map_path(workspace: Path, name: str) -> str | None:
    """The workspace file a traceback path means, or None (library code, or not in the workspace)."""
    if not name or any(name.startswith(p) for p in SYSTEM_PATHS) or "-packages/" in name:
        return None
    path = PurePosixPath(name)
    if not path.is_absolute():
        rel = os.path.normpath(name)
        return rel if not rel.startswith("..") and (workspace / rel).is_file() else None
    for root in (workspace, Path(os.path.realpath(workspace))):
        if Path(name).is_relative_to(root):
            rel = Path(name).relative_to(root).as_posix()
            return rel if (workspace / rel).is_file() else None
    # The job may see the workspace at another path (a container mount): match the longest tail.
    parts = path.parts[1:]
    for k in range(len(parts)):
        candidate = PurePosixPath(*parts[k:]).as_posix()
        if (workspace / candidate).is_file():
            return candidate
    return None


def config_files(workspace: Path, policy: PathPolicy, limit: int = 3) -> list[str]:
    """Up to ``limit`` allowlisted config files at the top of the workspace or in its config folders."""
    found = []
    for folder in CONFIG_FOLDERS:
        base = workspace / folder
        if not base.is_dir():
            continue
        for entry in sorted(base.iterdir()):
            rel = entry.relative_to(workspace).as_posix()
            if entry.suffix.lower() in CONFIG_SUFFIXES and policy.allowed(rel) is not None:
                found.append(rel)
    return found[:limit]
