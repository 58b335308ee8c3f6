"""`phoenix run`'s output tail, the diagnosis's input, through the real CLI: it starts on a whole line."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

from testkit import run_phoenix

# 4000 lines of 97 bytes (388 kB, more than the 256 KiB tail), written in 4000-byte blocks with a
# pause between them so the runtime reads them one by one: no block boundary falls on a line boundary.
JOB = """
    import os, sys, time
    data = b"".join(f"line {i:06d} {'x' * 80} end\\n".encode() for i in range(4000))
    for at in range(0, len(data), 4000):
        os.write(1, data[at:at + 4000])
        time.sleep(0.002)
    sys.exit(3)
"""
LINE = re.compile(r"line (\d{6}) x{80} end")


def test_the_tail_of_a_long_output_starts_on_a_whole_line(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(textwrap.dedent(JOB))
    result = run_phoenix(["run", "--max-retries", "0", "--no-repair", "--", sys.executable, "job.py"],
                         cwd=tmp_path, timeout=120)
    assert result.returncode == 4, result.stderr
    tail = (tmp_path / ".phoenix_cli" / "incidents" / "1.log").read_text()  # the failed run's tail, as kept
    lines = tail.splitlines()
    assert LINE.fullmatch(lines[0]), lines[0][:120]  # not the end of a line cut in the middle
    numbers = [int(LINE.fullmatch(line)[1]) for line in lines]  # type: ignore[index]
    assert numbers == list(range(numbers[0], 4000))  # whole lines, in order, to the last one
    assert 200 * 1024 < len(tail.encode()) <= 256 * 1024  # bounded, and most of the bound used
