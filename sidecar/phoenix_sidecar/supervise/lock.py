"""The workspace lock: one supervisor (or one update task) per workspace at a time.

The lock is ``flock(2)`` on ``.phoenix_cli/train.lock``: the kernel releases it when the last
descriptor of the locked open file is closed, however its holders die, so there is never a stale
lock to clean up. The supervisor hands that descriptor on to the job it starts (`fd`), so the lock
is held for as long as *any* process of the job lives: a job that outlives a killed Phoenix keeps
the workspace locked, and the next Phoenix (or `phoenix lock`) is refused, told which processes
still hold it, instead of starting a second copy. The holder writes its pid, host, start time,
command (program name and digest, never the arguments) and, once started, its job's pid into the
file before anyone can see the lock as taken by it, so a refused contender can always say who holds
it. The file is never deleted: deleting it would let a waiter on the old inode and a newcomer on a
new one both "hold" the lock.

Where the file system has no flock (some network mounts answer ENOLCK/ENOSYS), a pid file created
with O_EXCL takes its place. Its holder is only presumed dead when it is on this host and its pid
is gone or reused, and then only after ``lock_stale`` seconds; 0 never takes a pid-file lock over.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Callable

from phoenix_sidecar.errors import LockHeld, LockUnavailable
from phoenix_watchdog.probes.proctree import read_proc, start_token

_NO_FLOCK = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}
_POLL_SECONDS = 0.1
_RECORD_RETRIES = 40  # a holder's record is written right after its flock: read again for up to ~2 s


class WorkspaceLock:
    """An exclusive lock on a workspace, which a supervised job inherits on purpose (see `fd`).

    Args:
        path: the lock file (``.phoenix_cli/train.lock``).
        stale_seconds: for the pid-file fallback only: how old a dead holder's record must be
            before it is taken over; 0 never takes over.
        command: what the holder runs, recorded for whoever is refused.
        flock: the locking call (``fcntl.flock``); a test seam for file systems without flock.
    """

    def __init__(self, path: str | os.PathLike[str], *, stale_seconds: float = 3600.0, command: str = "",
                 flock: Callable[[int, int], None] = fcntl.flock) -> None:
        self.path = Path(path)
        self.stale_seconds = stale_seconds
        self.command = command
        self._flock = flock
        self._fd: int | None = None
        self._pidfile: Path | None = None
        self._job: dict[str, Any] | None = None

    @property
    def pidfile_path(self) -> Path:
        return self.path.with_name(self.path.name + ".pid")

    @property
    def fd(self) -> int | None:
        """The locked descriptor, for the job to inherit (``pass_fds``): the kernel then keeps the
        lock until the job's last process exits, even if Phoenix dies first. None without flock."""
        return self._fd

    @property
    def held(self) -> bool:
        return self._fd is not None or self._pidfile is not None

    def acquire(self, wait: bool = False, timeout: float | None = None) -> None:
        """Take the lock, or raise `LockHeld` naming the holder.

        Args:
            wait: keep trying until the lock is free (or ``timeout`` passes).
            timeout: seconds to wait at most; None waits forever.

        Raises:
            LockHeld: another process holds it (and ``wait`` is false, or the wait timed out).
            LockUnavailable: the lock cannot be taken at all (directory not writable).
        """
        if self.held:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                self._try_acquire()
                return
            except LockHeld:
                if not wait or (deadline is not None and time.monotonic() >= deadline):
                    raise
            time.sleep(_POLL_SECONDS)

    def release(self) -> None:
        """Give the lock up. Safe to call when not held."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            # A job process that survived its stop (stuck in the kernel) still holds the lock
            # through its inherited descriptor: keep the record that names it.
            if not job_members(self._job):
                try:
                    os.ftruncate(fd, 0)
                except OSError:
                    pass
            os.close(fd)  # the flock lasts until every inherited copy is closed too
        if self._pidfile is not None:
            pidfile, self._pidfile = self._pidfile, None
            try:
                pidfile.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> WorkspaceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def record(self) -> dict[str, Any]:
        """What this process writes into the lock: enough for a human to find it."""
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now_iso(),
                  "start_token": start_token(os.getpid()), "command": self.command}
        if self._job is not None:
            record["job"] = self._job
        return record

    def note_job(self, pid: int, program: str) -> None:
        """Record the job just started (its leader leads its own process group), so that a
        contender refused while the job outlives this Phoenix is told which processes to look at."""
        self._job = {"pid": pid, "pgid": pid, "start_token": start_token(pid), "program": program}
        if self._fd is not None:
            _write_record(self._fd, self.record())

    # -- flock ---------------------------------------------------------------------------------
    def _try_acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LockUnavailable(f"cannot open the lock file {self.path}: {exc.strerror}") from exc
        try:
            self._flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockHeld(str(self.path), describe_contention(self.path)) from None
            if exc.errno in _NO_FLOCK:
                self._acquire_pidfile()
                return
            raise LockUnavailable(f"cannot lock {self.path}: {exc.strerror}") from exc
        # The flock is free, but a job's process that closed its inherited copy of the lock (a
        # child started with close_fds) may still run after its Phoenix died: its process group,
        # named in the dead holder's record, says so. Then the workspace is still taken.
        previous = _read_json(self.path)
        if (previous.get("job") and previous.get("pid") != os.getpid()
                and previous.get("host") == socket.gethostname() and job_members(previous["job"])):
            os.close(fd)
            raise LockHeld(str(self.path), orphaned(previous))
        self._job = None
        _write_record(fd, self.record())
        self._fd = fd

    # -- pid-file fallback ---------------------------------------------------------------------
    def _acquire_pidfile(self) -> None:
        pidfile = self.pidfile_path
        for _ in range(2):
            try:
                fd = os.open(pidfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                holder = _read_json(pidfile)
                if not self._may_take_over(pidfile, holder):
                    raise LockHeld(str(pidfile), holder) from None
                try:
                    pidfile.unlink()
                except FileNotFoundError:
                    pass
                continue
            except OSError as exc:
                raise LockUnavailable(f"cannot create the pid-file lock {pidfile}: {exc.strerror}") from exc
            with os.fdopen(fd, "w") as fh:
                json.dump({**self.record(), "mode": "pidfile"}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self._pidfile = pidfile
            return
        raise LockHeld(str(pidfile), _read_json(pidfile))

    def _may_take_over(self, pidfile: Path, holder: dict[str, Any]) -> bool:
        if self.stale_seconds <= 0 or not holder_is_dead(holder):
            return False
        try:
            age = time.time() - pidfile.stat().st_mtime
        except FileNotFoundError:
            return True
        return age >= self.stale_seconds


def holder_is_dead(holder: dict[str, Any]) -> bool:
    """Whether a recorded holder is provably gone: same host, and its pid is free or reused.

    A record from another host (or another container's pid namespace, which has its own host
    name) is never presumed dead: fail closed.
    """
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by someone else
    token = holder.get("start_token")
    return token is not None and token != start_token(pid)


def job_members(job: dict[str, Any] | None) -> list[int]:
    """The live processes of a recorded job: its process group's members (a zombie is gone)."""
    if not job or not isinstance(job.get("pgid"), int):
        return []
    from phoenix_watchdog.probes.proctree import all_processes

    return sorted(p.pid for p in all_processes() if p.pgid == job["pgid"] and p.state != "Z")


