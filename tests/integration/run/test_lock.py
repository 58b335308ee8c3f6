"""The workspace lock, with real processes: refusal names the holder, death frees it."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kits.waiting import HANG_GUARD
from testkit import PHOENIX, clean_env, run_phoenix
from phoenix_sidecar.errors import LockHeld
from phoenix_sidecar.supervise.lock import WorkspaceLock, holder_is_dead, read_holder

LOCK = Path(".phoenix_cli") / "train.lock"


def _hold(workspace: Path, seconds: float = 30) -> subprocess.Popen[bytes]:
    """A real `phoenix lock -- sleep` holding the workspace lock; returns once the lock is taken."""
    proc = subprocess.Popen([*PHOENIX, "lock", "-w", str(workspace), "--", "sleep", str(seconds)],
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        if read_holder(workspace / LOCK).get("pid") == proc.pid:
            return proc
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the holder never took the lock")


def test_second_locker_is_refused_and_told_who_holds_it(tmp_path: Path) -> None:
    holder = _hold(tmp_path)
    try:
        result = run_phoenix(["lock", "-w", str(tmp_path), "--", "true"], cwd=tmp_path)
        assert result.returncode == 3
        err = result.stderr.decode()
        assert f"pid {holder.pid}" in err
        assert socket.gethostname() in err
        assert "phoenix lock -- sleep #" in err and "sleep 30" not in err  # program and digest, no arguments
    finally:
        holder.kill()
        holder.wait()


def test_killed_holder_frees_the_lock_at_once(tmp_path: Path) -> None:
    holder = _hold(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    result = run_phoenix(["lock", "-w", str(tmp_path), "--", "sh", "-c", "exit 7"], cwd=tmp_path)
    assert result.returncode == 7  # the command ran and its exit code came back


def test_the_command_holds_the_lock_while_it_lives(tmp_path: Path) -> None:
    # The command inherits the lock; kill it and the lock is free again (the kernel releases it).
    holder = _hold(tmp_path)
    try:
        result = run_phoenix(["lock", "-w", str(tmp_path), "--", "true"], cwd=tmp_path)
        assert result.returncode == 3
    finally:
        holder.kill()
        holder.wait()


def test_wait_takes_the_lock_when_the_holder_finishes(tmp_path: Path) -> None:
    holder = _hold(tmp_path, seconds=1)
    started = time.monotonic()
    result = run_phoenix(["lock", "--wait", "--timeout", "20", "-w", str(tmp_path), "--", "true"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 0.3
    holder.wait()


def test_wait_with_timeout_gives_up(tmp_path: Path) -> None:
    holder = _hold(tmp_path)
    try:
        result = run_phoenix(["lock", "--wait", "--timeout", "0.5", "-w", str(tmp_path), "--", "true"], cwd=tmp_path)
        assert result.returncode == 3
    finally:
        holder.kill()
        holder.wait()


def test_two_opens_in_one_process_exclude_each_other(tmp_path: Path) -> None:
    first = WorkspaceLock(tmp_path / "train.lock", command="first")
    first.acquire()
    try:
        with pytest.raises(LockHeld) as info:
            WorkspaceLock(tmp_path / "train.lock", command="second").acquire()
        assert info.value.holder["command"] == "first"
    finally:
        first.release()
    assert read_holder(tmp_path / "train.lock") == {}  # released lock carries no stale record


def test_missing_command_is_a_usage_error(tmp_path: Path) -> None:
    result = run_phoenix(["lock", "-w", str(tmp_path)], cwd=tmp_path)
    assert result.returncode == 2
    assert b"needs a command" in result.stderr


# -- pid-file fallback: a file system without flock ---------------------------------------------

def _no_flock(fd: int, op: int) -> None:
    raise OSError(errno.ENOLCK, "No locks available")


def _write_pidfile(path: Path, **record: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_pidfile_fallback_excludes_a_live_holder(tmp_path: Path) -> None:
    first = WorkspaceLock(tmp_path / "train.lock", flock=_no_flock, command="first")
    first.acquire()
    assert first.pidfile_path.exists()
    with pytest.raises(LockHeld):
        WorkspaceLock(tmp_path / "train.lock", flock=_no_flock, stale_seconds=0.001).acquire()
    first.release()
    assert not first.pidfile_path.exists()


def test_pidfile_of_a_dead_holder_is_taken_over_only_when_stale(tmp_path: Path) -> None:
    lock = WorkspaceLock(tmp_path / "train.lock", flock=_no_flock, stale_seconds=3600)
    _write_pidfile(lock.pidfile_path, pid=_dead_pid(), host=socket.gethostname())
    with pytest.raises(LockHeld):
        lock.acquire()  # dead, but not old enough
    old = time.time() - 7200
    os.utime(lock.pidfile_path, (old, old))
    lock.acquire()
    assert json.loads(lock.pidfile_path.read_text())["pid"] == os.getpid()
    lock.release()


def test_pidfile_stale_zero_never_takes_over(tmp_path: Path) -> None:
    lock = WorkspaceLock(tmp_path / "train.lock", flock=_no_flock, stale_seconds=0)
    _write_pidfile(lock.pidfile_path, pid=_dead_pid(), host=socket.gethostname())
    old = time.time() - 10 ** 6
    os.utime(lock.pidfile_path, (old, old))
    with pytest.raises(LockHeld):
        lock.acquire()


def test_holder_from_another_host_is_never_presumed_dead() -> None:
    assert not holder_is_dead({"pid": _dead_pid(), "host": "some-other-container"})


def test_recycled_pid_counts_as_dead() -> None:
    # Our own pid is alive, but a different start token means the recorded process is gone.
    assert holder_is_dead({"pid": os.getpid(), "host": socket.gethostname(), "start_token": "1"})
    me = WorkspaceLock("/nonexistent/lock").record()
    assert not holder_is_dead(me)
