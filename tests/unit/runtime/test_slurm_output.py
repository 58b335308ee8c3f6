"""`JobOutput`: per-task files are read from their start and labelled like srun --label would."""

from __future__ import annotations

from pathlib import Path

from phoenix_sidecar.runtime.slurm.output import JobOutput
from phoenix_watchdog.diagnosis.logtext import split_log
from phoenix_watchdog.heartbeat import Heartbeat


def test_per_task_files_become_labelled_lines_and_beat_the_heartbeat(tmp_path: Path) -> None:
    old = tmp_path / "out-7-0.log"
    old.write_text("an earlier run's line\n")  # already there when Phoenix begins: not this run's
    heard: list[tuple[str, bytes]] = []
    heartbeat = Heartbeat(60.0)
    out = JobOutput(heartbeat, [lambda stream, data: heard.append((stream, data))],
                    task_pattern=str(tmp_path / "out-%j-%t.log"), interval=3600)
    try:
        out.follow("7", [str(tmp_path / "slurm-7.out")])
        with old.open("a") as f:
            f.write("step 1\n")
        (tmp_path / "out-7-1.log").write_text("Traceback (most recent call last):\nNameError: x\npartial")
        (tmp_path / "slurm-7.out").write_text("batch line\n")
        out.drain()
        text = out.tail.text()
    finally:
        out.close()
    assert "earlier run" not in text
    assert "0: step 1\n" in text and "1: NameError: x\n" in text and "batch line\n" in text
    assert "partial" not in text  # a line is labelled once it is whole
    assert {ln.stream for ln in split_log(text) if "NameError" in ln.text} == {"rank1"}
    assert {s for s, _ in heard} == {"rank0", "rank1", "log"}
    assert heartbeat.seen_output
