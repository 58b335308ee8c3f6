"""`phoenix run` and its metrics endpoint, as a user starts it."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from testkit import run_phoenix


def test_a_busy_metrics_port_stops_phoenix_before_the_job_starts(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_phoenix(["run", "--no-repair", "--set", f"metrics_addr=127.0.0.1:{port}", "--",
                              sys.executable, "-c", f"open({str(marker)!r}, 'w')"], cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"metrics_addr: cannot serve metrics on 127.0.0.1:{port}" in result.stderr.decode()
    assert not marker.exists(), "the job must not start without the metrics the operator asked for"


def test_metrics_off_still_runs_the_job(tmp_path: Path) -> None:
    result = run_phoenix(["run", "--no-repair", "--set", "metrics_addr=", "--", sys.executable, "-c", "print('done')"],
                         cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"done\n"
