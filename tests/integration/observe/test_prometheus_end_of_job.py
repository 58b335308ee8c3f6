"""The end of a job as a real Prometheus sees it, with the shipped rules file unchanged.

A real `phoenix run` is scraped every second; the job waits until Prometheus has seen it, then
succeeds, or fails with a missing module (Phoenix gives up at once). Phoenix must serve that final
state before it exits (`metrics_linger_seconds`), so that afterwards PhoenixDown's expression is
empty for the finished Phoenix and PhoenixGaveUp fires for the one that gave up, although neither
can be scraped any more.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kits import prometheus as prom
from kits.prometheus import RULES, api, free_port, query, running_prometheus
from kits.waiting import HANG_GUARD
from testkit import PHOENIX, clean_env

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]
# The job waits for the test's go-ahead (Prometheus has scraped the running job), then ends.
JOB = "import os, time\nwhile not os.path.exists('go'): time.sleep(0.05)\n{end}\n"


def eventually(check: Callable[[], Any], what: str) -> Any:
    """As `kits.prometheus.eventually`, with a longer guard: a run here includes Phoenix's linger."""
    return prom.eventually(check, what, guard=3 * HANG_GUARD)


def rule_expr(name: str) -> str:
    [expr] = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if r.get("alert") == name]
    return expr


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A Prometheus scraping the (not yet started) Phoenix address; yields (prometheus, phoenix address)."""
    address = f"127.0.0.1:{free_port()}"
    with running_prometheus(tmp_path, address) as base:
        yield base, address


def run_to_the_end(tmp_path: Path, prometheus: str, address: str, end: str) -> tuple[int, str]:
    ws = tmp_path / "ws"
    ws.mkdir()
    err = tmp_path / "phoenix.err"
    proc = subprocess.Popen([*PHOENIX, "run", "--no-repair", "--set", f"metrics_addr={address}",
                             "--set", "gpu_poll_seconds=1", "--", sys.executable, "-c", JOB.format(end=end)],
                            cwd=ws, env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=err.open("wb"))
    try:
        eventually(lambda: query(prometheus, 'phoenix_job_state{state="running"} == 1'), "the running job scraped")
        (ws / "go").touch()
        code = proc.wait(3 * HANG_GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    eventually(lambda: query(prometheus, 'up{job="phoenix"} == 0'), "the finished Phoenix gone from Prometheus")
    return code, err.read_text()


def test_a_finished_job_does_not_page_phoenix_down(stack: tuple[str, str], tmp_path: Path) -> None:
    prometheus, address = stack
    code, err = run_to_the_end(tmp_path, prometheus, address, "print('done')")
    assert code == 0, err
    [last] = query(prometheus, 'last_over_time(phoenix_job_state{state="succeeded"}[1h])')
    assert last["value"][1] == "1"
    assert query(prometheus, rule_expr("PhoenixDown")) == [], "PhoenixDown would page a finished job"
    assert query(prometheus, 'up{job="phoenix"} == 0'), "the target really is down"


def test_a_give_up_fires_phoenix_gave_up_after_phoenix_exited(stack: tuple[str, str], tmp_path: Path) -> None:
    prometheus, address = stack
    code, err = run_to_the_end(tmp_path, prometheus, address, "import a_module_that_is_not_installed")
    assert code == 4, err

    def gave_up() -> list[dict]:
        return [a for a in api(prometheus, "/api/v1/alerts")["alerts"]
                if a["labels"]["alertname"] == "PhoenixGaveUp" and a["state"] == "firing"]

    [alert] = eventually(gave_up, "PhoenixGaveUp firing")
    assert alert["labels"]["instance"] == address
    assert alert["annotations"]["runbook_url"].endswith("observability.md#phoenixgaveup")
    assert query(prometheus, rule_expr("PhoenixDown")) == []


def test_a_give_up_before_the_first_scrape_still_reaches_prometheus(stack: tuple[str, str], tmp_path: Path) -> None:
    # The case: the job fails at import, Phoenix gives up at once, before Prometheus ever
    # scraped it. Served to other hosts (as in the stack, 0.0.0.0), Phoenix waits for that scrape.
    prometheus, address = stack
    port = address.rsplit(":", 1)[1]
    ws = tmp_path / "ws"
    ws.mkdir()
    result = subprocess.run([*PHOENIX, "run", "--no-repair", "--set", f"metrics_addr=0.0.0.0:{port}", "--",
                             sys.executable, "-c", "import a_module_that_is_not_installed"],
                            cwd=ws, env=clean_env(), stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=3 * HANG_GUARD)
    assert result.returncode == 4, result.stderr.decode()
    assert "serving the final state" in result.stderr.decode()

    def gave_up() -> list[dict]:
        return [a for a in api(prometheus, "/api/v1/alerts")["alerts"]
                if a["labels"]["alertname"] == "PhoenixGaveUp" and a["state"] == "firing"]

    eventually(gave_up, "PhoenixGaveUp firing")
    eventually(lambda: query(prometheus, 'up{job="phoenix"} == 0'), "the Phoenix gone from Prometheus")
    assert query(prometheus, rule_expr("PhoenixDown")) == []