def lock_openers(path: str | os.PathLike[str]) -> list[int]:
    """Processes (of this user, or all as root) that have the lock file open: with flock, exactly
    the processes that keep the lock held. Read from ``/proc/*/fd``; only asked on contention."""
    try:
        target = os.stat(path)
    except OSError:
        return []
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fds = os.scandir(f"/proc/{entry.name}/fd")
            with fds:
                for fd in fds:
                    st = os.stat(fd.path)
                    if st.st_ino == target.st_ino and st.st_dev == target.st_dev:
                        found.append(int(entry.name))
                        break
        except OSError:
            continue
    return sorted(found)


def describe_contention(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The holder's record for a refused contender, with what is still alive.

    When the recorded Phoenix is dead but the lock is held, its job outlived it: the record gets
    ``orphaned_job`` naming the processes that still hold the lock and the job's program.
    """
    holder = read_holder(path)
    for _ in range(_RECORD_RETRIES):
        if holder:
            break
        time.sleep(0.05)  # the holder took the flock a moment ago and is writing its record
        holder = read_holder(path)
    if holder and holder_is_dead(holder):
        return orphaned(holder, lock_openers(path))
    if not holder:
        pids = lock_openers(path)
        if pids:
            info = read_proc(pids[0])
            holder = {"pid": pids[0], "host": socket.gethostname(),
                      "command": info.name if info else "", "unrecorded": True}
    return holder


def orphaned(holder: dict[str, Any], openers: Sequence[int] = ()) -> dict[str, Any]:
    """``holder`` with ``orphaned_job`` added: the living processes of the job it recorded (its
    process group, and whoever still has the lock file open). Only for a dead holder's record."""
    job = holder.get("job") if isinstance(holder.get("job"), dict) else {}
    pids = sorted(set(openers) | set(job_members(job)))
    return {**holder, "orphaned_job": {"pids": pids, "program": job.get("program") or holder.get("command", ""),
                                       "pgid": job.get("pgid")}}


def read_holder(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The record in a lock file (or its pid file), or {} when there is none."""
    record = _read_json(Path(path))
    if not record:
        record = _read_json(Path(str(path) + ".pid"))
    return record


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_record(fd: int, record: dict[str, Any]) -> None:
    # Written over the old record, then cut to length: never an empty file in between.
    try:
        data = json.dumps(record).encode()
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    except OSError:
        pass  # the record is for humans; the flock itself is what excludes


def _now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
