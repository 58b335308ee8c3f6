"""Real small volumes for the full-disk and read-only tests: a tmpfs mounted where a test needs it.

Mounting needs root (the test command runs as root); where it is refused the calling test is
skipped with the reason, and a strict run fails that skip.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def mount_tmpfs(target: Path, options: str = "size=64k") -> Path:
    """Mount a tmpfs with ``options`` on ``target`` (created if missing); skip the test if refused."""
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    return target


def unmount(target: Path) -> None:
    """Detach ``target`` (lazily: a test's open file must not keep the volume from going)."""
    subprocess.run(["umount", "-l", str(target)], check=False)


@contextmanager
def tmpfs(target: Path, options: str = "size=64k") -> Iterator[Path]:
    """A tmpfs on ``target`` for the duration of the block."""
    mount_tmpfs(target, options)
    try:
        yield target
    finally:
        unmount(target)
