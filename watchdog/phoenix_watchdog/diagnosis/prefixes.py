"""Repeated per-line prefixes found by their shape, whatever wrote them, and removed in one pass.

Every layer between a training process and its log file may put something in front of each line:
a logger (``2026-01-01 12:00:00,123 ERROR``, ``[ERROR]``, loguru's ``... | ERROR | mod:fn:3 - ``),
a container runtime (Docker's and Kubernetes' timestamps, CRI's ``stderr F``), a launcher
(``[stderr]``, ``node-a17:``, ``[host:3]:``, srun's ``0:``). A fixed list of such prefixes is always
one short, so `find_prefix` looks for the *shape* many lines share instead: each line's head is cut
into decoration tokens (a timestamp, a bracketed word, a level name, a ``name:`` tag, a separator),
digits are folded, and a shape that opens at least `MIN_LINES` lines, one of them a traceback line,
is a prefix. The traceback condition keeps ambiguous tags out (``loss: 0.4`` looks like a host
tag) and spares the cost of stripping a logger's prefix, which only opens a record's first line
and never the traceback under it; a runtime's ``stdout``/``stderr`` tag is stripped regardless.

The result is one regex (`Prefix`), learnt from the tail's lines after the launcher prefixes
`logtext` knows were removed, and matched at the start of each such line: a log without a repeated
prefix pays only for the learning. Where the prefix names a writer (a host, a ``[name:N]`` tag, a
task number) it becomes the line's stream.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import NamedTuple

MIN_LINES = 3           # lines a shape must open to count as a prefix
SAMPLE_LINES = 200      # the shape is learnt from the last lines only: the tail is what matters
MAX_PREFIX_CHARS = 120

_LEVELS = r"(?:DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|CRITICAL|FATAL|TRACE|SUCCESS|EXCEPTION)"
_TIME = (r"(?:(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\ [\ \d]\d\ \d{2}:\d{2}:\d{2}"  # syslog
         r"|\d{4}[-/]\d{2}[-/]\d{2}(?:[T _]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2}|\ ?UTC)?)?"
         r"|\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)")
# One decoration token and the spacing after it. Group names say the kind of token.
_TOKEN = re.compile(
    rf"""(?:
        (?P<time>{_TIME})(?![\w:])
      | (?P<syslog>[\w.-]+\ [\w./-]+\[\d+\]):(?=\s)                # syslog/journal: host proc[pid]:
      | \((?P<paren>[A-Za-z][^()\n]{{0,80}})\)(?=\s)                  # ray: (RayTrainWorker pid=4411, ip=...)
      | \[(?P<br>[^\[\]\n]{{1,60}})\](?::(?!\S))?(?=[\s\[]|$)
      | (?P<level>{_LEVELS})\b:?
      | (?P<stream>(?:stdout|stderr)(?:\ [FP])?)\b
      | (?P<num>\d{{1,5}}):(?=\s)
      | (?P<host>[a-z][\w.-]{{0,62}}?|[\w.-]*\d[\w.-]*)(?::(?P<hnum>\d{{1,5}}))?:(?=\s)
      | (?P<field>[\w.<>:-]{{1,80}}?)(?=\ [-|]\ )
      | (?P<sep>[-|>])(?=\s)
    )(?P<space>\ +|\t)?""",
    re.VERBOSE,
)
_LEVEL_WORD = re.compile(rf"{_LEVELS}", re.I)
_STREAM_WORD = re.compile(r"(?:stdout|stderr|out|err)", re.I)
_DIGITS = re.compile(r"\d+")
_RANK_TAG = re.compile(r"^\[(?:rank|default)\d+\]:?")  # logtext reads these after the learnt prefix
_FOLD_DIGITS = str.maketrans("0123456789", "9999999999")
_WRITER = re.compile(r"[A-Za-z][\w.-]*\d[\w.-]*|[A-Za-z][\w.-]*:\d+")
_STRUCTURE = ("Traceback (", "File \"", "Exception in thread", "Fatal Python error")


class _Token(NamedTuple):
    kind: str          # time, level, stream, num, syslog, paren, field, sep, br, host
    shape: str         # what recurrences of it share (digits folded)
    text: str
    key: str | None    # the stream it names, if any
    wide: bool         # padded with several spaces (a level name in a fixed-width column)


def _tokens(line: str) -> list[_Token]:
    """The decoration tokens at the head of ``line``."""
    return _tokens_at(line)[0]


def _tokens_at(line: str) -> tuple[list[_Token], int]:
    """The decoration tokens at the head of ``line``, and where the text after them starts."""
    out: list[_Token] = []
    ends: list[int] = []
    pos = 0
    while pos < len(line) and pos < MAX_PREFIX_CHARS:
        if line.startswith("[rank", pos) or line.startswith("[default", pos):
            break  # logtext's own fast path reads these, stream and all
        m = _TOKEN.match(line, pos)
        if m is None or m.end() == pos:
            break
        kind = m.lastgroup if m.lastgroup != "space" else next(k for k, v in m.groupdict().items() if v and k != "space")
        if kind == "hnum":
            kind = "host"
        if kind == "field" and not out:
            break  # a free-form field only inside a prefix that already began
        text = m.group(kind)
        wide = bool(m["space"] and len(m["space"]) > 1)
        key: str | None = None
        if kind == "time":
            shape = "T"
        elif kind in ("level", "stream", "field"):
            shape = kind[0].upper()
        elif kind == "num":
            shape, key = "N:", f"rank{int(text)}"
        elif kind in ("syslog", "paren"):
            shape, key = kind[0].upper() + _DIGITS.sub("9", text), text
        elif kind == "sep":
            shape = text
        elif kind == "br":
            if _LEVEL_WORD.fullmatch(text):
                shape = "[L]"
            elif _STREAM_WORD.fullmatch(text):
                shape = "[S]"
            else:
                shape = "[" + _DIGITS.sub("9", text) + "]"
                if _WRITER.fullmatch(text):
                    key = text  # a writer: a host, a worker, a task number ([node-3], [host:2])
        else:  # host
            if not _hostlike(m["host"]):
                break
            text = m.group(0).rstrip(" \t")
            shape, key = "H" + _DIGITS.sub("9", text), text[:-1]
        out.append(_Token(kind, shape, text, key, wide))
        ends.append(m.end())
        pos = m.end()
        if not m["space"] and kind != "br":
            break
    if out and out[-1].kind == "field":  # a field is decoration only with its separator after it
        out.pop()
        ends.pop()
    if len(out) == 1 and out[0].kind == "sep":  # a lone dash or bar opens prose and lists, not prefixes
        return [], 0
    return out, (ends[-1] if ends else 0)


def _token_regex(t: _Token) -> str:
    """The regex that matches this token and its spacing in any line of the same log."""
    if t.kind == "time":
        rx = _digits_free(t.text)  # this log's own layout: far cheaper than _TIME
    elif t.kind == "level":
        rx = _LEVELS + r":?"
    elif t.kind == "stream":
        rx = r"(?:stdout|stderr)(?:\ [FP])?"
    elif t.kind == "num":
        rx = r"\d{1,5}:"
    elif t.kind == "syslog":
        rx = _digits_free(t.text) + ":"
    elif t.kind == "paren":
        rx = r"\(" + _digits_free(t.text) + r"\)"
    elif t.kind == "field":
        rx = r"[\w.<>:-]{1,80}?(?=\ [-|]\ )"
    elif t.kind == "sep":
        rx = re.escape(t.text)
    elif t.kind == "br":
        if _LEVEL_WORD.fullmatch(t.text):
            rx = r"\[" + _LEVELS + r"\]"
        elif _STREAM_WORD.fullmatch(t.text):
            rx = r"\[(?i:stdout|stderr|out|err)\]"
        else:
            rx = r"\[" + _digits_free(t.text) + r"\]"
        rx += r"(?::(?!\S))?"
    else:
        rx = _digits_free(t.text)
    # A separator owns one space: what follows is the line's own indentation (a traceback's source
    # lines are told from its frame lines by it). A level name may be padded to a width.
    space = r"(?:\ |\t)" if t.kind == "sep" else r"(?:\ +|\t)" if t.kind == "level" or t.wide else r"[\ \t]?"
    return rx + space


def _digits_free(text: str) -> str:
    """A regex for ``text`` in which every run of digits may be any other number."""
    return r"\d+".join(re.escape(part) for part in re.split(r"\d+", text))


def _hostlike(name: str) -> bool:
    """A host or task tag, not an exception class or a word of prose (``ValueError``, ``Epoch``)."""
    if not name or name[0].isupper() and not any(c.isdigit() or c in "-." for c in name):
        return False
    return not name.endswith((".py", "Error", "Exception", "Warning"))


def find_prefix(lines: list[str]) -> Prefix | None:
    """The repeated prefix of these lines (one or several shapes), or None when there is none."""
    counts: Counter[str] = Counter()
    structural: set[str] = set()
    regex: dict[str, str] = {}
    keyed: dict[str, bool] = {}
    seen: dict[str, tuple[str, int]] = {}  # a line's head, digits folded -> its shape and prefix end
    for line in lines[-SAMPLE_LINES:]:
        if not line or line[0] in " \t":
            continue
        head = line[:MAX_PREFIX_CHARS].translate(_FOLD_DIGITS)  # progress lines share one: tokenised once
        if head in seen:
            shape, end = seen[head]
        else:
            toks, end = _tokens_at(line)
            shape = " ".join(t.shape for t in toks)
            seen[head] = shape, end
            if toks and shape not in regex:
                regex[shape] = "".join(_token_regex(t) for t in toks)
                keyed[shape] = any(t.key for t in toks)
        if not shape:
            continue
        counts[shape] += 1
        if shape not in structural:
            rest = line[end:]
            if rest[:1] == "[":
                rest = _RANK_TAG.sub("", rest, 1)
            if rest.lstrip().startswith(_STRUCTURE):
                structural.add(shape)
    # Only a prefix that also opens traceback lines is worth stripping line by line (a logger's
    # prefix opens a record's first line only); a runtime's stdout/stderr tag is always stripped.
    chosen = [s for s, n in counts.items()
              if n >= MIN_LINES and (s in structural or any(p in ("S", "[S]") for p in s.split(" ")))]
    if not chosen:
        return None
    chosen.sort(key=lambda s: -len(regex[s]))
    pattern = re.compile("(?:" + "|".join(regex[s] for s in chosen) + ")", re.VERBOSE)
    return Prefix(pattern, any(keyed[s] for s in chosen))


class Prefix:
    """A learnt prefix: `strip` removes it from one line and says which stream it names, if any."""

    def __init__(self, pattern: re.Pattern[str], keyed: bool) -> None:
        self.pattern = pattern
        self.keyed = keyed
        self._keys: dict[str, str | None] = {}  # prefix text -> stream key (hosts repeat endlessly)

    def strip(self, line: str) -> tuple[str, str | None]:
        m = self.pattern.match(line)
        if m is None:
            return line, None
        if not self.keyed:
            return line[m.end():], None
        text = m.group(0)
        if text not in self._keys:
            self._keys[text] = _key_of(text)
        return line[m.end():], self._keys[text]


def _key_of(prefix: str) -> str | None:
    return next((t.key for t in _tokens(prefix) if t.key), None)
