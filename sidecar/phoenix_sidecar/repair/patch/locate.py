"""Finds where a block of old lines sits in a file, tolerating the ways LLMs misquote code, and never guesses.

A block is the old/new content of one hunk (or of a search/replace pair) as tagged lines: context
``" "``, removed ``"-"``, added ``"+"``. It is located by its content only; line numbers in a
header are never used. Matching climbs the `ladder` of ever looser comparisons (exact, trailing
whitespace, typography and inner whitespace, uniform indentation shift, blank lines ignored,
quote style and spaces around punctuation) and stops at the first rung with any match: one match is taken, several are rejected as ambiguous.
When no rung matches, it tries the block's likely intended form (viewer line numbers stripped,
new lines the model forgot to mark ``+``), then splits a hunk that jumps between regions, then drops context lines from the edges (the core
of the change must still match, uniquely) provided every context line it quoted is in the file
near that place: a context line that is not there means the hunk was written for another version
of the file, and it is refused (``context_mismatch``) rather than placed by its changed lines alone.
The located match becomes an `Edit` that keeps the file's own text for context lines. Pure.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from phoenix_sidecar.errors import AnswerRejected
from phoenix_sidecar.repair.outcomes import RejectReason
from phoenix_sidecar.repair.patch.ladder import Keys, Match, find, key, ladder, reindent
from phoenix_sidecar.repair.patch.lines import Edit, minimize

MIN_ANCHOR_CHARS = 6  # a trimmed block must keep this much non-blank text to be placed at all

_LINE_NUMBER = re.compile(r"^\s*(\d+)(?:\s*[:|]\s?|\t)")

Tagged = tuple[str, str]


@dataclass(frozen=True)
class Block:
    """Tagged lines of one hunk: ``(" ", ctx)``, ``("-", removed)``, ``("+", added)``."""

    lines: tuple[Tagged, ...]
    origin: str = ""

    @property
    def old(self) -> list[str]:
        return [t for tag, t in self.lines if tag != "+"]

    @property
    def new(self) -> list[str]:
        return [t for tag, t in self.lines if tag != "-"]

    @property
    def changes(self) -> bool:
        return any(tag != " " for tag, _ in self.lines)


def _transfer(lines: list[str], block: Block, m: Match) -> Edit | None:
    """The file region of ``m`` rewritten as the block says, keeping the file's own context text."""
    out: list[str] = []
    pos = m.start
    oi = 0
    prev_tag = ""
    for tag, text in block.lines:
        if tag == "+":
            added = reindent(text, m.shift)
            if added is None:
                return None
            out.append(added)
        else:
            j = m.mapping[oi]
            oi += 1
            if j is not None:
                gap = lines[pos:j]  # blank lines the block left out (blanks rung only)
                if not (tag == "-" and prev_tag == "-"):
                    out.extend(gap)
                if tag == " ":
                    out.append(lines[j])
                pos = j + 1
        prev_tag = tag
    return Edit(m.start, m.end, tuple(out), block.origin)


def _describe(lines: list[str], matches: list[Match]) -> str:
    where = ", ".join(str(m.start + 1) for m in matches[:4])
    more = "" if len(matches) <= 4 else f" and {len(matches) - 4} more"
    return f"lines {where}{more}"


def _hint(lines: list[str], block: Block) -> str:
    probe = next((t for tag, t in block.lines if tag == "-" and t.strip()), None)
    probe = probe or next((t for t in block.old if t.strip()), "")
    stripped = [line.strip() for line in lines]
    close = difflib.get_close_matches(probe.strip(), stripped, n=1, cutoff=0.6)
    if not close:
        return ""
    return f"; closest line in the file is {stripped.index(close[0]) + 1}: {close[0][:120]!r}"


