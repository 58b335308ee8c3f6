"""Helpers shared by every test: a clean environment and a way to run the real `phoenix` CLI.

Import as ``from testkit import run_phoenix`` (``tests/`` is on the pytest path).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = [REPO / "sidecar", REPO / "watchdog"]
# Variables that would leak the developer's own Phoenix or LLM setup into a test.
LEAKY_PREFIXES = ("PHOENIX_", "GEMINI_", "OPENAI_")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a `phoenix` subprocess: this checkout's sources, no stray settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKY_PREFIXES)}
    paths = [str(p) for p in SOURCE_ROOTS]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    # Tests never bind the default metrics port: parallel runs would collide. Nor do they depend
    # on how much disk the machine has free: the disk safety gate has tests of its own.
    env["PHOENIX_METRICS_ADDR"] = ""
    env["PHOENIX_MIN_FREE_DISK_GB"] = "0"
    env.update(extra or {})
    return env


PHOENIX = [sys.executable, "-m", "phoenix_sidecar"]


def run_phoenix(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60,
                input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the real `phoenix` command line to completion and capture its output."""
    return subprocess.run([*PHOENIX, *args], cwd=cwd, env=clean_env(env), timeout=timeout,
                          input=input, capture_output=True, stdin=None if input else subprocess.DEVNULL)




def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, exited but not yet reaped, counts as gone)."""
    from phoenix_watchdog.probes.proctree import read_proc

    info = read_proc(pid)
    return info is not None and info.state != "Z"
