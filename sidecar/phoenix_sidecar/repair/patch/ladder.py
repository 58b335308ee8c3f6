"""The comparison ladder: every place a run of old lines sits in a file, at the first rung that finds any.

Rungs, from strict to loose (`LEVELS`): exact; trailing whitespace ignored; typography (curly
quotes, dashes, odd spaces) and inner whitespace normalised; leading indentation ignored when the
whole block is shifted by one consistent amount (or tabs for spaces at one width); the same with
blank lines ignored; and, loosest, the same with ``'`` and ``"`` taken as one quote and spaces
around punctuation ignored (``f(a,b)`` for ``f(a, b)``): the slips small local models make when
they copy code, which change no token of the code. `ladder` stops at the first rung with a match;
more than one match there is the caller's ambiguity to refuse. `reindent` carries a matched block's shift over to new lines.
Pure; `locate` builds on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LEVELS = ("exact", "rstrip", "normalized", "indent", "blanks", "loose")

_TYPO = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u2009": " ", "\u200a": " ", "\u2002": " ", "\u2003": " ",
    "\u3000": " ",
})


_PUNCT_SPACE = re.compile(r"\s*([^\w\s])\s*")


@dataclass(frozen=True)
class Match:
    start: int
    end: int
    mapping: tuple[int | None, ...]  # file index of each old line (None: a blank the file lacks)
    shift: tuple[str, str] | None  # ("add" | "remove", whitespace) for a uniformly re-indented block


class Keys:
    """Comparison keys of a file's lines, per ladder rung, computed once."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self._cache: dict[str, list[str]] = {}

    def get(self, level: str) -> list[str]:
        if level not in self._cache:
            self._cache[level] = [key(line, level) for line in self.lines]
        return self._cache[level]


def key(line: str, level: str) -> str:
    if level == "exact":
        return line
    if level == "rstrip":
        return line.rstrip()
    text = line.translate(_TYPO)
    if level == "normalized":
        lead = text[: len(text) - len(text.lstrip())]
        return lead + " ".join(text.split())
    if level == "loose":
        return _PUNCT_SPACE.sub(r"\1", " ".join(text.split()).replace('"', "'"))
    return " ".join(text.split())


def quote_key(text: str) -> str:
    """``text`` with typography made plain and ``"`` read as ``'``: one character for one, so offsets hold."""
    return text.translate(_TYPO).replace('"', "'")


def _lead(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _shift(pairs: list[tuple[str, str]]) -> tuple[str, str] | None | bool:
    """The one indentation change turning every old line into its file line; False if there is none.

    Either a whitespace prefix added or removed on every line, or tabs for spaces (or the reverse)
    at one width throughout.
    """
    found: tuple[str, str] | None = None
    for old, actual in pairs:
        if not old.strip():
            continue
        lo, lf = _lead(old), _lead(actual)
        if lf.startswith(lo):
            delta = ("add", lf[len(lo):])
        elif lo.startswith(lf):
            delta = ("remove", lo[len(lf):])
        else:
            return _retab(pairs)
        if delta[1] == "":
            delta = ("add", "")
        if found is None:
            found = delta
        elif found != delta:
            return _retab(pairs)
    return None if found is None or found[1] == "" else found


def _retab(pairs: list[tuple[str, str]]) -> tuple[str, str] | bool:
    leads = [(_lead(o), _lead(a)) for o, a in pairs if o.strip()]
    for width in (4, 2, 8):
        if all(set(lo) <= {" "} and set(lf) <= {"\t"} and len(lo) == width * len(lf) for lo, lf in leads):
            return ("tabs", str(width))
        if all(set(lo) <= {"\t"} and set(lf) <= {" "} and len(lf) == width * len(lo) for lo, lf in leads):
            return ("spaces", str(width))
    return False


def find(keys: Keys, old: list[str], level: str) -> list[Match]:
    file_keys = keys.get(level)
    want = [key(line, level) for line in old]
    matches: list[Match] = []
    if level != "blanks":
        n = len(want)
        if n == 0:
            return []
        first = want[0]
        for i in range(len(file_keys) - n + 1):
            if file_keys[i] == first and file_keys[i:i + n] == want:
                matches.append(Match(i, i + n, tuple(range(i, i + n)), None))
    else:
        old_nb = [i for i, k in enumerate(want) if k]
        file_nb = [i for i, k in enumerate(file_keys) if k]
        if not old_nb:
            return []
        seq = [want[i] for i in old_nb]
        file_seq = [file_keys[i] for i in file_nb]
        n = len(seq)
        for j in range(len(file_seq) - n + 1):
            if file_seq[j] == seq[0] and file_seq[j:j + n] == seq:
                mapped = dict(zip(old_nb, file_nb[j:j + n]))
                mapping = tuple(mapped.get(i) for i in range(len(want)))
                matches.append(Match(file_nb[j], file_nb[j + n - 1] + 1, mapping, None))
    if level in ("indent", "blanks", "loose"):
        kept = []
        for m in matches:
            pairs = [(old[i], keys.lines[j]) for i, j in enumerate(m.mapping) if j is not None]
            shift = _shift(pairs)
            if shift is not False:
                kept.append(Match(m.start, m.end, m.mapping, shift))  # type: ignore[arg-type]
        matches = kept
    return matches


def ladder(keys: Keys, old: list[str], *, removes_blank: bool = False) -> list[Match]:
    """The matches on the first rung that has any (several means ambiguous)."""
    if not any(line.strip() for line in old):
        return []
    for level in LEVELS:
        if level == "blanks" and removes_blank:
            continue  # a removed blank line must be a real line of the file, not one skipped over
        found = find(keys, old, level)
        if found:
            return found
    return []


def reindent(line: str, shift: tuple[str, str] | None) -> str | None:
    """``line`` with the block's indentation change applied; None when it cannot be (inconsistent)."""
    if shift is None or not line.strip():
        return line
    mode, arg = shift
    lead = _lead(line)
    if mode == "add":
        return arg + line
    if mode == "remove":
        return line[len(arg):] if line.startswith(arg) else None
    width = int(arg)
    if mode == "tabs":
        if set(lead) <= {" "} and len(lead) % width == 0:
            return "\t" * (len(lead) // width) + line[len(lead):]
        return None
    if set(lead) <= {"\t"}:
        return " " * (len(lead) * width) + line[len(lead):]
    return None
