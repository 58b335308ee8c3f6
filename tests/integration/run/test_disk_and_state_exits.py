"""Exit codes as documented, on real volumes: a read-only workspace (7), a disk below the minimum
before the first start (7, nothing started), a disk that fills during a repair (7, the attempt not
charged), and a lock holder that is always named (3)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kits.tmpfs import mount_tmpfs, unmount
from testkit import run_phoenix

BUG = 'raise ValueError("the learning rate is " + str(lr))'
FIX = 'print("fixed", flush=True)'


@pytest.fixture
def mounts():
    mounted: list[Path] = []

    def mount(target: Path, options: str) -> Path:
        mounted.append(mount_tmpfs(target, options))
        return target

    yield mount
    for target in reversed(mounted):
        unmount(target)


def test_a_read_only_workspace_without_state_folder_exits_7(tmp_path: Path, mounts) -> None:
    ws = mounts(tmp_path / "ro", "size=1m,ro")
    result = run_phoenix(["run", "-w", str(ws), "--", sys.executable, "-c", "print('ran')"], cwd=tmp_path)
    assert result.returncode == 7, result.stderr
    err = result.stderr.decode()
    assert "read-only" in err and ".phoenix_cli" in err and "Traceback" not in err
    assert b"ran" not in result.stdout


def test_a_disk_below_the_minimum_is_refused_before_the_first_start(tmp_path: Path, mounts) -> None:
    ws = mounts(tmp_path / "small", "size=1m")
    marker = tmp_path / "started"
    result = run_phoenix(["run", "-w", str(ws), "--set", "min_free_disk_gb=0.01", "--", sys.executable, "-c",
                          f"open({str(marker)!r}, 'w')"], cwd=tmp_path)
    assert result.returncode == 7, result.stderr
    assert b"min_free_disk_gb" in result.stderr and b"nothing was started" in result.stderr
    assert not marker.exists()


def _repair_run(ws: Path, standin: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return run_phoenix(["run", "--set", "backoff_initial_seconds=0.05", "--set", "primary=command",
                        "--set", f"llm_cmd={sys.executable} {standin}", "--set", "max_retries=1", *extra,
                        "--", sys.executable, "train.py"], cwd=ws, timeout=300)


def test_a_disk_that_fills_during_the_repair_does_not_spend_its_budget(tmp_path: Path, mounts) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "train.py").write_text(textwrap.dedent(f"""
        lr = 0.1
        {BUG}
    """))
    for args in (["init", "-q", "-b", "main"], ["add", "train.py"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "trainer"]):
        subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True)
    state_dir = mounts(ws / ".phoenix_cli", "size=256k")
    answer = json.dumps({"patches": [{"file_path": "train.py", "mode": "search_replace", "search": BUG,
                                      "replace": FIX}]})
    filler = state_dir / "filler"
    filling = tmp_path / "filling_llm.py"  # fills Phoenix's disk to the brim, then answers
    filling.write_text(textwrap.dedent(f"""
        import sys
        sys.stdin.read()
        with open({str(filler)!r}, "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\\0" * 4096)
            except OSError:
                pass
        print({answer!r})
    """))
    first = _repair_run(ws, filling)
    assert first.returncode == 7, first.stderr.decode()[-3000:]
    assert b"full disk" in first.stderr and b"not counted" in first.stderr
    state = json.loads((state_dir / "state.json").read_text())
    assert all(s["attempts"] == 0 for s in state["budgets"]["signatures"].values()), state["budgets"]

    filler.unlink()  # space again; with max_retries=1 a charged attempt would end this start with exit 4
    plain = tmp_path / "llm.py"
    plain.write_text(f"import sys; sys.stdin.read(); print({answer!r})\n")
    second = _repair_run(ws, plain)
    assert second.returncode == 0, second.stderr.decode()[-3000:]
    assert FIX in (ws / "train.py").read_text()


def test_the_holder_is_named_even_before_it_wrote_its_record(tmp_path: Path) -> None:
    # The instant between taking the flock and writing the record: the contender still names it.
    lock = tmp_path / ".phoenix_cli" / "train.lock"
    lock.parent.mkdir()
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_phoenix(["lock", "--", "true"], cwd=tmp_path)
        assert result.returncode == 3
        assert f"pid {os.getpid()}".encode() in result.stderr and b"holder unknown" not in result.stderr
    finally:
        os.close(fd)
