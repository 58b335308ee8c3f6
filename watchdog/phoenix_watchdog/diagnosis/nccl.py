"""NCCL evidence judged by block: a timeout or an error, and the most specific result code.

An NCCL failure prints a block, not a line: the watchdog's message, "Some NCCL operations have
failed or timed out", a C++ backtrace (``WorkNCCL::checkTimeout`` when the watchdog timed a
collective out), ``NCCL INFO ... -> N`` unwind lines, torch's "NCCL error in: ..." with the
result's text, and the code's name (``ncclSystemError``) a line later. A log excerpt keeps any
part of it, and each part alone says less than the block: the earliest line of the block is
often the vaguest. So every NCCL finding of one block (findings no more than `REACH` lines
apart) is re-judged from all the block's lines: a named result code makes it an ``nccl_error``
keyed on that code (a failed peer's ``ncclRemoteError`` only when no other code is named),
otherwise any timeout mark makes it an ``nccl_timeout``; with neither it stays as it was.
Cost: one pass over the lines near NCCL findings only.
"""

from __future__ import annotations

import dataclasses
import re

from phoenix_watchdog.diagnosis import classify as C
from phoenix_watchdog.diagnosis.logtext import LogLine
from phoenix_watchdog.diagnosis.markers import Finding

REACH = 40   # lines: a C++ backtrace of a c10 error is 20-30 frames
NCCL_CATEGORIES = ("nccl_error", "nccl_timeout")
_TIMEOUT = re.compile(r"WorkNCCL::checkTimeout|Watchdog caught collective operati|collective operation timeout"
                      r"|Some NCCL operations have failed or timed out")
_NEEDLES = ("ccl", "NCCL", "atchdog", "timed out")


def judge_blocks(findings: list[Finding], lines: list[LogLine]) -> list[Finding]:
    """``findings`` (markers, in log order) with each NCCL block's findings re-judged as one."""
    at = [i for i, f in enumerate(findings) if f.category in NCCL_CATEGORIES and f.pos < len(lines)]
    if not at:
        return findings
    out = list(findings)
    block = [at[0]]
    for i in at[1:]:
        if findings[i].pos - findings[block[-1]].pos > REACH:
            _rejudge(out, block, lines)
            block = []
        block.append(i)
    _rejudge(out, block, lines)
    return out


def _rejudge(out: list[Finding], block: list[int], lines: list[LogLine]) -> None:
    lo = max(0, out[block[0]].pos - REACH)
    hi = min(len(lines), out[block[-1]].pos + REACH + 1)
    codes: list[str] = []
    timeout = False
    for ln in lines[lo:hi]:
        text = ln.text
        if not any(n in text for n in _NEEDLES):
            continue
        if "ccl" in text or "NCCL" in text:
            key = C.nccl_key(text)
            if key.startswith("nccl") and key not in ("nccl", "ncclInProgress"):
                codes.append(key)
        timeout = timeout or _TIMEOUT.search(text) is not None
    specific = [k for k in codes if k != "ncclRemoteError"]
    if codes:
        verdict = ("nccl_error", C.NCCL, (specific or codes)[0])
    elif timeout:
        verdict = ("nccl_timeout", C.NCCL_TIMEOUT, "nccl_timeout")
    else:
        return
    category, strength, key = verdict
    for i in block:
        f = out[i]
        out[i] = dataclasses.replace(f, category=category, strength=strength, key=key,
                                     rule=f"{f.rule}; NCCL block judged as a whole ({key})")
