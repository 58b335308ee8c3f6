"""The run log with the session's redactor: secrets out of output and events, even when a read
splits a secret in two, with output and events kept in order and the files private."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from phoenix_sidecar.observe.runlog import RunLog
from phoenix_sidecar.redact import MASK, Redactor

TOKEN = "hf_abcdefghijklmnopqrstuvwxyz0123"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_secret_split_across_two_reads_is_still_redacted_and_order_is_kept(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "run.log", max_bytes=0, backups=0, scrub=Redactor(["s3cretvalue!"]).text)
    log.output("stdout", b"step 1 loss 2.3\nlogin with " + TOKEN[:10].encode())
    log.output("stdout", TOKEN[10:].encode() + b" and s3cretv")
    log.output("stdout", b"alue! done\npartial")
    log.event("incident_opened", summary=f"ValueError: bad token {TOKEN}")
    log.output("stdout", b" line\n")
    log.close()
    records = _records(tmp_path / "run.log")
    text = json.dumps(records)
    assert TOKEN not in text and "s3cretvalue!" not in text and MASK in text
    kinds = [r.get("event") or r["stream"] for r in records]
    assert kinds.index("incident_opened") > 0  # the output before the event is recorded before it
    out = "".join(r["data"] for r in records if r.get("stream") == "stdout")
    assert out == f"step 1 loss 2.3\nlogin with {MASK} and {MASK} done\npartial line\n"
    assert stat.S_IMODE((tmp_path / "run.log").stat().st_mode) == 0o600


def test_without_a_scrub_every_chunk_is_recorded_as_read(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "run.log", max_bytes=0, backups=0)
    log.output("stdout", b"no newline")
    log.close()
    assert [r["data"] for r in _records(tmp_path / "run.log")] == ["no newline"]
