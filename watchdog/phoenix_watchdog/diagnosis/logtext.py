"""Turning a raw log tail into clean lines, each tagged with the stream (rank) that wrote it.

Training logs are written by several processes at once and decorated by every layer they pass:
ANSI colours, ``\\r``-overwritten progress bars, Docker timestamps, launcher prefixes
(``[rank3]:``, ``[default0]:``, srun's ``0: ``, ``host:2:``, mpirun's ``[1,3]<stderr>:``) and
glog headers (``[E321 02:07:08.408 ProcessGroupNCCL.cpp:607]``); any other prefix that many lines
share is learnt from its shape (`prefixes`). Tracebacks that rich draws in a box are redrawn as
CPython prints them, tracebacks kept in a JSON-lines record's field are written out, and messages
glued to a progress bar get their own line. `split_log` removes all of that
and keeps which rank wrote each line, so that interleaved tracebacks of several ranks can be read
apart. It is the first step of `diagnose` and runs on every line, so it does as little as it can.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from phoenix_watchdog.diagnosis.prefixes import SAMPLE_LINES, find_prefix

# Only the tail matters, and the work must stay bounded whatever the caller hands in: the last
# 512 KiB hold thousands of lines (64 ranks' NCCL watchdog reports fit), and reading them costs
# at most a few tens of milliseconds (bench/bench_diagnose.py).
MAX_CHARS = 512 * 1024
MAX_LINE_CHARS = 4000

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")

# Launcher and logger prefixes, by the first character of the line (trying only the forms that
# can start with it keeps the common case, a line with no prefix, to one failed match). Group
# "key" names the stream where the prefix identifies one. Layers nest ("[default1]:[rank1]: ...").
_BRACKET = re.compile(
    r"""\[(?:
        (?:rank|RANK)\s?(?P<rank>\d+)\]:?\s?                   # torch's [rank3]:
      | (?P<role>[A-Za-z_]\w*?)(?P<local>\d+)\]:\s?           # torchrun --tee: [default0]:
      | \d+,(?P<mpi>\d+)\]<std(?:out|err)>:\s?                 # mpirun --tag-output: [1,3]<stderr>:
      | [IWEF]\d{4}\ [\d:.]+\ (?:\d+\ )?[\w./-]+:\d+\]\s?     # glog: [E321 02:07:08.408 file.cpp:607]
    )""",
    re.VERBOSE,
)
_DIGIT = re.compile(
    r"""(?:\d{4}-\d{2}-\d{2}[T\ ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?[\ \t]  # timestamp: one
                                              # separator only, the line's own indentation follows
      | \ {0,3}(?P<task>\d{1,4}):\                                                     # srun --label
    )""",
    re.VERBOSE,
)
_LETTER = re.compile(
    r"""(?:[IWEF]\d{4}\ [\d:.]+\ \d+\ [\w./-]+:\d+\]\s?              # glog without bracket (torchrun)
      | (?P<host>[A-Za-z][\w.-]*?(?<!\.py)):(?P<hrank>\d{1,4}):\       # pdsh-style host:2:
    )""",
    re.VERBOSE,
)

# Where a line that was glued to a progress bar (no newline before it) really starts.
_GLUED = ("Traceback (most recent call last):", "Fatal Python error: ", "Current thread 0x",
          "terminate called after throwing")


# The end of a tqdm bar ("... 12.5it/s]") with the next message written right after it.
_BAR_END = re.compile(r"(?:it/s|s/it|B/s)\](?=\S)")
# rich draws a traceback in a box: its header, a frame's location and the failing source line.
_BOX_HEAD = re.compile(r"^╭─+ Traceback \(most recent call last\) ─+╮$")
_BOX_FRAME = re.compile(r"^│ (?P<file>[^│\s][^│]*?):(?P<line>\d+) in (?P<func>[^\s│]+)\s*│?$")
_BOX_CODE = re.compile(r"^│ ❱ *\d+ │(?P<code>.*?)\s*│?$")


_REDRAWN = frozenset("╭│╰>")  # first characters of lines drawn by rich or marked by loguru


class LogLine(NamedTuple):
    """One cleaned line. ``pos`` is its position in the cleaned log; ``stream`` the rank/task
    prefix that wrote it, None when unprefixed."""

    pos: int
    text: str
    stream: str | None


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text) if "\x1b" in text else text


def last_overwrite(line: str) -> str:
    """What a terminal shows for a line containing carriage returns: its last non-empty segment."""
    if "\r" not in line:
        return line
    for segment in reversed(line.split("\r")):
        if segment.strip():
            return segment
    return ""


def strip_prefixes(line: str) -> tuple[str, str | None]:
    """Remove launcher/logger prefixes; return the text and the stream key of the outermost one."""
    key: str | None = None
    for _ in range(4):
        if not line:
            break
        first = line[0]
        if first == "[" and line.startswith("[rank"):  # by far the most common prefix: no regex
            close = line.find("]", 5, 12)
            if close > 5 and line[5:close].isdigit():
                key = key or f"rank{int(line[5:close])}"
                line = line[close + 1:]
                line = line[1:] if line.startswith(":") else line
                line = line[1:] if line.startswith(" ") else line
                continue
        if first == "[":
            m = _BRACKET.match(line)
        elif first.isdigit() or (first == " " and line[:4].lstrip()[:1].isdigit()):
            m = _DIGIT.match(line)
        elif first.isalpha() and ":" in line[:64]:
            m = _LETTER.match(line)
        else:
            break
        if not m or m.end() == 0:
            break
        if key is None:
            key = _stream_key(m)
        line = line[m.end():]
    return line, key


def _stream_key(m: re.Match[str]) -> str | None:
    groups = m.groupdict()
    if groups.get("rank") is not None:
        return f"rank{int(groups['rank'])}"
    if groups.get("local") is not None:
        return f"local{int(groups['local'])}"
    if groups.get("mpi") is not None:
        return f"rank{int(groups['mpi'])}"
    if groups.get("task") is not None:
        return f"rank{int(groups['task'])}"
    if groups.get("host") is not None:
        return f"{groups['host']}:{int(groups['hrank'])}"
    return None


def _unglue(text: str) -> list[str]:
    """Split a line where a traceback or crash header was written right after a progress bar."""
    for marker in _GLUED:
        at = text.find(marker, 1)
        # "Original Traceback (...)" and "traceback : Traceback (...)" are part of a message.
        if at > 0 and not text[at - 1].isspace():
            return [text[:at], *_unglue(text[at:])]
    return [text]


def unbox(line: str) -> str | None:
    """A line of a rich traceback box as CPython would have printed it; None for box decoration."""
    if line.startswith("╭"):
        return "Traceback (most recent call last):" if _BOX_HEAD.match(line) else None
    if line.startswith("╰"):
        return None
    if m := _BOX_FRAME.match(line):
        return f'  File "{m["file"]}", line {m["line"]}, in {m["func"]}'
    if m := _BOX_CODE.match(line):
        return "    " + m["code"].strip()
    return None


_JSON_TRACEBACK = "Traceback (most recent call last):\\n"  # as a JSON string holds it: an escaped newline


def expand_json_tracebacks(text: str) -> str:
    """Write out the tracebacks that JSON-lines loggers keep in a field (``"exception": "Traceback
    ...\\n..."``) as the lines Python printed, right after their record; the rest is unchanged."""
    if _JSON_TRACEBACK not in text:  # one substring search: the common case costs nothing more
        return text
    out = []
    for line in text.split("\n"):
        out.append(line)
        start = line.find("{")
        if start < 0 or _JSON_TRACEBACK not in line:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record, dict):
            out += [ln for v in record.values() if isinstance(v, str) and v.startswith("Traceback (")
                    for ln in v.split("\n")]
    return "\n".join(out)


