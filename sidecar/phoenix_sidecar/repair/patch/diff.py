"""A lenient parser for the unified diffs LLMs write, and a strict check of what they must not do.

Accepted: Markdown fences and prose around the diff, heredoc wrappers, ``@@ ... @@`` headers
without numbers (numbers, when present, are hints and never trusted: hunks are recounted from
their bodies), wrong counts, missing ``---``/``+++`` headers, ``a/`` ``b/`` and other prefixes,
timestamps after the path, CRLF, blank context lines without their leading space, and the
``*** Update File:`` envelope of OpenAI's apply_patch format. Recorded as flags, for the safety
check to refuse: new files, deletions, renames and copies, mode changes, symlinks and binary
patches. `unidiff` reads the same text as a second opinion on that metadata. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import unidiff

from phoenix_sidecar.errors import AnswerRejected
from phoenix_sidecar.repair.outcomes import RejectReason

DEV_NULL = "/dev/null"
_PREFIXES = ("a/", "b/", "c/", "i/", "o/", "w/", "1/", "2/")
_HUNK = re.compile(r"^@@+\s*(?:-(\d+)(?:,(\d+))?\s+\+(\d+)(?:,(\d+))?)?")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEREDOC = re.compile(r"""^\s*(?:[\w./-]+\s+)*<<-?\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\1\s*(?:[>|].*)?$""")
_V4A = re.compile(r"^\s*\*\*\*\s*(Begin Patch|End Patch|Update File:|Add File:|Delete File:|Move to:|End of File)"
                  r"\s*(.*?)\s*\**\s*$")
_TIMESTAMP = re.compile(r"\s+\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[+-]\d{4})?\s*$")
_GIT = re.compile(r'^diff --git "?a/(.+?)"? "?b/(.+?)"?$')


@dataclass
class Hunk:
    """One hunk as tagged lines; ``old_start`` is the header's claim, kept only for messages."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    old_start: int | None = None
    _raw_blank: list[bool] = field(default_factory=list)

    def add(self, tag: str, text: str, *, raw_blank: bool = False) -> None:
        self.lines.append((tag, text))
        self._raw_blank.append(raw_blank)

    def close(self) -> None:
        # Empty lines after the last change are the gap before prose, not context.
        while self._raw_blank and self._raw_blank[-1]:
            self.lines.pop()
            self._raw_blank.pop()

    @property
    def changes(self) -> bool:
        return any(tag != " " for tag, _ in self.lines)


@dataclass
class FileDiff:
    """The part of a diff about one file."""

    old_path: str | None = None
    new_path: str | None = None
    hunks: list[Hunk] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)  # new_file deletion rename mode_change symlink binary

    @property
    def path(self) -> str | None:
        """The path the diff names for the file it changes (None when it has no header)."""
        if self.new_path and self.new_path != DEV_NULL:
            return self.new_path
        if self.old_path and self.old_path != DEV_NULL:
            return self.old_path
        return None


