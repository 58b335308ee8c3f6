"""The workspace lock: one supervisor (or one update task) per workspace at a time.

The lock is ``flock(2)`` on ``.phoenix_cli/train.lock``: the kernel releases it when the holder
dies, however it dies, so there is never a stale lock to clean up. The holder writes its pid, host,
start time and command into the file so a refused contender can say who holds it. The file is
never deleted: deleting it would let a waiter on the old inode and a newcomer on a new one both
"hold" the lock.

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
from typing import Any, Callable

from phoenix_sidecar.errors import LockHeld, LockUnavailable
from phoenix_watchdog.probes.proctree import start_token

_NO_FLOCK = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}
_POLL_SECONDS = 0.1


class WorkspaceLock:
    """An exclusive, non-inheritable lock on a workspace.

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

    @property
    def pidfile_path(self) -> Path:
        return self.path.with_name(self.path.name + ".pid")

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
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            os.close(fd)  # closing the last descriptor releases the flock
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
        return {"pid": os.getpid(), "host": socket.gethostname(), "started": _now_iso(),
                "start_token": start_token(os.getpid()), "command": self.command}

    # -- flock ---------------------------------------------------------------------------------
    def _try_acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise LockUnavailable(f"cannot open the lock file {self.path}: {exc.strerror}") from exc
        try:
            self._flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockHeld(str(self.path), read_holder(self.path)) from None
            if exc.errno in _NO_FLOCK:
                self._acquire_pidfile()
                return
            raise LockUnavailable(f"cannot lock {self.path}: {exc.strerror}") from exc
        try:
            data = json.dumps(self.record()).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        except OSError:
            pass  # the record is for humans; the flock itself is what excludes
        self._fd = fd

    # -- pid-file fallback ---------------------------------------------------------------------
    def _acquire_pidfile(self) -> None:
        pidfile = self.pidfile_path
        for _ in range(2):
            try:
                fd = os.open(pidfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
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


def _now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
