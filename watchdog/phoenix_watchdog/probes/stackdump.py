"""Takes the stack of a hung Python job before it is killed: the dump tells where it hung.

`py-spy dump` reads a process's stacks from outside, with no cooperation from the job (it needs
ptrace rights, which a parent has over its descendants). Where py-spy is missing or not allowed, a
job that registered ``faulthandler.register(signal.SIGUSR1)`` prints its own stacks to stderr
when sent SIGUSR1; only processes that catch the signal are sent it, since for the others it is
fatal.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from phoenix_watchdog.probes.groupkill import kill_group
from phoenix_watchdog.probes.proctree import catches_signal, is_python

MAX_PROCESSES = 4  # the root and a few ranks say where it hangs; 64 DataLoader workers add nothing


def find_pyspy() -> str | None:
    """The py-spy executable: beside this interpreter (same virtual environment) or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


def pyspy_dumps(pids: Sequence[int], timeout: float, *, pyspy: str | None = None) -> dict[int, str]:
    """Dump the Python processes among ``pids`` in parallel, within ``timeout`` seconds in all.

    Returns the dumps that succeeded, by pid. Never raises: a failed dump is simply absent.
    """
    pyspy = pyspy or find_pyspy()
    targets = [pid for pid in pids if is_python(pid)][:MAX_PROCESSES]
    if not pyspy or not targets or timeout <= 0:
        return {}
    procs: dict[int, subprocess.Popen[bytes]] = {}
    for pid in targets:
        try:
            procs[pid] = subprocess.Popen([pyspy, "dump", "--pid", str(pid)], stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        except OSError:
            continue
    deadline = time.monotonic() + timeout
    dumps: dict[int, str] = {}
    for pid, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)  # py-spy runs in its own session: its group is its pid
            proc.wait()
            continue
        if proc.returncode == 0 and out.strip():
            dumps[pid] = out.decode("utf-8", errors="replace").rstrip()
    return dumps


def request_faulthandler_dumps(pids: Sequence[int]) -> list[int]:
    """Send SIGUSR1 to the processes that catch it. Returns the pids that were asked."""
    asked = []
    for pid in pids[:MAX_PROCESSES]:
        if catches_signal(pid, signal.SIGUSR1):
            try:
                os.kill(pid, signal.SIGUSR1)
                asked.append(pid)
            except OSError:
                pass
    return asked


def format_dumps(dumps: dict[int, str]) -> str:
    return "\n\n".join(dumps[pid] for pid in dumps)

