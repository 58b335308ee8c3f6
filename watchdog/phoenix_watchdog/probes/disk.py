"""Free space on the volumes the job writes to (workspace, logs), read with statvfs.

Paths on the same file system are reported once, under the first path given, so one full volume
raises one alarm. "Free" is what an unprivileged writer can use (``f_bavail``), as ``df`` shows
it, not the root-reserved blocks. A path that cannot be read is reported with its error, not raised:
the caller decides what a missing volume means.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DiskUsage:
    """One volume. ``error`` is set (and the sizes are 0) when it could not be read."""

    path: str
    free_bytes: int
    total_bytes: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class DiskSnapshot:
    volumes: tuple[DiskUsage, ...]


def read_disks(paths: Sequence[str]) -> DiskSnapshot:
    """Read every distinct volume among ``paths``, in order. Never raises."""
    seen: set[int] = set()
    volumes: list[DiskUsage] = []
    for path in dict.fromkeys(os.path.abspath(p) for p in paths if p):
        try:
            device = os.stat(path).st_dev
            if device in seen:
                continue
            st = os.statvfs(path)
        except OSError as exc:
            volumes.append(DiskUsage(path, 0, 0, error=exc.strerror or type(exc).__name__))
            continue
        seen.add(device)
        volumes.append(DiskUsage(path, st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize))
    return DiskSnapshot(tuple(volumes))
