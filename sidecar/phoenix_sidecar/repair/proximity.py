"""How far a patch lands from the failure it claims to fix. Pure.

A fix usually changes code near a frame of the traceback (the failing line, or the function that
computed the bad value). A patch whose every change lies far from every frame the failure points
at in that file may be right (a wrong default at the top of a module), but it may also be an
answer that fixed something else or slipped in an unrelated change. It is not refused, since
"far" is a judgment; it is flagged in the repair's record for the human who reviews it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

# Lines between a change and the nearest failure frame beyond which a change counts as far: about
# the size of a function, so a fix in the caller or callee of the failing line is still near.
FAR_LINES = 40


@dataclass(frozen=True)
class FarChange:
    """A changed file none of whose changes is within `FAR_LINES` of a failure frame."""

    file: str
    changed: tuple[int, int]  # first and last line of the original file the patch touches
    nearest_frame: int  # the failure frame line closest to any change
    distance: int

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["changed"] = list(self.changed)
        return data


def changed_line_numbers(before: str, after: str) -> list[int]:
    """1-based lines of ``before`` that the change replaces or deletes, or inserts before."""
    a, b = before.splitlines(), after.splitlines()
    lines: list[int] = []
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            lines.extend(range(i1 + 1, i2 + 1))
        elif tag == "insert":
            lines.append(min(i1 + 1, max(len(a), 1)))
    return lines


def far_changes(changes: Sequence[tuple[str, str, str]], focus: Mapping[str, Sequence[int]],
                limit: int = FAR_LINES) -> list[FarChange]:
    """The changed files whose changes all lie more than ``limit`` lines from the failure's frames.

    ``changes`` are (path, text before, text after); ``focus`` maps a path to the lines the
    failure points at in it. A file without focus lines (a config file shown for an OOM) is never
    flagged: there is nothing to be near.
    """
    flagged = []
    for path, before, after in changes:
        frames = [n for n in focus.get(path, ()) if n > 0]
        touched = changed_line_numbers(before, after)
        if not frames or not touched:
            continue
        distance, nearest = min((abs(t - f), f) for t in touched for f in frames)
        if distance > limit:
            flagged.append(FarChange(path, (min(touched), max(touched)), nearest, distance))
    return flagged
