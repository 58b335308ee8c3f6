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
Cost: two regex passes over the lines near NCCL findings only.
"""

from __future__ import annotations

import re

from phoenix_watchdog.diagnosis import classify as C
from phoenix_watchdog.diagnosis.logtext import LogLine
from phoenix_watchdog.diagnosis.markers import Finding

REACH = 40   # lines: a C++ backtrace of a c10 error is 20-30 frames
NCCL_CATEGORIES = ("nccl_error", "nccl_timeout")
# Plain substrings and regexes that open with a literal: the joined block is searched at C speed
# (an alternation without a literal prefix costs ~10 ms on a 1 MB storm).
_TIMEOUT = ("WorkNCCL::checkTimeout", "Watchdog caught collective operati", "collective operation timeout",
            "Some NCCL operations have failed or timed out")
# A result code in any of its spellings: the name, the unwind chain's number, torch's text for it.
_NAMED = re.compile(r"ncclSystemError|ncclInternalError|ncclUnhandledCudaError|ncclInvalidArgument"
                    r"|ncclInvalidUsage|ncclRemoteError")
_UNWIND = re.compile(r"NCCL INFO \S+:\d+ -> ([1-6])\b")
_TEXT = re.compile(r"NCCL error\b[^\n]*?((?i:" + "|".join(w for w, _ in C.NCCL_RESULT_TEXTS) + "))")
_WORDS = {w: C.NCCL_RESULTS[n] for w, n in C.NCCL_RESULT_TEXTS}


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
    # One C-level pass per block over its lines joined (a storm of C++ frames is thousands of lines).
    text = "\n".join([ln.text for ln in lines[lo:hi]])
    found = [(m.start(), m[0]) for m in _NAMED.finditer(text)]
    found += [(m.start(), C.NCCL_RESULTS[int(m[1])]) for m in _UNWIND.finditer(text)]
    found += [(m.start(), _WORDS[m[1].lower()]) for m in _TEXT.finditer(text)]
    codes = [code for _, code in sorted(found)]
    timeout = any(t in text for t in _TIMEOUT)
    specific = [k for k in codes if k != "ncclRemoteError"]
    if codes:
        verdict = ("nccl_error", C.NCCL, (specific or codes)[0])
    elif timeout:
        verdict = ("nccl_timeout", C.NCCL_TIMEOUT, "nccl_timeout")
    else:
        return
    category, strength, key = verdict
    changed = {"category": category, "strength": strength, "key": key}
    why: dict[str, str] = {}  # a storm's block holds hundreds of findings from a few rules
    for i in block:
        f = out[i]
        if (rule := why.get(f.rule)) is None:
            rule = why[f.rule] = f"{f.rule}; NCCL block judged as a whole ({key})"
        # What `dataclasses.replace` gives, at a third of its cost (its per-field introspection and
        # the frozen __init__'s setattr calls): Finding is plain fields, with no __post_init__.
        g = object.__new__(Finding)
        g.__dict__.update(f.__dict__)
        g.__dict__.update(changed, rule=rule)
        out[i] = g

