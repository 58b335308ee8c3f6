"""The one seam for child processes of the repair engine: a time limit, and a whole-group kill.

Each child starts in its own session (so its process group is its own), reads its input from a
file (a child that never reads cannot block us on a full pipe), and writes to files (no pipe
deadlock, bounded memory). At the time limit the group gets SIGTERM, then SIGKILL after a grace
period; after any exit the group is swept with SIGKILL so no grandchild outlives the step.

While a child runs, its process group and start token are kept in a ledger
(``.phoenix_cli/children.json``, see `record_children_in`), so a Phoenix killed during a repair
leaves a record of what it started (the LLM command, the test command), and the next start ends
those groups (`stop_recorded`) instead of letting an orphaned LLM call run on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import json
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from phoenix_watchdog.probes.groupkill import kill_group, signal_group
from phoenix_sidecar import fsutil
from phoenix_sidecar.errors import StateError
from phoenix_watchdog.probes.proctree import all_processes, start_token

KILL_GRACE_SECONDS = 2.0
_ledger: Path | None = None
_ledger_lock = threading.Lock()


def record_children_in(path: Path | None) -> None:
    """Keep the ledger of running children at ``path`` (None: keep none)."""
    global _ledger
    _ledger = path


def _note(pid: int, argv0: str, running: bool) -> None:
    if _ledger is None:
        return
    with _ledger_lock:
        entries = [e for e in _read_ledger(_ledger) if e.get("pgid") != pid]
        if running:
            entries.append({"pgid": pid, "token": start_token(pid), "program": os.path.basename(argv0)})
        try:
            if entries:
                fsutil.atomic_write_text(_ledger, json.dumps(entries))
            else:
                _ledger.unlink(missing_ok=True)
        except (OSError, StateError):
            pass  # the ledger helps a later start clean up; the child itself is still ours


def _read_ledger(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def stop_recorded(path: Path) -> list[str]:
    """End the process groups a dead Phoenix's ledger names (whose leader is still the process it
    started, by start token, or members that started after it), then remove the ledger."""
    stopped = []
    for entry in _read_ledger(path):
        pgid, token = entry.get("pgid"), entry.get("token")
        if not isinstance(pgid, int) or pgid <= 1 or not token:
            continue
        if start_token(pgid) == token or group_members(pgid, since=int(token)):
            kill_group(pgid)
            wait_group_gone(pgid)
            stopped.append(f"{entry.get('program', '?')} (process group {pgid})")
    path.unlink(missing_ok=True)
    return stopped


@dataclass(frozen=True)
class ProcResult:
    returncode: int | None  # None when killed at the time limit
    stdout: bytes
    stderr: bytes
    timed_out: bool
    seconds: float
    stdout_truncated: bool = False

    def text(self, which: str = "stdout") -> str:
        return (self.stdout if which == "stdout" else self.stderr).decode("utf-8", "replace")


def run(argv: Sequence[str], *, cwd: str | os.PathLike[str], env: Mapping[str, str] | None, timeout: float,
        stdin: bytes | None = None, max_output: int = 8 * 1024 * 1024, merge_stderr: bool = False,
        keep: str = "head", on_start: Callable[[int], None] | None = None) -> ProcResult:
    """Run ``argv`` to completion or to ``timeout`` seconds, then sweep its process group.

    Args:
        keep: ``head`` keeps the first ``max_output`` bytes of output (answers), ``tail`` the last (logs).
        merge_stderr: write stderr into stdout, in order.
        on_start: called with the child's pid (= its process group) once it runs.

    Raises:
        OSError: the program could not be started (not found, not executable).
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="phoenix-proc-") as tmp:
        out_path, err_path = Path(tmp, "out"), Path(tmp, "err")
        in_path = Path(tmp, "in")
        in_path.write_bytes(stdin or b"")
        with open(in_path, "rb") as fin, open(out_path, "wb") as fout, open(err_path, "wb") as ferr:
            child = subprocess.Popen(list(argv), cwd=cwd, env=dict(env) if env is not None else None, stdin=fin,
                                     stdout=fout, stderr=subprocess.STDOUT if merge_stderr else ferr,
                                     start_new_session=True, close_fds=True)
            if on_start is not None:
                on_start(child.pid)
            _note(child.pid, str(argv[0]), running=True)
            timed_out = False
            try:
                child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                signal_group(child.pid, signal.SIGTERM)
                try:
                    child.wait(timeout=KILL_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    pass
            except BaseException:
                kill_group(child.pid)
                child.wait()
                raise
            kill_group(child.pid)
            child.wait()
            wait_group_gone(child.pid)
            _note(child.pid, str(argv[0]), running=False)
        stdout, truncated = _read(out_path, max_output, keep)
        stderr, _ = _read(err_path, max_output, "tail")
    return ProcResult(None if timed_out else child.returncode, stdout, stderr, timed_out,
                      time.monotonic() - started, truncated)


def _read(path: Path, limit: int, keep: str) -> tuple[bytes, bool]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if size <= limit:
            return fh.read(), False
        if keep == "tail":
            fh.seek(size - limit)
        return fh.read(limit), True


def group_members(pgid: int, *, since: int = 0) -> list[int]:
    """Live (not zombie) processes in group ``pgid`` that started at or after ``since`` (ticks since boot)."""
    return [p.pid for p in all_processes() if p.pgid == pgid and p.state != "Z" and p.start_time >= since]


def wait_group_gone(pgid: int, timeout: float = 2.0) -> None:
    """Return once no process of the group is left (a SIGKILL is delivered asynchronously)."""
    deadline = time.monotonic() + timeout
    while group_members(pgid) and time.monotonic() < deadline:
        kill_group(pgid)
        time.sleep(0.01)
