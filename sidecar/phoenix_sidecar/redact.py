"""Scrubs text before it leaves the machine or lands in a record: secrets, escapes, invisible characters.

The one redactor of the sidecar, shared by every wing that writes or shows something (the repair
records and prompts, the console, the run log, the state, the lock record, `phoenix status`,
metrics labels), so one set of rules decides what a secret is. `Redactor` replaces known token shapes (Hugging Face, OpenAI, GitHub, AWS, Google, Slack, GitLab,
JWTs), ``Authorization`` headers, private key blocks, ``password=...``-style assignments, and the
values of secret-looking environment variables (and Phoenix's own LLM keys) wherever they appear.
`clean_log` strips ANSI escapes and invisible or bidirectional characters from untrusted output;
`reveal_invisible` shows such characters in source code as visible ``\\u`` escapes.
`command_label` names a command without its arguments (program name and a digest). Pure.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping

MASK = "[REDACTED]"
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|AUTH", re.I)
_MIN_ENV_SECRET = 6
# A command-line option whose value is a secret: --hf-token X, --api-key=X, -password X.
_SECRET_OPTION = re.compile(r"^--?[\w\-]*(?:token|key|secret|password|passwd|pwd|credential|auth)[\w\-]*$", re.I)

_TOKENS = [
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),
    re.compile(r"\bsk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}"),
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"),
    re.compile(r"\b(?:wandb|WANDB)[_-]?[A-Za-z0-9]{40}\b"),
    # A chat webhook's URL is its credential: whoever has it can post to the channel.
    re.compile(r"https://hooks\.slack\.com/\S+|https://discord(?:app)?\.com/api/webhooks/\S+"),
]
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY"
                          r"( BLOCK)?-----|\Z)", re.S)
_AUTH_HEADER = re.compile(r"(?i)(\b(?:proxy-)?authorization\s*[:=]\s*['\"]?\s*(?:bearer|basic|token|bot)?\s*)"
                          r"([A-Za-z0-9+/=._~\-]{6,})")
_BEARER = re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9+/=._~\-]{12,})")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:)([^\s@/]+)(@)", re.I)
# name = "value" or name: value, where the name ends like a secret (api_key, HF_TOKEN, db_password).
_ASSIGN_QUOTED = re.compile(
    r"(?i)(\b[\w.\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|"
    r"credentials?|auth)\b['\"]?\s*[:=]\s*)(['\"])([^'\"\n]{1,512})(\2)")
_ASSIGN_BARE = re.compile(
    r"(?i)(\b[\w.\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|"
    r"credentials?)\s*[:=]\s*)([^\s'\"(),;\[\]{}]{6,})")
# Every pattern above needs one of these (lower-cased) in the line it matches: a large text is
# searched for them in one pass, and only the lines holding one pay for the regular expressions.
# (Slack's ``xox?-`` is found by its ``ox?-``: a line of x's must not cost a test per character.)
_TRIGGERS = ("hf_", "sk-", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "akia", "asia",
             "agpa", "aida", "aroa", "anpa", "aiza", "oxa-", "oxb-", "oxp-", "oxo-", "oxs-", "oxr-", "eyj", "npm_", "wandb", "auth", "bearer", "://",
             "password", "passwd", "pwd", "secret", "token", "key", "credential")
_SPARSE_FROM = 4096  # characters; below this the whole text is simply scanned


def _trigger_pattern(triggers: Iterable[str]) -> re.Pattern[str]:
    # Grouped by first character: the engine then tests one small alternation per candidate
    # position, about three times faster than a flat alternation or one search per trigger.
    groups: dict[str, list[str]] = {}
    for t in triggers:
        groups.setdefault(t[0], []).append(re.escape(t[1:]))
    return re.compile("|".join(f"{re.escape(first)}(?:{'|'.join(sorted(rest, key=len, reverse=True))})"
                               for first, rest in groups.items()))


_TRIGGER = _trigger_pattern(_TRIGGERS)
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ASCII_CONTROL_CODE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b[@-Z\\-_]")


class Redactor:
    """Replaces secrets in text.

    Args:
        secrets: literal values to hide wherever they appear (LLM keys, secret env values).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if s and len(s) >= _MIN_ENV_SECRET}
        # Longest first, so a secret that contains another is hidden whole.
        self._literals = sorted(values, key=len, reverse=True)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], extra: Iterable[str | None] = ()) -> Redactor:
        """Hide the values of environment variables whose names look secret, and ``extra`` values."""
        found = [v for k, v in environ.items() if _SECRET_NAME.search(k) and _worth_hiding(v)]
        return cls([*found, *(e for e in extra if e)])

    @classmethod
    def for_command(cls, environ: Mapping[str, str], argv: Iterable[str],
                    extra: Iterable[str | None] = ()) -> Redactor:
        """`from_environ`, plus the values of secret-looking options in ``argv`` (``--hf-token X``)."""
        base = cls.from_environ(environ, extra)
        return cls([*base._literals, *command_secrets(argv)])

    def text(self, text: str, *, code: bool = False) -> str:
        """``text`` with secrets replaced by ``[REDACTED]``.

        Args:
            code: the text is source code: only quoted literals are treated as assigned values,
                so expressions like ``token = tokenizer(x)`` stay intact.
        """
        if not text:
            return text
        if len(text) >= _SPARSE_FROM and "PRIVATE KEY" not in text:  # a key block spans lines: scan it whole
            return self._sparse(text, code)
        return self._scan(text, code)

    def _sparse(self, text: str, code: bool) -> str:
        """`text` where only the lines that hold a literal or a trigger are scanned (job output is
        megabytes of lines like ``step 100 loss 2.31``, which hold none)."""
        lowered = text.lower()
        if len(lowered) != len(text):  # a character whose lower case is longer: positions would drift
            return self._scan(text, code)
        spans: list[tuple[int, int]] = []

        def add(at: int) -> int:
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            end = len(text) if end == -1 else end
            spans.append((start, end))
            return end

        found = _TRIGGER.search(lowered)
        while found is not None:
            found = _TRIGGER.search(lowered, add(found.start()))
        for literal in self._literals:
            at = text.find(literal)
            while at != -1:
                at = text.find(literal, add(at))
        if not spans:
            return text
        spans.sort()
        out, pos = [], 0
        for start, end in spans:
            if end <= pos:
                continue
            start = max(start, pos)
            out.append(text[pos:start])
            out.append(self._scan(text[start:end], code))
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def _scan(self, text: str, code: bool) -> str:
        for literal in self._literals:
            if literal in text:
                text = text.replace(literal, MASK)
        # A key block becomes as many masked lines as it had, so line numbers stay true.
        text = _PRIVATE_KEY.sub(lambda m: "\n".join([MASK] * (m.group().count("\n") + 1)), text)
        for pattern in _TOKENS:
            text = pattern.sub(MASK, text)
        text = _AUTH_HEADER.sub(lambda m: m.group(1) + MASK, text)
        text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
        text = _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), text)
        text = _ASSIGN_QUOTED.sub(lambda m: m.group(1) + m.group(2) + MASK + m.group(4), text)
        if not code:
            text = _ASSIGN_BARE.sub(lambda m: m.group(1) + (m.group(2) if m.group(2) == MASK else MASK), text)
        return text

    def data(self, value: object) -> object:
        """A JSON-like value with every string redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value


def command_secrets(argv: Iterable[str]) -> list[str]:
    """Values given to secret-looking options (``--token X``, ``--api-key=X``) in a command line."""
    words = list(argv)
    found = []
    for i, word in enumerate(words):
        name, eq, value = word.partition("=")
        if not _SECRET_OPTION.match(name):
            continue
        if eq:
            found.append(value)
        elif i + 1 < len(words):
            found.append(words[i + 1])
    return [v for v in found if _worth_hiding(v)]


def command_label(argv: Iterable[str]) -> str:
    """A command named without its arguments, which may hold secrets: ``python3 #3f2a9c1b7d4e``.

    The digest (of the whole command line) tells two commands apart without revealing either.
    """
    words = list(argv)
    if not words:
        return ""
    digest = hashlib.sha256("\0".join(words).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return f"{os.path.basename(words[0])[:64]} #{digest}"


def _worth_hiding(value: str) -> bool:
    v = value.strip()
    if len(v) < _MIN_ENV_SECRET:
        return False
    if v.lower() in ("true", "false", "none", "null", "enabled", "disabled"):
        return False
    return not re.fullmatch(r"[\d.]+", v)


def clean_log(text: str) -> str:
    """Untrusted output made plain: no ANSI escapes, CR progress redraws, control or invisible characters."""
    text = _ANSI.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii():
        return _ASCII_CONTROL.sub("", text)
    out = []
    for ch in text:
        if ch in "\n\t":
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Co", "Cs") or ch in "\u2028\u2029":
            continue
        if 0xFE00 <= ord(ch) <= 0xFE0F or 0xE0100 <= ord(ch) <= 0xE01EF:  # variation selectors
            continue
        out.append(ch)
    return "".join(out)


def reveal_invisible(text: str) -> str:
    """Source code with format and bidi characters shown as ``\\uXXXX`` so the model sees them."""
    if text.isascii():
        return _ASCII_CONTROL_CODE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    out = []
    for ch in text:
        if ch not in "\n\t\r\f" and unicodedata.category(ch) in ("Cf", "Cc"):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)
