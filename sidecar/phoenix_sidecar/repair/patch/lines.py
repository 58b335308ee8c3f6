"""A text file as lines plus their own line endings, so an edit keeps CRLF, LF and the final newline.

Edits are expressed on line indexes of the ORIGINAL text (`Edit`) and applied together, bottom up,
after a check that none overlaps another. Pure, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from phoenix_sidecar.errors import AnswerRejected
from phoenix_sidecar.repair.outcomes import RejectReason

_EOL = re.compile(r"\r\n|\n|\r")


@dataclass(frozen=True)
class Edit:
    """Replace original lines ``[start, end)`` with ``new`` (line texts without endings)."""

    start: int
    end: int
    new: tuple[str, ...]
    origin: str = ""  # which patch or hunk, for messages


class SourceText:
    """Lines of a text and the ending of each (the last may have none)."""

    def __init__(self, lines: list[str], eols: list[str]) -> None:
        self.lines = lines
        self.eols = eols

    @classmethod
    def parse(cls, text: str) -> SourceText:
        lines: list[str] = []
        eols: list[str] = []
        pos = 0
        for m in _EOL.finditer(text):
            lines.append(text[pos:m.start()])
            eols.append(m.group())
            pos = m.end()
        if pos < len(text):
            lines.append(text[pos:])
            eols.append("")
        return cls(lines, eols)

    def render(self) -> str:
        return "".join(line + eol for line, eol in zip(self.lines, self.eols))

    @property
    def newline(self) -> str:
        """The dominant line ending, used for lines an edit adds."""
        crlf = sum(1 for e in self.eols if e == "\r\n")
        lf = sum(1 for e in self.eols if e == "\n")
        cr = sum(1 for e in self.eols if e == "\r")
        if crlf > lf and crlf >= cr:
            return "\r\n"
        if cr > lf and cr > crlf:
            return "\r"
        return "\n"

    @property
    def ends_with_newline(self) -> bool:
        return not self.eols or self.eols[-1] != ""

    def as_lf_text(self) -> str:
        """The text with every ending written as LF (for substring search)."""
        return "\n".join(self.lines) + ("\n" if self.lines and self.ends_with_newline else "")

    def apply(self, edits: list[Edit]) -> SourceText:
        """A new text with all ``edits`` applied; they must not overlap.

        Raises:
            AnswerRejected: two edits overlap (``overlap``).
        """
        ordered = sorted(enumerate(edits), key=lambda p: (p[1].start, p[1].end, p[0]))
        prev_end = -1
        prev: Edit | None = None
        for _, edit in ordered:
            if prev is not None and edit.start < prev_end:
                raise AnswerRejected(RejectReason.OVERLAP, f"two edits change the same lines ({_where(prev)} and "
                                                f"{_where(edit)})")
            prev_end = max(prev_end, edit.end)
            prev = edit
        nl = self.newline
        lines = list(self.lines)
        eols = list(self.eols)
        for _, edit in reversed(ordered):
            # Lines an edit keeps from the old region keep their own endings where they line up.
            old_eols = eols[edit.start:edit.end]
            new_eols = [old_eols[i] if i < len(old_eols) and old_eols[i] else nl for i in range(len(edit.new))]
            lines[edit.start:edit.end] = list(edit.new)
            eols[edit.start:edit.end] = new_eols
        # Every line but the last ends; the last keeps the original's final-newline state.
        for i in range(len(eols) - 1):
            if not eols[i]:
                eols[i] = nl
        if eols:
            eols[-1] = (eols[-1] or nl) if self.ends_with_newline else ""
        return SourceText(lines, eols)


def _where(edit: Edit) -> str:
    label = f"{edit.origin} " if edit.origin else ""
    return f"{label}at line {edit.start + 1}"


def minimize(old: list[str], edit: Edit) -> Edit | None:
    """The same edit with unchanged leading and trailing lines dropped; None when it changes nothing."""
    start, end, new = edit.start, edit.end, list(edit.new)
    while start < end and new and old[start] == new[0]:
        start += 1
        new.pop(0)
    while start < end and new and old[end - 1] == new[-1]:
        end -= 1
        new.pop()
    if start == end and not new:
        return None
    return Edit(start, end, tuple(new), edit.origin)
