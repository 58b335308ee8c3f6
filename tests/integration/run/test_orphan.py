"""A job never runs unsupervised, and never twice: real `phoenix run`, real SIGKILL of Phoenix.

When Phoenix dies, its job's leader gets SIGTERM from the kernel (parent-death signal), and every
process of the job inherited the workspace lock, so the lock stays held until the last of them
exits: a second `phoenix run` (or `phoenix lock`) is refused and told which processes to look at.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from testkit import PHOENIX, clean_env, process_alive, run_phoenix

HANG_GUARD = 30.0  # seconds: a generous bound against hanging forever, not a timing target


def _wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not predicate():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def _pids(path: Path) -> list[int]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()] if text.endswith("\n") else []


def _start(workspace: Path, source: str) -> subprocess.Popen[bytes]:
    (workspace / "train.py").write_text(textwrap.dedent(source))
    return subprocess.Popen([*PHOENIX, "run", "--no-repair", "--set", "kill_grace_seconds=1", "--", sys.executable,
                             "train.py", "--hf-token", "hf_notARealTokenButLongEnough123"],
                            cwd=workspace, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill9(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_killed_phoenix_takes_its_job_down_and_the_next_run_is_the_only_copy(tmp_path: Path) -> None:
    started = tmp_path / "started"
    first = _start(tmp_path, f"""
        import os, time
        with open({str(started)!r}, "a") as fh:
            fh.write(f"{{os.getpid()}}\\n")
        while True:
            time.sleep(0.1)
    """)
    _wait_for(lambda: len(_pids(started)) == 1, "the first run started")
    job = _pids(started)[0]
    _kill9(first)
    _wait_for(lambda: not process_alive(job), "the job got its parent-death signal")

    second = _start(tmp_path, (tmp_path / "train.py").read_text())
    try:
        _wait_for(lambda: len(_pids(started)) == 2, "the second run started")
        assert [p for p in _pids(started) if process_alive(p)] == [_pids(started)[1]]  # one copy only
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=HANG_GUARD)


def test_a_job_process_that_survives_phoenix_keeps_the_workspace_locked_and_is_named(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    first = _start(tmp_path, f"""
        import os, subprocess, sys, time
        stubborn = subprocess.Popen([sys.executable, "-c",
            "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
        with open({str(pids)!r}, "w") as fh:
            fh.write(f"{{os.getpid()}} {{stubborn.pid}}\\n")
        while True:
            time.sleep(0.1)
    """)
    _wait_for(lambda: len(_pids(pids)) == 2, "the job and its stubborn child started")
    leader, stubborn = _pids(pids)
    try:
        _kill9(first)
        _wait_for(lambda: not process_alive(leader), "the leader got its parent-death signal")
        assert process_alive(stubborn)  # it ignores SIGTERM: the job is not over

        again = run_phoenix(["run", "--no-repair", "--", sys.executable, "train.py"], cwd=tmp_path)
        assert again.returncode == 3, again.stderr
        err = again.stderr.decode()
        assert str(stubborn) in err and "still running" in err and "python" in err
        assert f"pid {first.pid}" in err  # the dead Phoenix is named too
        assert "hf_notARealToken" not in err
        assert _pids(pids) == [leader, stubborn]  # no second run started

        # `phoenix status` says no Phoenix supervises the workspace, and names what holds it.
        status = run_phoenix(["status"], cwd=tmp_path)
        out = status.stdout.decode()
        assert status.returncode == 0 and "NOT running" in out and str(stubborn) in out, out
        assert f"kill -TERM -- -{leader}" in out  # how to stop it: the job's process group
        check = run_phoenix(["status", "--check"], cwd=tmp_path)
        assert check.returncode == 1 and b"no Phoenix supervises" in check.stdout, check.stdout

        update = run_phoenix(["lock", "--", "true"], cwd=tmp_path)
        assert update.returncode == 3 and str(stubborn).encode() in update.stderr
        ran = tmp_path / "update-ran"
        waiter = subprocess.Popen([*PHOENIX, "lock", "--wait", "--", "touch", str(ran)], cwd=tmp_path,
                                  env=clean_env(), stderr=subprocess.PIPE)
        time.sleep(0.5)
        assert waiter.poll() is None and not ran.exists()  # it waits for the orphan, it does not run
    finally:
        os.kill(stubborn, signal.SIGKILL)
    _wait_for(lambda: not process_alive(stubborn), "the stubborn child died")
    # The last process of the job is gone: the waiting update runs.
    assert waiter.wait(timeout=HANG_GUARD) == 0, waiter.stderr.read()
    assert ran.exists()


def test_killed_phoenix_lock_takes_its_command_down(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    proc = subprocess.Popen([*PHOENIX, "lock", "-w", str(tmp_path), "--", "sh", "-c",
                             f"echo $$ > {marker}; exec sleep 30"], env=clean_env())
    _wait_for(lambda: len(_pids(marker)) == 1, "the command started")
    child = _pids(marker)[0]
    _kill9(proc)
    _wait_for(lambda: not process_alive(child), "the command got its parent-death signal")
    assert run_phoenix(["lock", "-w", str(tmp_path), "--", "true"], cwd=tmp_path).returncode == 0