def unwrap(text: str) -> list[str]:
    """The diff's lines without fences, heredoc wrappers or CR characters."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    fenced: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        if _FENCE.match(line):
            if current is None:
                current = []
            else:
                fenced.append(current)
                current = None
        elif current is not None:
            current.append(line)
    if current:
        fenced.append(current)
    diffish = [b for b in fenced if any(_looks_like_diff(line) for line in b)]
    if diffish:
        lines = [line for block in diffish for line in block]
    if lines and (m := _HEREDOC.match(lines[0])):
        end = m.group(2)
        lines = lines[1:]
        for k in range(len(lines) - 1, -1, -1):
            if lines[k].strip() == end:
                lines = lines[:k]
                break
    return lines


def _looks_like_diff(line: str) -> bool:
    return line.startswith(("@@", "--- ", "+++ ", "diff --git")) or bool(_V4A.match(line))


def parse(text: str) -> list[FileDiff]:
    """The files of a diff, hunks recounted from their bodies.

    Raises:
        AnswerRejected: ``bad_format`` when the text holds no hunk at all.
    """
    lines = unwrap(text)
    files: list[FileDiff] = []
    cur: FileDiff | None = None
    hunk: Hunk | None = None
    headed = False  # cur came from a header, so a hunk may start without "@@"

    def new_file(old: str | None, new: str | None) -> FileDiff:
        f = FileDiff(old, new)
        files.append(f)
        return f

    def close() -> None:
        nonlocal hunk
        if hunk is not None:
            hunk.close()
        hunk = None

    i = 0
    while i < len(lines):
        line = lines[i]
        v4a = _V4A.match(line)
        if line.startswith("diff --git "):
            close()
            m = _GIT.match(line.rstrip())
            cur = new_file(m.group(1) if m else None, m.group(2) if m else None)
            headed = True
        elif v4a:
            close()
            kind, arg = v4a.group(1), _header_path(v4a.group(2))
            if kind in ("Update File:", "Add File:", "Delete File:"):
                cur = new_file(arg, arg)
                headed = True
                if kind == "Add File:":
                    cur.flags.add("new_file")
                    cur.old_path = DEV_NULL
                elif kind == "Delete File:":
                    cur.flags.add("deletion")
            elif kind == "Move to:" and cur is not None:
                cur.flags.add("rename")
                cur.new_path = arg
        elif line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            close()
            old, new = _header_path(line[4:]), _header_path(lines[i + 1][4:])
            if cur is None or cur.hunks or not headed:
                cur = new_file(old, new)
            else:
                cur.old_path, cur.new_path = old, new
            headed = True
            if old == DEV_NULL:
                cur.flags.add("new_file")
            if new == DEV_NULL:
                cur.flags.add("deletion")
            i += 1
        elif line.startswith("@@"):
            close()
            if cur is None:
                cur = new_file(None, None)
            m = _HUNK.match(line)
            hunk = Hunk(old_start=int(m.group(1)) if m and m.group(1) else None)
            cur.hunks.append(hunk)
        elif hunk is not None:
            if line == "":
                hunk.add(" ", "", raw_blank=True)
            elif line[0] in " -+":
                hunk.add(line[0], line[1:])
            elif line.startswith("\\"):
                pass  # "\ No newline at end of file": the file's own final newline is kept
            else:
                close()
        elif cur is not None and headed:
            if not _git_metadata(cur, line) and line[:1] in (" ", "-", "+") and not cur.hunks:
                hunk = Hunk()  # a hunk whose "@@" line the model left out
                cur.hunks.append(hunk)
                hunk.add(line[0], line[1:])
        i += 1
    close()
    for f in files:
        f.hunks = [h for h in f.hunks if h.changes]
    files = [f for f in files if f.hunks or f.flags]
    if not files:
        raise AnswerRejected(RejectReason.BAD_FORMAT, "the diff holds no hunk with a change (lines starting with - or +)")
    _second_opinion(lines, files)
    return files


def _git_metadata(cur: FileDiff, line: str) -> bool:
    """Record git's extended header lines; True when ``line`` was one."""
    if line.startswith(("old mode ", "new mode ")):
        cur.flags.add("mode_change")
    elif line.startswith("new file mode "):
        cur.flags.add("new_file")
        if line.strip().endswith("120000"):
            cur.flags.add("symlink")
    elif line.startswith("deleted file mode "):
        cur.flags.add("deletion")
    elif line.startswith(("rename from ", "rename to ", "copy from ", "copy to ", "similarity index ",
                          "dissimilarity index ")):
        cur.flags.add("rename")
    elif line.startswith("index "):
        if line.strip().endswith("120000"):
            cur.flags.add("symlink")
    elif line.startswith(("Binary files ", "GIT binary patch")):
        cur.flags.add("binary")
    else:
        return False
    return True


def _second_opinion(lines: list[str], files: list[FileDiff]) -> None:
    """What unidiff reads in the same text: modes, symlinks, binaries, additions, deletions."""
    try:
        patch = unidiff.PatchSet("\n".join(lines) + "\n")
    except (unidiff.UnidiffParseError, ValueError, IndexError):
        return  # LLM-style diffs often break its strict counts; our own parse stands
    for pf in patch:
        flags: set[str] = set()
        if pf.is_binary_file:
            flags.add("binary")
        if pf.is_added_file:
            flags.add("new_file")
        if pf.is_removed_file:
            flags.add("deletion")
        if getattr(pf, "is_rename", False):
            flags.add("rename")
        if getattr(pf, "is_symlink", False):
            flags.add("symlink")
        src, dst = getattr(pf, "source_mode", None), getattr(pf, "target_mode", None)
        if src and dst and src != dst:
            flags.add("mode_change")
        if flags:
            owner = next((f for f in files if f.path and names_same_file(f.path, pf.path)), files[0])
            owner.flags |= flags


def _header_path(raw: str) -> str:
    text = raw.split("\t", 1)[0].rstrip()
    text = _TIMESTAMP.sub("", text).strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = _unquote(text[1:-1])
    return text


def _unquote(text: str) -> str:
    """git's C-style quoting of unusual file names."""
    try:
        return text.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1").decode("utf-8")
    except (UnicodeError, ValueError):
        return text


def path_candidates(path: str) -> list[str]:
    """The names a header path may stand for: as written, without a mnemonic prefix, without ``./``."""
    out = [path]
    for p in list(out):
        if p.startswith(_PREFIXES):
            out.append(p[2:])
    for p in list(out):
        while p.startswith("./"):
            p = p[2:]
            out.append(p)
    return list(dict.fromkeys(out))


def names_same_file(header: str, file_path: str) -> bool:
    """Whether a header path names ``file_path`` (also as the tail of an absolute path)."""
    target = file_path[2:] if file_path.startswith("./") else file_path
    return any(c == target or (c.startswith("/") and c.endswith("/" + target)) for c in path_candidates(header))
