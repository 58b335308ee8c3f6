"""A real Prometheus for the tests: started on 127.0.0.1 with Phoenix's shipped rules, queried, stopped.

Used by the observe integration tests that prove what Prometheus really sees of Phoenix (series,
alerts, the end of a job). Skips the calling test when no ``prometheus`` binary is installed; the
test command installs it, and a strict run fails such a skip.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from kits.waiting import HANG_GUARD

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "rules" / "phoenix.rules.yml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=HANG_GUARD) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]


def query(base: str, expr: str) -> list[dict]:
    return api(base, "/api/v1/query", query=expr)["result"]


def eventually(check: Callable[[], Any], what: str, guard: float = HANG_GUARD) -> Any:
    """Poll ``check`` until it holds; the guard only keeps a broken run from hanging the suite."""
    deadline = time.monotonic() + guard
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (OSError, AssertionError, KeyError, IndexError, ValueError) as exc:
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"hang guard: {what} not seen within {guard:g} s (last: {last!r})")


@contextmanager
def running_prometheus(folder: Path, target: str) -> Iterator[str]:
    """A Prometheus scraping ``target`` every second with the shipped rules; yields its base URL."""
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.skip("prometheus not found: `apt-get install -y prometheus` (scripts/test.sh does)")
    port = free_port()
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(RULES)],
              "scrape_configs": [{"job_name": "phoenix", "static_configs": [{"targets": [target]}]}]}
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (folder / "prometheus.log").open("wb")
    proc = subprocess.Popen([exe, f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=1).status == 200, "prometheus ready")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(HANG_GUARD)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
