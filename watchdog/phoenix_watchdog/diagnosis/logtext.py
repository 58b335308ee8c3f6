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
_KEY_KINDS = ("", "rank", "local", "")  # stream key kinds: 1 rank, 2 local rank, 3 host:rank
_STREAM_KEYS: tuple[dict[str, str], ...] = ({}, {}, {}, {})  # "3" -> "rank3": lines name the same few ranks
# Folds every ASCII digit to 9 in UTF-8 bytes (no multi-byte character holds a byte below 0x80).
_FOLD = bytes.maketrans(b"0123456789", b"9999999999")
_NEW = tuple.__new__  # LogLine(...) runs a Python-level __new__; this is the same tuple, built in C


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
    end, kind, start, stop = _scan_prefixes(line)
    return line[end:], (_stream_of(kind, line[start:stop]) if kind else None)


def _scan_prefixes(line: str) -> tuple[int, int, int, int]:
    """How many leading characters are prefixes, and which kind of stream key (`_KEY_KINDS`; 0:
    none) the outermost keyed one names at which span. Only spans, no key text: `split_log` reuses
    the answer for lines that differ only in digits, which no prefix regex reads as anything but a
    digit (`_FOLD`), and takes the key from each line's own digits."""
    kind = start = stop = 0
    off = 0
    for _ in range(4):
        if not line:
            break
        first = line[0]
        if first == "[" and line.startswith("[rank"):  # by far the most common prefix: no regex
            close = line.find("]", 5, 12)
            if close > 5 and line[5:close].isdigit():
                if not kind:
                    kind, start, stop = 1, off + 5, off + close
                cut = close + 1
                cut += line.startswith(":", cut)
                cut += line.startswith(" ", cut)
                line = line[cut:]
                off += cut
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
        if not kind:
            kind, start, stop = _stream_span(m)
            start += off
            stop += off
        line = line[m.end():]
        off += m.end()
    return off, kind, start, stop


def _stream_span(m: re.Match[str]) -> tuple[int, int, int]:
    """The kind of stream key a prefix match names (0: none) and the span it is read from."""
    for group, kind in (("rank", 1), ("local", 2), ("mpi", 1), ("task", 1)):
        if m.re.groupindex.get(group) and m[group] is not None:
            return kind, m.start(group), m.end(group)
    if m.re.groupindex.get("host") and m["host"] is not None:
        return 3, m.start("host"), m.end("hrank")
    return 0, 0, 0


def _stream_of(kind: int, text: str) -> str:
    """The stream key of a span `_scan_prefixes` found: ``rank3``, ``local0``, ``node-a:2``."""
    keys = _STREAM_KEYS[kind]
    key = keys.get(text)
    if key is None:
        if kind == 3:
            host, _, rank = text.rpartition(":")
            key = f"{host}:{int(rank)}"
        else:
            key = f"{_KEY_KINDS[kind]}{int(text)}"
        if len(keys) > 4096:  # a long-lived supervisor: hosts and ranks are few, but stay bounded
            keys.clear()
        keys[text] = key
    return key


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


def _shape(fold: str) -> tuple[int, int, int, int, int]:
    """`_scan_prefixes` of a digit-folded line, and where its text ends once rstripped when none of
    `split_log`'s other steps can apply to it (-1 when one may: a redrawn or boxed line, a glued
    bar, a crash header). Asked of the folded line, the header test looks for "thread 9x" (every
    "thread 0x" folds to it): a line it flags is simply taken the long way."""
    end, kind, start, stop = _scan_prefixes(fold)
    line = fold[end:].rstrip()
    other = (line[:1] in _REDRAWN or "/s]" in line or "/it]" in line or "Traceback (" in line
             or "Fatal Python" in line or "thread 9x" in line or "terminate called" in line)
    return end, kind, start, stop, -1 if other else end + len(line)


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
    # What no line can hold is ruled out once for the whole text, not asked of every line; a few
    # long lines (tqdm's carriage returns) are cheaper to ask one by one.
    each = len(raws) < 1000
    overwritten = each or "\r" in text
    too_long = each or max(map(len, raws), default=0) > MAX_LINE_CHARS
    glued = each or "/s]" in text or "/it]" in text
    headers = each or any(g in text for g in ("Traceback (", "Fatal Python", "thread 0x", "terminate called"))
    # The lines with every digit folded to 9, in step with ``raws``, for `_scan_prefixes`.
    folds = text.encode("utf-8", "surrogatepass").translate(_FOLD).decode("utf-8", "surrogatepass").split("\n") \
        if tail_from else raws
    scans: dict[str, tuple[int, int, int, int]] = {}
    out: list[LogLine] = []
    append = out.append
    for i, raw in enumerate(raws):
        if i >= tail_from:
            line, key = tail[i - tail_from]
        elif not raw:
            line, key = raw, None
        elif (overwritten and "\r" in raw) or (too_long and len(raw) > MAX_LINE_CHARS):
            line, key = _strip_known(raw)
        else:  # lines that differ only in digits have the same prefixes: each shape is scanned once
            scan = scans.get(folds[i])
            if scan is None:
                scan = scans[folds[i]] = _shape(folds[i])
            end, kind, start, stop, cut = scan
            key = (_STREAM_KEYS[kind].get(raw[start:stop]) or _stream_of(kind, raw[start:stop])) if kind else None
            if cut >= 0 and prefix is None:  # nothing below applies: the line is its own text, rstripped
                append(_NEW(LogLine, (len(out), raw[end:cut], key)))
                continue
            line = raw[end:] if end else raw
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
        if glued and ("/s]" in line or "/it]" in line) and _BAR_END.search(line):
            for part in _split_glued(line):
                for piece in _unglue(part):
                    append(_NEW(LogLine, (len(out), piece, key)))
        elif headers and ("Traceback (" in line or "Fatal Python" in line or "thread 0x" in line
                          or "terminate called" in line):
            for part in _unglue(line):
                append(_NEW(LogLine, (len(out), part, key)))
        else:
            append(_NEW(LogLine, (len(out), line, key)))
    if out and not out[-1].text:
        out.pop()
    return out
