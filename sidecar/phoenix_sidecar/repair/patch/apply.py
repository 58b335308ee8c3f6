"""Applies an answer's patches to file texts in memory, all or nothing.

Each patch is placed by content (`locate`): diff hunks by their context and removed lines,
``search_replace`` by its search text (which must occur exactly once), ``replace_range`` by its
line numbers, checked against ``expected`` when given (and moved to where ``expected`` really is
when the numbers are off). Patches of one file are placed against the file as it was, so their
order does not matter; one that only fits the text left by an earlier patch is placed there.
Any failure rejects the whole answer: nothing is half-applied. Pure: reading files is the
caller's job.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from phoenix_sidecar.errors import AnswerRejected
from phoenix_sidecar.repair.outcomes import RejectReason
from phoenix_sidecar.repair.patch import diff as udiff
from phoenix_sidecar.repair.patch.lines import Edit, SourceText, minimize
from phoenix_sidecar.repair.patch.ladder import quote_key
from phoenix_sidecar.repair.patch.locate import Block, Locator
from phoenix_sidecar.repair.model import Patch, PatchStatus

BOM = "\ufeff"


@dataclass
class _FileState:
    original: SourceText
    base: SourceText
    pending: list[Edit] = field(default_factory=list)
    bom: bool = False

    @property
    def moved(self) -> bool:
        return self.base is not self.original

    def settle(self) -> None:
        """Apply the pending edits, so later patches are placed in the result."""
        if self.pending:
            self.base = self.base.apply(self.pending)
            self.pending = []

    def result(self) -> str:
        self.settle()
        return (BOM if self.bom else "") + self.base.render()


@dataclass
class Applied:
    """The new text of each changed file, and what became of each patch."""

    texts: dict[str, str]
    statuses: list[PatchStatus]


def apply_patches(patches: list[tuple[Patch, str]], read: Callable[[str], str], *,
                  shown: Mapping[str, str] | None = None) -> Applied:
    """Apply ``(patch, workspace_path)`` pairs to the texts ``read(path)`` returns.

    Args:
        shown: sha256 of each file's text as the prompt showed it; a ``replace_range`` without
            ``expected`` is only trusted while the file still has that text.

    Raises:
        AnswerRejected: a patch cannot be applied; ``file_path`` names it. Nothing is returned.
    """
    states: dict[str, _FileState] = {}
    originals: dict[str, str] = {}
    statuses: list[PatchStatus] = []
    for index, (patch, rel) in enumerate(patches):
        if rel not in states:
            text = read(rel)
            originals[rel] = text
            bom = text.startswith(BOM)
            source = SourceText.parse(text[1:] if bom else text)
            states[rel] = _FileState(source, source, bom=bom)
        state = states[rel]
        try:
            changed = _apply_one(patch, state, f"patch {index + 1}", shown_hash=(shown or {}).get(rel),
                                 current_hash=_sha(originals[rel]))
        except AnswerRejected as exc:
            raise AnswerRejected(exc.reason, exc.detail, file_path=exc.file_path or patch.file_path) from None
        statuses.append(PatchStatus(patch.file_path, patch.mode, "applied" if changed else "already_applied"))
    texts = {}
    for rel, state in states.items():
        new = state.result()
        if new != originals[rel]:
            texts[rel] = new
    return Applied(texts, statuses)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _apply_one(patch: Patch, state: _FileState, origin: str, *, shown_hash: str | None, current_hash: str) -> bool:
    """Place one patch; True when it changes something. May settle earlier edits to place it."""
    if patch.mode == "replace_range":
        edits = _range_edits(patch, state, origin, shown_hash=shown_hash, current_hash=current_hash)
        return _add(state, edits)
    try:
        return _add(state, _content_edits(patch, state.base.lines, origin))
    except AnswerRejected as exc:
        if exc.reason not in (RejectReason.NO_MATCH, RejectReason.OVERLAP) or not state.pending:
            raise
    state.settle()  # the patch may build on an earlier one of the same answer
    return _add(state, _content_edits(patch, state.base.lines, origin))


def _add(state: _FileState, edits: list[Edit]) -> bool:
    if not edits:
        return False
    candidate = state.pending + edits
    state.base.apply(candidate)  # raises "overlap" before anything is kept
    state.pending = candidate
    return True


def _content_edits(patch: Patch, lines: list[str], origin: str) -> list[Edit]:
    locator = Locator(lines)
    if patch.mode == "search_replace":
        return _search_replace(patch, lines, locator, origin)
    files = udiff.parse(patch.diff)
    if len(files) > 1:
        raise AnswerRejected(RejectReason.BAD_FORMAT, "the diff of one patch names several files; give each file its own patch")
    fd = files[0]
    _refuse_flags(fd.flags)
    if fd.path is not None and not udiff.names_same_file(fd.path, patch.file_path):
        raise AnswerRejected(RejectReason.DIFF_MISMATCH, f"the diff's header names {fd.path!r}, not {patch.file_path!r}")
    blocks: list[Block] = []
    for k, hunk in enumerate(fd.hunks, 1):
        block = Block(tuple(hunk.lines), f"{origin} hunk {k}")
        if all(block.lines != b.lines for b in blocks):  # a repeated hunk is one change, not two
            blocks.append(block)
    edits: list[Edit] = []
    for block in blocks:
        edits.extend(locator.block(block))
    return edits


FLAG_REASONS = {
    "binary": (RejectReason.BINARY, "binary patches are not accepted"),
    "symlink": (RejectReason.SYMLINK, "the diff creates or changes a symbolic link"),
    "new_file": (RejectReason.NEW_FILE, "the diff creates a file; repairs change existing files only"),
    "deletion": (RejectReason.DELETION, "the diff deletes a file"),
    "rename": (RejectReason.RENAME, "the diff renames or copies a file"),
    "mode_change": (RejectReason.MODE_CHANGE, "the diff changes file permissions"),
}


def _refuse_flags(flags: set[str]) -> None:
    for flag, (reason, detail) in FLAG_REASONS.items():
        if flag in flags:
            raise AnswerRejected(reason, detail)


def _search_replace(patch: Patch, lines: list[str], locator: Locator, origin: str) -> list[Edit]:
    search = _lf(patch.search)
    replace = _lf(patch.replace)
    text = "\n".join(lines) + "\n"
    count = text.count(search)
    if count > 1:
        raise AnswerRejected(RejectReason.AMBIGUOUS, f"{origin}: the search text occurs {count} times; it must occur exactly "
                                          f"once (add surrounding lines)")
    if count == 1:
        return _whole(lines, text.replace(search, replace, 1), origin)
    try:
        return locator.block(_pair_block(search, replace, origin), trim=False)
    except AnswerRejected as exc:
        if exc.reason != RejectReason.NO_MATCH:
            raise
        # A fragment of a line, copied with the other quote style (small models write 'key' for "key"):
        # the same characters once quotes and typography are one, and in one place only.
        keyed, want = quote_key(text), quote_key(search)
        found = keyed.count(want) if len(want.strip()) >= 3 else 0
        if found > 1:
            raise AnswerRejected(RejectReason.AMBIGUOUS, f"{origin}: the search text occurs {found} times once quote "
                                                         f"style is ignored; it must occur exactly once") from None
        if found == 0:
            raise
        at = keyed.index(want)
        return _whole(lines, text[:at] + replace + text[at + len(search):], origin)


def _whole(lines: list[str], new_text: str, origin: str) -> list[Edit]:
    edit = minimize(lines, Edit(0, len(lines), tuple(split_lines(new_text)), origin))
    return [edit] if edit else []


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split_lines(text: str) -> list[str]:
    """Lines of LF text; a final newline ends the last line rather than starting another."""
    if text == "":
        return []
    parts = text.split("\n")
    return parts[:-1] if text.endswith("\n") else parts


def _pair_block(search: str, replace: str, origin: str) -> Block:
    """A search/replace pair as a block: unchanged lines become context, the rest - and +."""
    old = split_lines(search)
    new = split_lines(replace)
    tagged: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            tagged.extend((" ", t) for t in old[i1:i2])
        else:
            tagged.extend(("-", t) for t in old[i1:i2])
            tagged.extend(("+", t) for t in new[j1:j2])
    return Block(tuple(tagged), origin)


def _range_edits(patch: Patch, state: _FileState, origin: str, *, shown_hash: str | None,
                 current_hash: str) -> list[Edit]:
    lines = state.base.lines
    start, end = patch.start_line, patch.end_line
    code = _lf(patch.code)
    new = split_lines(code)
    if patch.expected is None:
        if state.moved or (state.pending and _overlaps_pending(state, start - 1, end)):
            raise AnswerRejected(RejectReason.STALE_RANGE, f"{origin}: line numbers cannot be trusted after an earlier patch "
                                                f"changed these lines; give \"expected\" or use search_replace")
        if shown_hash is not None and shown_hash != current_hash:
            raise AnswerRejected(RejectReason.STALE_RANGE, f"{origin}: the file changed since the prompt showed it; line "
                                                f"numbers no longer hold")
        if end > len(lines):
            raise AnswerRejected(RejectReason.BAD_RANGE, f"{origin}: lines {start}-{end} do not exist (the file has "
                                              f"{len(lines)} lines)")
        edit = minimize(lines, Edit(start - 1, end, tuple(new), origin))
        return [edit] if edit else []
    expected = split_lines(_lf(patch.expected))
    if end <= len(lines) and [x.rstrip() for x in lines[start - 1:end]] == [x.rstrip() for x in expected]:
        edit = minimize(lines, Edit(start - 1, end, tuple(new), origin))
        return [edit] if edit else []
    # The numbers are off (or stale): place the range where its expected text really is.
    block = Block(tuple([("-", t) for t in expected] + [("+", t) for t in new]), f"{origin} (lines {start}-{end})")
    try:
        return Locator(lines).block(block, trim=False)
    except AnswerRejected as exc:
        if exc.reason == RejectReason.NO_MATCH:
            raise AnswerRejected(RejectReason.STALE_RANGE, f"{origin}: lines {start}-{end} do not hold the expected text, "
                                                f"and it is found nowhere else") from None
        raise


def _overlaps_pending(state: _FileState, start: int, end: int) -> bool:
    return any(e.start < end and start < e.end for e in state.pending)