def _split_glued(text: str) -> list[str]:
    """Split where a message was written right after a progress bar, with no newline between."""
    parts = []
    while (m := _BAR_END.search(text)) is not None:
        parts.append(text[:m.end()])
        text = text[m.end():]
    return [*parts, text]


def _strip_known(raw: str) -> tuple[str, str | None]:
    """One raw line as a terminal shows it, cut to `MAX_LINE_CHARS`, without the known prefixes."""
    if "\r" in raw:
        raw = last_overwrite(raw)
    if len(raw) > MAX_LINE_CHARS:
        raw = raw[:MAX_LINE_CHARS]
    return strip_prefixes(raw) if raw else (raw, None)


def split_log(text: str) -> list[LogLine]:
    """Clean every line of a log tail (at most the last `MAX_CHARS` characters)."""
    if len(text) > MAX_CHARS:
        cut = text.find("\n", len(text) - MAX_CHARS)
        text = text[cut + 1:] if cut >= 0 else text[-MAX_CHARS:]
    text = expand_json_tracebacks(strip_ansi(text))
    raws = text.split("\n")
    # Prefixes no rule here knows are learnt from the shape the tail's lines share (`prefixes`),
    # once the known launcher prefixes are off; those tail lines are read once, here.
    tail_from = max(0, len(raws) - SAMPLE_LINES)
    tail = [_strip_known(raw) for raw in raws[tail_from:]]
    prefix = find_prefix([line for line, _ in tail if line])
    out: list[LogLine] = []
    for i, raw in enumerate(raws):
        if i >= tail_from:
            line, key = tail[i - tail_from]
        else:  # _strip_known, inlined: this loop runs for every line of a megabyte
            if "\r" in raw:
                raw = last_overwrite(raw)
            if len(raw) > MAX_LINE_CHARS:
                raw = raw[:MAX_LINE_CHARS]
            line, key = strip_prefixes(raw) if raw else (raw, None)
        if prefix is not None and line:
            line, found = prefix.strip(line)
            if line[:1] == "[":  # a host or a time outside, a rank prefix inside: "node-a: [rank3]: ..."
                line, inner = strip_prefixes(line)
                found = inner or found
            key = key or found
        line = line.rstrip()
        if line[:1] in _REDRAWN:
            if line[0] == ">":
                if line.startswith("> File \""):  # loguru marks the failing frame with "> "
                    line = "  " + line[2:]
            elif (line := unbox(line)) is None:  # type: ignore[assignment]
                continue
        if ("/s]" in line or "/it]" in line) and _BAR_END.search(line):
            for part in _split_glued(line):
                for piece in _unglue(part):
                    out.append(LogLine(len(out), piece, key))
        elif "Traceback (" in line or "Fatal Python" in line or "thread 0x" in line or "terminate called" in line:
            for part in _unglue(line):
                out.append(LogLine(len(out), part, key))
        else:
            out.append(LogLine(len(out), line, key))
    if out and not out[-1].text:
        out.pop()
    return out
