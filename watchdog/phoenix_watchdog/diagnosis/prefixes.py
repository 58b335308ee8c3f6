"""Repeated per-line prefixes found by their shape, whatever wrote them, and removed in one pass.

Every layer between a training process and its log file may put something in front of each line:
a logger (``2026-01-01 12:00:00,123 ERROR``, ``[ERROR]``, loguru's ``... | ERROR | mod:fn:3 - ``),
a container runtime (Docker's and Kubernetes' timestamps, CRI's ``stderr F``), a launcher
(``[stderr]``, ``node-a17:``, ``[host:3]:``, srun's ``0:``). A fixed list of such prefixes is always
one short, so `find_prefix` looks for the *shape* many lines share instead: each line's head is cut
into decoration tokens (a timestamp, a bracketed word, a level name, a ``name:`` tag, a separator),
digits are folded, and a shape that opens at least `MIN_LINES` lines is a prefix. Host-like
``name:`` tags are ambiguous (``loss: 0.4`` looks the same), so a shape made with one only counts
when some line it opens starts a traceback.

The result is one regex; `strip_found` removes every match from the whole text in a single C-level
pass, so a megabyte of progress lines costs what one ``re.sub`` costs. Where the prefix names a
writer (a host, a ``[name:N]`` tag, a task number) it is kept as a marker that `logtext` turns
into the line's stream.
"""

from __future__ import annotations

import re
from collections import Counter

MIN_LINES = 3           # lines a shape must open to count as a prefix
SAMPLE_LINES = 600      # the shape is learnt from the last lines only: the tail is what matters
MAX_PREFIX_CHARS = 120
STREAM_MARK = "\x1e"    # the text of a stripped prefix's stream key sits between these two marks
STREAM_END = "\x1f"

_LEVELS = r"(?:DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|CRITICAL|FATAL|TRACE|SUCCESS|EXCEPTION)"
_TIME = (r"(?:\d{4}[-/]\d{2}[-/]\d{2}(?:[T _]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2}|\ ?UTC)?)?"
         r"|\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)")
# One decoration token and the spacing after it. Group names say the kind of token.
_TOKEN = re.compile(
    rf"""(?:
        (?P<time>{_TIME})(?![\w:])
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
_STRUCTURE = ("Traceback (", "  File \"", "File \"", "Exception in thread", "Fatal Python error")


def _tokens(line: str) -> list[tuple[str, str, str, str | None]]:
    """The decoration tokens at the head of ``line``: (kind, shape, regex, stream key) each."""
    out: list[tuple[str, str, str, str | None]] = []
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
        if kind == "sep" and not out:
            break
        text = m.group(kind)
        space = r"(?:\ +|\t)" if kind in ("level", "sep") or (m["space"] and len(m["space"]) > 1) else r"[\ \t]?"
        key: str | None = None
        if kind == "time":
            shape, rx = "T", _TIME
        elif kind == "level":
            shape, rx = "L", _LEVELS + r":?"
        elif kind == "stream":
            shape, rx = "S", r"(?:stdout|stderr)(?:\ [FP])?"
        elif kind == "num":
            shape, rx, key = "N:", r"\d{1,5}:", f"rank{int(text)}"
        elif kind == "field":
            shape, rx = "F", r"[\w.<>:-]{1,80}?(?=\ [-|]\ )"
        elif kind == "sep":
            shape, rx = text, re.escape(text)
        elif kind == "br":
            if _LEVEL_WORD.fullmatch(text) or _STREAM_WORD.fullmatch(text):
                shape = "[w]"
                rx = r"\[" + (_LEVELS if _LEVEL_WORD.fullmatch(text) else r"(?i:stdout|stderr|out|err)") + r"\]"
            else:
                shape = "[" + re.sub(r"\d+", "9", text) + "]"
                rx = r"\[" + _digits_free(text) + r"\]"
                if re.fullmatch(r"[A-Za-z][\w.-]*(?::\d+)?", text):
                    key = text
            rx += r"(?::(?!\S))?"
        else:  # host
            if not _hostlike(m["host"]):
                break
            literal = m.group(0).rstrip(" \t")
            shape = "H" + re.sub(r"\d+", "9", literal)
            rx = _digits_free(literal)
            key = literal[:-1]
        out.append((kind, shape, rx + space, key))
        pos = m.end()
        if not m["space"] and kind not in ("br",):
            break
    if out and out[-1][0] == "field":  # a field is decoration only with its separator after it
        out.pop()
    return out


def _digits_free(text: str) -> str:
    """A regex for ``text`` in which every run of digits may be any other number."""
    return r"\d+".join(re.escape(part) for part in re.split(r"\d+", text))


def _hostlike(name: str) -> bool:
    """A host or task tag, not an exception class or a word of prose (``ValueError``, ``Epoch``)."""
    if not name or name[0].isupper() and not any(c.isdigit() or c in "-." for c in name):
        return False
    return not name.endswith((".py", "Error", "Exception", "Warning"))


def find_prefix(lines: list[str]) -> re.Pattern[str] | None:
    """A MULTILINE regex matching the repeated prefixes of these lines, or None when there are none.

    Its named groups ``k0``, ``k1``... capture a prefix's stream key where it has one.
    """
    counts: Counter[str] = Counter()
    structural: set[str] = set()
    regex: dict[str, str] = {}
    keyed: dict[str, bool] = {}
    for line in lines[-SAMPLE_LINES:]:
        if not line or line[0] in " \t":
            continue
        toks = _tokens(line)
        if not toks:
            continue
        shape = " ".join(t[1] for t in toks)
        counts[shape] += 1
        if shape not in regex:
            regex[shape] = "".join(t[2] for t in toks)
            keyed[shape] = any(t[3] for t in toks)
        if shape not in structural and _opens_structure(line, toks):
            structural.add(shape)
    # A shape with a host-like tag counts only when it also opens a traceback (see the docstring).
    chosen = [s for s, n in counts.items()
              if n >= MIN_LINES and (s in structural or not any(p.startswith("H") for p in s.split(" ")))]
    if not chosen:
        return None
    chosen.sort(key=lambda s: -len(regex[s]))
    alts = []
    for i, s in enumerate(chosen):
        rx = regex[s]
        if keyed[s]:
            rx = f"(?P<k{i}>{rx})"
        alts.append(rx)
    return re.compile("^(?:" + "|".join(alts) + ")", re.MULTILINE | re.VERBOSE)


def _opens_structure(line: str, toks: list[tuple[str, str, str, str | None]]) -> bool:
    rest = re.match("".join(t[2] for t in toks), line, re.VERBOSE)
    tail = line[rest.end():] if rest else ""
    return tail.startswith(_STRUCTURE) or tail.lstrip().startswith("File \"")


def strip_found(text: str, pattern: re.Pattern[str]) -> str:
    """``text`` with every prefix ``pattern`` matches removed; keyed ones leave a stream marker."""
    if not any(name.startswith("k") for name in pattern.groupindex):
        return pattern.sub("", text)

    def repl(m: re.Match[str]) -> str:
        for name, value in m.groupdict().items():
            if value:
                key = _key_of(value)
                return f"{STREAM_MARK}{key}{STREAM_END}" if key else ""
        return ""

    return pattern.sub(repl, text)


def _key_of(prefix: str) -> str | None:
    for kind, _shape, _rx, key in _tokens(prefix):
        if key:
            return key
    return None
