"""`phoenix run` end to end, with real jobs: pass-through, hangs, crashes, budgets, lock, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testkit import PHOENIX, clean_env, process_alive, run_phoenix

FAST = ["--set", "backoff_initial_seconds=0.05", "--set", "backoff_max_seconds=0.2", "--set",
        "kill_grace_seconds=1", "--no-repair"]


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


def state(workspace: Path) -> dict:
    return json.loads((workspace / ".phoenix_cli" / "state.json").read_text())


def test_output_passes_through_byte_for_byte_and_exit_0_ends_phoenix(tmp_path: Path) -> None:
    payload_out = b"plain line\n\xff\xfe not utf-8 \x1b[31mred\x1b[0m\r\nno newline at end"
    payload_err = b"progress 1%\rprogress 100%\n"
    write(tmp_path / "job.py", f"""
        import os
        os.write(1, {payload_out!r})
        os.write(2, {payload_err!r})
    """)
    result = run_phoenix(["run", *FAST, "--", sys.executable, "job.py"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == payload_out  # Phoenix's own messages never touch stdout
    assert payload_err in result.stderr
    records = [json.loads(line) for line in (tmp_path / ".phoenix_cli" / "run.log").read_text().splitlines()]
    out = "".join(r["data"] for r in records if r.get("stream") == "stdout")
    assert out.encode("utf-8", "backslashreplace") == payload_out.decode("utf-8", "backslashreplace").encode(
        "utf-8", "backslashreplace")
    assert state(tmp_path)["job"]["state"] == "succeeded"


def test_hang_is_killed_with_its_whole_tree_and_a_stack_dump(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    write(tmp_path / "hang.py", f"""
        import multiprocessing, os, signal, subprocess, sys, time

        def worker():                      # a DataLoader-style worker in the job's group
            time.sleep(600)

        if __name__ == "__main__":
            w = multiprocessing.Process(target=worker); w.start()
            stubborn = subprocess.Popen([sys.executable, "-c",
                "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
            escaped = subprocess.Popen(["sleep", "600"], start_new_session=True)   # left the group
            open({str(pids)!r}, "w").write(f"{{w.pid}} {{stubborn.pid}} {{escaped.pid}}")
            print("training step 1", flush=True)
            def wait_forever():
                time.sleep(600)
            wait_forever()
    """)
    # The 60 s is a hang guard; how soon a hang is killed is bench/bench_run.py's (hang).
    result = run_phoenix(["run", *FAST, "--set", "heartbeat_min=0.03", "--set", "max_retries=0", "--",
                          sys.executable, "hang.py"], cwd=tmp_path, timeout=60)
    assert result.returncode == 4, result.stderr
    for pid in map(int, pids.read_text().split()):
        assert not process_alive(pid), f"process {pid} outlived the hung job"
    incident = state(tmp_path)["incidents"][-1]
    assert incident["kind"] == "hang"
    details = (tmp_path / incident["details"]).read_text()
    assert "stack dump" in details
    assert "wait_forever" in details  # py-spy says where it hung


def test_crash_is_restarted_with_backoff_until_the_budget_runs_out(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    write(tmp_path / "crash.py", f"""
        import os
        p = {str(counter)!r}
        n = int(open(p).read()) + 1 if os.path.exists(p) else 1
        open(p, "w").write(str(n))
        print(f"run {{n}} at step {{n * 1000}}", flush=True)
        os._exit(3)
    """)
    result = run_phoenix(["run", *FAST, "--set", "max_retries=2", "--", sys.executable, "crash.py"], cwd=tmp_path)
    assert result.returncode == 4
    assert counter.read_text() == "3"  # the first run and two restarts
    err = result.stderr.decode()
    assert "phoenix gave up on the job: this failure has used all 2 attempts" in err
    assert "signature:" in err and "attempts:    2 of 2" in err and "--reset-budgets" in err
    incidents = state(tmp_path)["incidents"]
    assert [i["action"] for i in incidents] == ["restart", "restart", "stop"]
    assert len({i["signature"] for i in incidents}) == 1  # different step counts, one signature


def test_a_transient_failure_then_success_exits_0(tmp_path: Path) -> None:
    flag = tmp_path / "failed-once"
    write(tmp_path / "flaky.py", f"""
        import os, sys
        if not os.path.exists({str(flag)!r}):
            open({str(flag)!r}, "w").close()
            sys.exit(1)
        print("done")
    """)
    result = run_phoenix(["run", *FAST, "--", sys.executable, "flaky.py"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"done\n"
    assert state(tmp_path)["budgets"]["total_restarts"] == 1


def test_second_phoenix_on_the_same_workspace_is_refused_at_once(tmp_path: Path) -> None:
    write(tmp_path / "slow.py", "import time; print('up', flush=True); time.sleep(600)\n")
    first = subprocess.Popen([*PHOENIX, "run", *FAST, "--", sys.executable, "slow.py"], cwd=tmp_path,
                             env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert first.stdout is not None
        assert first.stdout.readline() == b"up\n"
        # A second that waited for the lock would wait for the 600 s job and hit run_phoenix's
        # 60 s hang guard; refused at once, it exits 3.
        second = run_phoenix(["run", *FAST, "--", sys.executable, "slow.py"], cwd=tmp_path)
        assert second.returncode == 3
        assert f"pid {first.pid}".encode() in second.stderr
        assert b"phoenix run -- " in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)


def test_sigterm_stops_the_job_and_exits_143(tmp_path: Path) -> None:
    child_pid = tmp_path / "child"
    write(tmp_path / "slow.py", f"""
        import os, time
        open({str(child_pid)!r}, "w").write(str(os.getpid()))
        print("up", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([*PHOENIX, "run", *FAST, "--", sys.executable, "slow.py"], cwd=tmp_path,
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert not process_alive(int(child_pid.read_text()))
    assert state(tmp_path)["job"]["state"] == "interrupted"


def test_budgets_survive_a_restart_of_phoenix_itself(tmp_path: Path) -> None:
    write(tmp_path / "crash.py", "raise SystemExit(5)\n")
    first = run_phoenix(["run", *FAST, "--set", "max_retries=1", "--", sys.executable, "crash.py"], cwd=tmp_path)
    assert first.returncode == 4
    # A new Phoenix must not grant the same failure fresh attempts...
    again = run_phoenix(["run", *FAST, "--set", "max_retries=1", "--", sys.executable, "crash.py"], cwd=tmp_path)
    assert again.returncode == 4
    assert len(state(tmp_path)["incidents"]) == 3  # first, its restart, and the refusal on the next start
    # ...until a human says the cause is fixed.
    fixed = run_phoenix(["run", *FAST, "--reset-budgets", "--set", "max_retries=1", "--",
                         sys.executable, "-c", "print('ok')"], cwd=tmp_path)
    assert fixed.returncode == 0


def test_a_stable_run_resets_the_backoff_and_the_attempts(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    write(tmp_path / "job.py", f"""
        import os, time
        p = {str(counter)!r}
        n = int(open(p).read()) + 1 if os.path.exists(p) else 1
        open(p, "w").write(str(n))
        time.sleep(0.6)            # each run is "stable" (stable_run_seconds=0.5)
        raise SystemExit(0 if n == 4 else 1)
    """)
    result = run_phoenix(["run", *FAST, "--set", "max_retries=1", "--set", "stable_run_seconds=0.5", "--",
                          sys.executable, "job.py"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert counter.read_text() == "4"


def test_missing_command_is_reported_with_exit_5(tmp_path: Path) -> None:
    result = run_phoenix(["run", *FAST, "--", "no-such-trainer-binary"], cwd=tmp_path)
    assert result.returncode == 5
    assert b"command not found: 'no-such-trainer-binary'" in result.stderr


def test_invalid_setting_starts_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = run_phoenix(["run", "--set", "heartbeat_min=soon", "--", "touch", str(marker)], cwd=tmp_path,
                         env={"PHOENIX_MAX_RETRIES": "3"})
    assert result.returncode == 2
    assert b"heartbeat_min (from flag --set heartbeat_min): expected a number >= 0" in result.stderr
    assert not marker.exists()
    assert not (tmp_path / ".phoenix_cli").exists()


def test_run_log_rotates_and_keeps_a_bounded_number_of_generations(tmp_path: Path) -> None:
    write(tmp_path / "chatty.py", "import sys\nfor i in range(4000): print('x' * 100, i)\n")
    result = run_phoenix(["run", *FAST, "--set", "log_max_bytes=20000", "--set", "log_backups=3", "--",
                          sys.executable, "chatty.py"], cwd=tmp_path)
    assert result.returncode == 0
    logs = sorted(p.name for p in (tmp_path / ".phoenix_cli").glob("run.log*"))
    assert logs == ["run.log", "run.log.1", "run.log.2", "run.log.3"]
    for name in logs:
        path = tmp_path / ".phoenix_cli" / name
        lines = path.read_text().splitlines()
        for line in lines:
            json.loads(line)  # every line of every generation is a whole record
        # A file stays under the limit unless one record (one read of the pipe) is larger by itself.
        assert path.stat().st_size <= 20000 or len(lines) == 1


def test_faulthandler_dump_when_py_spy_is_not_used(tmp_path: Path) -> None:
    write(tmp_path / "hang.py", """
        import faulthandler, signal, time
        faulthandler.register(signal.SIGUSR1)
        print("registered", flush=True)
        def stuck_in_collective():
            time.sleep(600)
        stuck_in_collective()
    """)
    result = run_phoenix(["run", *FAST, "--set", "heartbeat_min=0.02", "--set", "stack_dump=signal",
                          "--set", "max_retries=0", "--", sys.executable, "hang.py"], cwd=tmp_path)
    assert result.returncode == 4
    details = (tmp_path / state(tmp_path)["incidents"][-1]["details"]).read_text()
    assert "stuck_in_collective" in details.split("stack dump")[1]


@pytest.mark.parametrize("signum, expected", [(signal.SIGKILL, "killed by SIGKILL"),
                                              (signal.SIGSEGV, "killed by SIGSEGV")])
def test_death_by_signal_is_recorded(tmp_path: Path, signum: int, expected: str) -> None:
    write(tmp_path / "die.py", f"import os, signal\nos.kill(os.getpid(), {int(signum)})\n")
    result = run_phoenix(["run", *FAST, "--set", "max_retries=0", "--", sys.executable, "die.py"], cwd=tmp_path)
    assert result.returncode == 4
    assert state(tmp_path)["incidents"][-1]["exit"] == expected


def test_job_environment_is_unbuffered_so_heartbeats_are_not_held_back(tmp_path: Path) -> None:
    write(tmp_path / "env.py", "import os\nprint(os.environ.get('PYTHONUNBUFFERED'))\n")
    env = clean_env()
    del env["PYTHONUNBUFFERED"]
    result = subprocess.run([*PHOENIX, "run", *FAST, "--", sys.executable, "env.py"], cwd=tmp_path, env=env,
                            capture_output=True, timeout=60)
    assert result.stdout == b"1\n"