class Locator:
    """Locates blocks in one file's lines (the file as it was before any edit of this answer)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self._keys = Keys(lines)

    def block(self, block: Block, *, trim: bool = True) -> list[Edit]:
        """The edits that carry out ``block``; [] when the file already has its result.

        Args:
            trim: the block is a diff hunk, whose context may be misquoted: it may be split, lose
                context at its edges, and have lines the model forgot to mark ``+`` recognised.
                Search texts (``trim=False``) must match whole.

        Raises:
            AnswerRejected: ``no_match`` (nowhere), ``ambiguous`` (more than one place).
        """
        if not block.changes:
            return []
        if not block.old:
            if not self.lines:  # an empty file: the only place there is
                return [Edit(0, 0, tuple(block.new), block.origin)]
            raise AnswerRejected(RejectReason.NO_MATCH, f"{_label(block)}adds lines without any context line to place them by")
        for variant in self._variants(block, hunk=trim):
            placed = self._place(variant)
            if placed is not None:
                return placed
        if self._already_applied(block):
            return []
        if trim:
            for variant in self._variants(block, hunk=True):
                runs = _split(variant)
                if len(runs) > 1:
                    try:
                        return [e for sub in runs for e in self.block(sub, trim=True)]
                    except AnswerRejected as exc:
                        if exc.reason == RejectReason.AMBIGUOUS:
                            raise
                        continue
                placed = self._trimmed(variant)
                if placed is not None:
                    self._check_context(variant, placed)
                    return placed
        raise AnswerRejected(RejectReason.NO_MATCH, f"{_label(block)}the lines to change were not found{_hint(self.lines, block)}")

    def _place(self, block: Block) -> list[Edit] | None:
        """The edit placing ``block`` ([] when its result is already there), or None when it fits nowhere."""
        removes_blank = any(tag == "-" and not t.strip() for tag, t in block.lines)
        matches = ladder(self._keys, block.old, removes_blank=removes_blank)
        if len(matches) > 1:
            raise AnswerRejected(RejectReason.AMBIGUOUS, f"{_label(block)}the lines to change occur at "
                                              f"{_describe(self.lines, matches)}; add context lines that "
                                              f"make the place unique")
        if not matches:
            return None
        m = matches[0]
        if not any(tag == "-" for tag, _ in block.lines) and self._insertion_present(block, m):
            return []
        transferred = _transfer(self.lines, block, m)
        if transferred is None:
            return None  # the block's own indentation is inconsistent: no safe placement
        edit = minimize(self.lines, transferred)
        return [] if edit is None else [edit]

    def _insertion_present(self, block: Block, m: Match) -> bool:
        for level in ("exact", "rstrip"):
            for found in find(self._keys, block.new, level):
                if found.start <= m.start and found.end >= m.end:
                    return True
        return False

    def _already_applied(self, block: Block) -> bool:
        """The block's result is in the file, to the letter (not modulo indentation: that may be the change)."""
        if block.old == block.new or not any(t.strip() for t in block.new):
            return False
        for level in ("exact", "rstrip"):
            found = find(self._keys, block.new, level)
            if found:
                return len(found) == 1
        return False

    def _variants(self, block: Block, *, hunk: bool) -> Iterator[Block]:
        yield block
        numbered = _strip_line_numbers(block)
        if numbered is not None:
            yield numbered
        if not hunk:
            return
        for base in (block, numbered):
            if base is not None:
                explicit = self._mark_new_lines(base)
                if explicit is not None:
                    yield explicit

    def _mark_new_lines(self, block: Block) -> Block | None:
        """Context lines that exist nowhere in the file are lines the model forgot to mark ``+``."""
        present = set(self._keys.get("loose"))
        changed = False
        out: list[Tagged] = []
        for tag, text in block.lines:
            if tag == " " and text.strip() and key(text, "loose") not in present:
                out.append(("+", text))
                changed = True
            else:
                out.append((tag, text))
        if not changed:
            return None
        new = Block(tuple(out), block.origin)
        before = sum(1 for t in block.old if t.strip())
        after = sum(1 for t in new.old if t.strip())
        # Aider's guard: most of what the model quoted must be real, or this is not what happened.
        if _substance(new.old) < MIN_ANCHOR_CHARS or after * 3 < before * 2:
            return None
        return new

    def _check_context(self, block: Block, placed: list[Edit]) -> None:
        """Every context line a trimmed hunk quoted must be in the file near where it was placed.

        A line missing from the middle of the context is a slip; a context line that is not there at
        all means the hunk was written for another version of the file, and placing it by its
        changed lines alone would be a guess.
        """
        if not placed:
            return
        span = len(block.lines) + 10
        lo = max(0, min(e.start for e in placed) - span)
        hi = min(len(self.lines), max(e.end for e in placed) + span)
        near = {key(line, "loose") for line in self.lines[lo:hi]}
        missing = [t for tag, t in block.lines if tag == " " and t.strip() and key(t, "loose") not in near]
        if missing:
            raise AnswerRejected(RejectReason.CONTEXT_MISMATCH,
                                 f"{_label(block)}context line {missing[0].strip()[:60]!r} is not in the file near "
                                 f"the change (the hunk was written for another version of it?); quote the lines "
                                 f"around the change exactly as shown")

    def _trimmed(self, block: Block) -> list[Edit] | None:
        """Place the block with context dropped from its edges, least dropped first; never two ways."""
        lines = list(block.lines)
        lead = next((i for i, (tag, _) in enumerate(lines) if tag != " "), len(lines))
        trail = next((i for i, (tag, _) in enumerate(reversed(lines)) if tag != " "), len(lines))
        pure_insert = not any(tag == "-" for tag, _ in lines)
        for total in range(1, lead + trail + 1):
            found: list[list[Edit]] = []
            for a in range(max(0, total - trail), min(lead, total) + 1):
                b = total - a
                sub = Block(tuple(lines[a:len(lines) - b]), block.origin)
                if pure_insert and not any(tag == " " and t.strip() for tag, t in sub.lines):
                    continue
                if _substance(sub.old) < MIN_ANCHOR_CHARS:
                    continue
                placed = self._place(sub)  # raises on ambiguity
                if placed is not None:
                    found.append(placed)
            if found:
                if any(f != found[0] for f in found):
                    raise AnswerRejected(RejectReason.AMBIGUOUS, f"{_label(block)}the change fits more than one place once "
                                                      f"its unmatched context is dropped")
                return found[0]
        return None


