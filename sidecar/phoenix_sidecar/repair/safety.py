"""What a repair may touch and write: checked in code before any write, whatever the answer says.

Paths are resolved against the real file system (``..``, absolute paths, symlinks) and compared
component by component, never as string prefixes. The denylist wins over the allowlist: it holds
what would let a patch run code outside the job or change how it is verified (git internals,
Phoenix's own state and config, CI and editor settings, test harness and packaging config,
interpreter start-up hooks, container builds, dependency manifests, credentials files).
Content checks refuse binary data, control and invisible (bidi) characters, and elided code.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from phoenix_sidecar.errors import AnswerRejected
from phoenix_sidecar.repair.outcomes import RejectReason
from phoenix_sidecar.paths import STATE_DIR_NAME

# Directory names that may not appear anywhere in a target's path (compared case-insensitively).
DENY_DIRS = frozenset({
    ".git", ".hg", ".svn", STATE_DIR_NAME, ".github", ".gitlab", ".circleci", ".vscode", ".idea",
    ".devcontainer", ".claude", ".cursor", ".husky", ".buildkite", "site-packages", "dist-packages",
})
# File names (case-insensitive) that may never be patched.
DENY_FILES = frozenset({
    "phoenix.yaml", "phoenix.yml", ".gitlab-ci.yml", ".gitlab-ci.yaml", ".travis.yml", "jenkinsfile",
    "azure-pipelines.yml", "bitbucket-pipelines.yml", ".pre-commit-config.yaml", ".pre-commit-hooks.yaml",
    "makefile", "gnumakefile", "noxfile.py", "conftest.py", "pytest.ini", "tox.ini", "setup.cfg",
    "setup.py", "pyproject.toml", "manifest.in", "sitecustomize.py", "usercustomize.py", "dockerfile",
    "containerfile", ".dockerignore", ".gitmodules", ".gitattributes", ".gitignore", ".env", ".netrc",
    ".pypirc", "pipfile", "pipfile.lock", "poetry.lock", "uv.lock", "environment.yml", "environment.yaml",
})
DENY_GLOBS = (
    "*.pth", "dockerfile.*", "*.dockerfile", "containerfile.*", "docker-compose*.yml", "docker-compose*.yaml",
    "compose.yml", "compose.yaml", "compose.*.yml", "compose.*.yaml", "requirements*.txt", "constraints*.txt",
    ".env.*",
)
# When a test command verifies repairs, the tests themselves are part of the verdict.
TEST_GLOBS = ("test_*.py", "*_test.py")
TEST_DIRS = frozenset({"tests", "test", "testing"})

_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")
_ELISION = (
    re.compile(r"^\s*(?:#|//)\s*(?:\.\.\.|\u2026)+\s*$"),
    re.compile(r"^\s*(?:#|//)\s*(?:\.\.\.|\u2026).*\b(?:existing|rest|remaining|unchanged|omitted|same|previous|"
               r"original|other)\b", re.I),
    re.compile(r"^\s*(?:#|//).*\b(?:existing code|rest of (?:the )?(?:code|file|function|class|method|loop)|"
               r"remains? (?:the same|unchanged)|unchanged code|code omitted|omitted for brevity|same as before)\b",
               re.I),
)


@dataclass(frozen=True)
class Target:
    """A patch target that passed every path check."""

    rel: str  # workspace-relative, posix, as resolved
    path: Path  # absolute


class PathPolicy:
    """Decides whether a path named by an answer (or a traceback) may be patched.

    Args:
        workspace: the job's workspace.
        allowlist: glob patterns of files a repair may change.
        config_file: Phoenix's loaded config file, never patchable.
        test_cmd: the verification command; files it names, and test files, are then protected.
        aliases: exact absolute paths (as the job saw them, e.g. in a container) -> workspace paths.
        only: when set, the files an answer may change at all (those the prompt showed).
    """

    def __init__(self, workspace: Path, allowlist: Iterable[str], *, config_file: Path | None = None,
                 test_cmd: Iterable[str] | None = None, aliases: Mapping[str, str] | None = None,
                 only: Iterable[str] | None = None) -> None:
        self.workspace = Path(os.path.realpath(workspace))
        self.workspace_given = Path(os.path.abspath(workspace))
        self.allowlist = [p.strip() for p in allowlist if p.strip()]
        self.config_file = Path(os.path.realpath(config_file)) if config_file else None
        self.aliases = dict(aliases or {})
        self.test_cmd = list(test_cmd or [])
        self.only = None if only is None else sorted(set(only))
        self._protected = self._test_paths(self.test_cmd)

    def narrowed(self, only: Iterable[str], aliases: Mapping[str, str] | None = None) -> PathPolicy:
        """The same policy, limited to ``only`` (the files an LLM was shown), knowing ``aliases``."""
        return PathPolicy(self.workspace_given, self.allowlist, config_file=self.config_file,
                          test_cmd=self.test_cmd, aliases={**self.aliases, **(aliases or {})}, only=only)

    def check(self, raw: str) -> Target:
        """Resolve ``raw`` to an existing, regular, allowlisted file inside the workspace.

        Raises:
            AnswerRejected: with the reason code of the first rule it breaks.
        """
        rel = self._relative(raw)
        rule = self.denied(os.path.normpath(rel))  # before touching the file system: the name alone decides
        if rule:
            raise AnswerRejected(RejectReason.DENYLIST, f"{rule}; Phoenix never patches it", file_path=raw)
        target = self._resolve(raw, rel)
        self._check_rules(raw, target.rel)
        return target

    def allowed(self, raw: str) -> Target | None:
        try:
            return self.check(raw)
        except AnswerRejected:
            return None

    # -- path resolution -----------------------------------------------------------------------
    def _relative(self, raw: str) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise AnswerRejected(RejectReason.BAD_PATH, "the patch names no file")
        path = raw.strip()
        if any(ord(c) < 32 for c in path) or len(path) > 4096:
            raise AnswerRejected(RejectReason.BAD_PATH, "the file name holds control characters or is too long", file_path=raw)
        if re.match(r"^[A-Za-z]:[\\/]", path) or path.startswith("\\\\"):
            raise AnswerRejected(RejectReason.ABSOLUTE_PATH, "absolute Windows path", file_path=raw)
        if "\\" in path:
            raise AnswerRejected(RejectReason.BAD_PATH, "backslashes are not path separators here", file_path=raw)
        if path in self.aliases:
            return self.aliases[path]
        if path.startswith("/"):
            lexical = Path(os.path.normpath(path))
            for root in (self.workspace, self.workspace_given):
                if lexical != root and lexical.is_relative_to(root):
                    return lexical.relative_to(root).as_posix()
            raise AnswerRejected(RejectReason.ABSOLUTE_PATH, "absolute path outside the workspace", file_path=raw)
        normal = os.path.normpath(path)
        if normal == ".." or normal.startswith("../"):
            raise AnswerRejected(RejectReason.TRAVERSAL, "the path climbs out of the workspace with ..", file_path=raw)
        if normal == ".":
            raise AnswerRejected(RejectReason.BAD_PATH, "the path names the workspace itself", file_path=raw)
        return PurePosixPath(path).as_posix()

    def _resolve(self, raw: str, rel: str) -> Target:
        current = self.workspace
        parts = [p for p in PurePosixPath(rel).parts if p not in ("", ".")]
        for i, part in enumerate(parts):
            if part == "..":
                current = current.parent
                if not current.is_relative_to(self.workspace):
                    raise AnswerRejected(RejectReason.TRAVERSAL, "the path climbs out of the workspace with ..", file_path=raw)
                continue
            current = current / part
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                raise AnswerRejected(RejectReason.NOT_FOUND, "no such file in the workspace (repairs change existing files only)",
                                     file_path=raw) from None
            except OSError as exc:
                raise AnswerRejected(RejectReason.NOT_FOUND, f"cannot inspect the file: {exc.strerror}", file_path=raw) from None
            if stat.S_ISLNK(st.st_mode):
                raise AnswerRejected(RejectReason.SYMLINK, f"{'/'.join(parts[:i + 1])} is a symbolic link; repairs never "
                                                f"write through links", file_path=raw)
        real = Path(os.path.realpath(current))
        if real == self.workspace or not real.is_relative_to(self.workspace):
            raise AnswerRejected(RejectReason.OUTSIDE_WORKSPACE, "the file resolves outside the workspace", file_path=raw)
        st = os.lstat(real)
        if not stat.S_ISREG(st.st_mode):
            raise AnswerRejected(RejectReason.NOT_A_FILE, "not a regular file", file_path=raw)
        if st.st_nlink > 1:
            raise AnswerRejected(RejectReason.HARD_LINK, "the file has other hard links, which may lie outside the workspace",
                                 file_path=raw)
        return Target(real.relative_to(self.workspace).as_posix(), real)

    # -- rules ---------------------------------------------------------------------------------
    def _check_rules(self, raw: str, rel: str) -> None:
        rule = self.denied(rel)
        if rule:
            raise AnswerRejected(RejectReason.DENYLIST, f"{rule}; Phoenix never patches it", file_path=raw)
        if not self.is_allowlisted(rel):
            raise AnswerRejected(RejectReason.ALLOWLIST, f"not in the allowlist ({'; '.join(self.allowlist) or 'empty'})",
                                 file_path=raw)
        if self.only is not None and rel not in self.only:
            raise AnswerRejected(RejectReason.NOT_SHOWN, f"not one of the files shown for this failure "
                                              f"({', '.join(self.only)})", file_path=raw)

    def denied(self, rel: str) -> str | None:
        """The denylist rule ``rel`` breaks, as a phrase, or None."""
        parts = PurePosixPath(rel).parts
        lowered = [p.lower() for p in parts]
        for part in lowered[:-1]:
            if part in DENY_DIRS:
                return f"files under {part}/ are protected"
        name = lowered[-1]
        if name in DENY_DIRS:
            return f"{name} is protected"
        if name in DENY_FILES:
            return f"{parts[-1]} is protected"
        for glob in DENY_GLOBS:
            if fnmatch.fnmatchcase(name, glob):
                return f"{parts[-1]} is protected ({glob})"
        if self.config_file is not None and (self.workspace / rel) == self.config_file:
            return "Phoenix's own config file is protected"
        if self.test_cmd:
            # The tests decide verification: a patch may not change them (the code they run, it may).
            if any(fnmatch.fnmatchcase(name, glob) for glob in TEST_GLOBS) or any(p in TEST_DIRS for p in lowered[:-1]):
                return "test files decide verification and are protected"
            for protected in self._protected:
                if rel == protected:
                    return f"{protected} is named by the test command and decides verification: protected"
                if rel.startswith(protected + "/"):
                    return f"{protected}/ is named by the test command and protected"
        return None

    def is_allowlisted(self, rel: str) -> bool:
        name = PurePosixPath(rel).name
        for pattern in self.allowlist:
            candidates = [pattern]
            if "**/" in pattern:
                candidates.append(pattern.replace("**/", ""))
            for pat in candidates:
                if fnmatch.fnmatchcase(rel, pat) or ("/" not in pat and fnmatch.fnmatchcase(name, pat)):
                    return True
        return False

    def _test_paths(self, words: list[str]) -> list[str]:
        """Files and directories the test command names: what it runs decides verification.

        (``python3 smoke.py`` whose assert a patch turns into ``pass`` would verify anything.)
        """
        out = []
        for word in words:  # (a script may be the program itself: ./smoke.py)
            if word.startswith("-") or "\n" in word or len(word) > 1024:
                continue  # an option or inline code, not a path
            try:
                candidate = Path(os.path.realpath(self.workspace / word.split("::", 1)[0]))
                if candidate != self.workspace and candidate.is_relative_to(self.workspace) and candidate.exists():
                    out.append(candidate.relative_to(self.workspace).as_posix())
            except (OSError, ValueError):
                continue
        return out


# -- content -------------------------------------------------------------------------------------
def decode_source(data: bytes, rel: str) -> str:
    """A workspace file's text; refuses binary and non-UTF-8 files."""
    if b"\x00" in data:
        raise AnswerRejected(RejectReason.BINARY, "the file holds NUL bytes (binary)", file_path=rel)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise AnswerRejected(RejectReason.BINARY, "the file is not UTF-8 text", file_path=rel) from None


