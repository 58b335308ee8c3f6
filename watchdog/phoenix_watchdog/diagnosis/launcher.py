"""torchrun's failure summary: which rank failed first, and how.

When a worker dies, torchrun (``torch.distributed.run``) raises ``ChildFailedError`` and prints::

    Root Cause (first observed failure):
    [0]:
      time      : 2026-11-24_18:35:32
      host      : node-a17
      rank      : 1 (local_rank: 1)
      exitcode  : -6 (pid: 16247)  (SIGABRT)
      error_file: <N/A>
      traceback : Signal 6 (SIGABRT) received by PID 16247

With ``@record`` on the worker's entry point the ``traceback`` field holds the worker's own
traceback instead. The root cause rank is the one whose error explains the run; the other ranks
were killed by the agent (SIGTERM) or failed because their peer was gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from phoenix_watchdog.diagnosis.failure import signal_name
from phoenix_watchdog.diagnosis.logtext import LogLine
from phoenix_watchdog.diagnosis.pytrace import PyError, parse_embedded

ROOT_CAUSE = "Root Cause (first observed failure):"
_FIELD = re.compile(r"^\s*(?P<key>time|host|rank|exitcode|error_file|traceback)\s*:\s?(?P<value>.*)$")
_RANK = re.compile(r"^(?P<rank>-?\d+)(?: \(local_rank: (?P<local>\d+)\))?")
_EXITCODE = re.compile(r"^(?P<code>-?\d+)")
MAX_BLOCK_LINES = 200


@dataclass(frozen=True)
class RootCause:
    """The first failed worker, as torchrun reported it."""

    rank: int | None
    local_rank: int | None
    exitcode: int | None
    traceback: PyError | None  # the worker's own traceback (only with @record / an error file)
    pos: int                   # position of the "Root Cause" header in the cleaned log
    lines: tuple[str, ...]     # the block's field lines, for evidence

    @property
    def streams(self) -> frozenset[str]:
        """The stream keys (see `logtext`) that this rank's own output carries."""
        keys = set()
        if self.rank is not None:
            keys.add(f"rank{self.rank}")
        if self.local_rank is not None:
            keys.add(f"local{self.local_rank}")
        return frozenset(keys)

    @property
    def signal(self) -> int | None:
        return -self.exitcode if self.exitcode is not None and self.exitcode < 0 else None

    def describe(self) -> str:
        """``rank 1 (local_rank 1) exitcode -11 (SIGSEGV)``"""
        who = f"rank {self.rank}" if self.rank is not None else "a worker"
        if self.local_rank is not None:
            who += f" (local_rank {self.local_rank})"
        how = f"exitcode {self.exitcode}" if self.exitcode is not None else "failed"
        if self.signal is not None:
            how += f" ({signal_name(self.signal)})"
        return f"{who} {how}"


def find_root_cause(lines: list[LogLine]) -> RootCause | None:
    """The last torchrun root-cause block in the log, if any."""
    start = None
    for ln in reversed(lines):
        if ln.text.strip() == ROOT_CAUSE:
            start = ln.pos
            break
    if start is None:
        return None
    rank = local = code = None
    tb_lines: list[str] = []
    shown: list[str] = []
    in_tb = False
    for ln in lines[start + 1:start + 1 + MAX_BLOCK_LINES]:
        text = ln.text
        if text.startswith(("====", "----")):
            break
        m = _FIELD.match(text) if not in_tb else None
        if m:
            key, value = m["key"], m["value"].strip()
            shown.append(f"{key}: {value}")
            if key == "rank" and (r := _RANK.match(value)):
                rank = int(r["rank"])
                local = int(r["local"]) if r["local"] is not None else None
            elif key == "exitcode" and (c := _EXITCODE.match(value)):
                code = int(c["code"])
            elif key == "traceback" and value.startswith("Traceback (most recent call last):"):
                in_tb = True
                tb_lines.append("Traceback (most recent call last):")
            continue
        if in_tb:
            tb_lines.append(text[2:] if text.startswith("  ") else text)
    error = parse_embedded(tb_lines) if tb_lines else None
    return RootCause(rank, local, code, error, start, tuple(shown))