def _label(block: Block) -> str:
    return f"{block.origin}: " if block.origin else ""


def _substance(lines: list[str]) -> int:
    return sum(len("".join(line.split())) for line in lines)


def _split(block: Block) -> list[Block]:
    """One sub-block per run of changes, each with the context around it (Aider's sub-hunks)."""
    lines = block.lines
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(lines):
        if lines[i][0] != " ":
            j = i
            while j < len(lines) and lines[j][0] != " ":
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    if len(runs) < 2:
        return [block]
    subs = []
    for k, (s, e) in enumerate(runs):
        lo = runs[k - 1][1] if k > 0 else 0
        hi = runs[k + 1][0] if k + 1 < len(runs) else len(lines)
        subs.append(Block(tuple(lines[lo:hi]), block.origin))
    return subs


def _strip_line_numbers(block: Block) -> Block | None:
    """The block without line numbers copied from a numbered view (``12: code``, ``12\\tcode``)."""
    old = [t for tag, t in block.lines if tag != "+" and t.strip()]
    if not old or not all(_LINE_NUMBER.match(t) for t in old):
        return None
    numbers = [int(_LINE_NUMBER.match(t).group(1)) for t in old]  # type: ignore[union-attr]
    if any(b <= a for a, b in zip(numbers, numbers[1:])):
        return None
    out = []
    for tag, text in block.lines:
        m = _LINE_NUMBER.match(text)
        out.append((tag, text[m.end():] if m else text))
    return Block(tuple(out), block.origin)
