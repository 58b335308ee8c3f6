"""Reads the process table from /proc: who belongs to a job (its group and its descendants).

A training job is a tree: the launcher, its ranks, their DataLoader workers. Most stay in the
job's process group; a few (daemons, some launchers) start their own session and escape it, but
they remain descendants. Reading /proc is cheap and needs no privilege for this.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgid: int
    state: str
    name: str
    start_time: int  # clock ticks since boot: with the pid, identifies a process (pids are reused)


def read_proc(pid: int, proc: Path = PROC) -> ProcInfo | None:
    """One process's ids and name, or None when it is gone."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    # The name (field 2) may hold spaces and ')'; the fixed fields follow the last ')'.
    close = stat.rfind(")")
    name = stat[stat.find("(") + 1:close]
    fields = stat[close + 2:].split()
    try:
        return ProcInfo(pid=pid, state=fields[0], ppid=int(fields[1]), pgid=int(fields[2]), name=name,
                        start_time=int(fields[19]))
    except (IndexError, ValueError):
        return None


def start_token(pid: int, proc: Path = PROC) -> str | None:
    """A process's start time as text, or None when it is gone: tells a recycled pid from the original."""
    info = read_proc(pid, proc)
    return str(info.start_time) if info is not None else None


def all_processes(proc: Path = PROC) -> list[ProcInfo]:
    out = []
    try:
        entries = os.listdir(proc)
    except OSError:
        return out
    for entry in entries:
        if entry.isdigit():
            info = read_proc(int(entry), proc)
            if info is not None:
                out.append(info)
    return out


def job_processes(root: int, pgid: int | None = None, proc: Path = PROC) -> list[int]:
    """Live pids of a job: the members of its process group and every descendant of ``root``.

    The root comes first, then the others in pid order. Zombies are left out (nothing to stop).
    """
    table = [p for p in all_processes(proc) if p.state != "Z"]
    children: dict[int, list[int]] = {}
    for p in table:
        children.setdefault(p.ppid, []).append(p.pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found.add(pid)
        stack.extend(children.get(pid, ()))
    if pgid is not None:
        found.update(p.pid for p in table if p.pgid == pgid)
    live = {p.pid for p in table}
    ordered = sorted(found & live)
    if root in ordered:
        ordered.remove(root)
        ordered.insert(0, root)
    return ordered


def is_python(pid: int, proc: Path = PROC) -> bool:
    """Whether a process runs a Python interpreter (worth a py-spy dump)."""
    try:
        exe = os.readlink(proc / str(pid) / "exe")
    except OSError:
        exe = ""
    if "python" in os.path.basename(exe):
        return True
    try:
        argv0 = (proc / str(pid) / "cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return False
    return b"python" in os.path.basename(argv0)


def catches_signal(pid: int, signum: int, proc: Path = PROC) -> bool:
    """Whether a process installed a handler for ``signum`` (``SigCgt`` in /proc/PID/status).

    Sending SIGUSR1 to a process that does not catch it would kill it, so the faulthandler dump
    is only requested from processes that registered for it.
    """
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    except (OSError, ValueError, IndexError):
        pass
    return False