def encode_source(text: str, rel: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise AnswerRejected(RejectReason.BINARY, "the patched text cannot be written as UTF-8", file_path=rel) from None


def changed_lines(old: str, new: str) -> tuple[list[str], int]:
    """The lines the change adds, and the count of lines it removes."""
    a, b = old.splitlines(), new.splitlines()
    added: list[str] = []
    removed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            removed += i2 - i1
        if tag in ("replace", "insert"):
            added.extend(b[j1:j2])
    return added, removed


def check_added(lines: list[str], rel: str) -> None:
    """Refuse NUL, control, bidi and invisible characters, and elision comments, in added lines."""
    for n, line in enumerate(lines, 1):
        if "\x00" in line:
            raise AnswerRejected(RejectReason.BINARY, "an added line holds a NUL byte", file_path=rel)
        bad = next((c for c in line if c in _BIDI or c in _INVISIBLE), None)
        if bad is not None:
            raise AnswerRejected(RejectReason.BIDI, f"an added line holds the invisible or bidirectional character "
                                         f"U+{ord(bad):04X}", file_path=rel)
        ctrl = next((c for c in line if (ord(c) < 32 and c not in "\t\f") or 0x7f <= ord(c) < 0xa0), None)
        if ctrl is not None:
            raise AnswerRejected(RejectReason.CONTROL_CHARS, f"an added line holds the control character U+{ord(ctrl):04X}",
                                 file_path=rel)
        if any(p.search(line) for p in _ELISION):
            raise AnswerRejected(RejectReason.ELISION, f"an added line stands for code left out ({line.strip()[:60]!r}); "
                                            f"patches must spell out every line", file_path=rel)
