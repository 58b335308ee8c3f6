"""Reads an LLM's answer into `Patch` records, or rejects it with a reason. Never crashes on garbage.

The answer is JSON, ``{"patches": [...]}`` or a bare array, possibly inside a Markdown fence or
surrounded by prose. Only the structure is checked here; what the patches may touch is
`safety`'s business, where they apply is `apply`'s. Pure.
"""

from __future__ import annotations

import json
import re
from typing import Any

from phoenix_sidecar.errors import AnswerRejected
from phoenix_sidecar.repair.outcomes import RejectReason
from phoenix_sidecar.repair.model import PATCH_MODES, Patch

MAX_ANSWER_CHARS = 1_000_000
MAX_PATCHES = 50
_MAX_DECODE_STARTS = 40
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n(.*?)```", re.S)
_MODE_ALIASES = {
    "unified_diff": "unified_diff", "unified-diff": "unified_diff", "udiff": "unified_diff", "diff": "unified_diff",
    "unified": "unified_diff", "patch": "unified_diff",
    "replace_range": "replace_range", "replace-range": "replace_range", "range": "replace_range",
    "replace_lines": "replace_range", "line_range": "replace_range",
    "search_replace": "search_replace", "search-replace": "search_replace", "search/replace": "search_replace",
    "str_replace": "search_replace", "find_replace": "search_replace",
}


def parse_answer(text: str) -> list[Patch]:
    """The patches an answer proposes, in order, duplicates dropped.

    Raises:
        AnswerRejected: ``too_large``, ``invalid_json`` (no JSON found), ``bad_format`` (wrong
            shape or types) or ``empty`` (no patch at all).
    """
    if not isinstance(text, str):
        raise AnswerRejected(RejectReason.BAD_FORMAT, "the answer is not text")
    if len(text) > MAX_ANSWER_CHARS:
        raise AnswerRejected(RejectReason.TOO_LARGE, f"the answer has {len(text)} characters; at most {MAX_ANSWER_CHARS} "
                                          f"are read")
    data = extract_json(text)
    items = _patch_list(data)
    if not items:
        raise AnswerRejected(RejectReason.EMPTY, "the answer proposes no patch")
    if len(items) > MAX_PATCHES:
        raise AnswerRejected(RejectReason.TOO_LARGE, f"the answer proposes {len(items)} patches; at most {MAX_PATCHES}")
    patches: list[Patch] = []
    for n, item in enumerate(items, 1):
        patch = _patch(item, n)
        if patch not in patches:
            patches.append(patch)
    return patches


def extract_json(text: str) -> Any:
    """The answer's JSON value: the whole text, a fenced block, or the first object/array in prose."""
    stripped = text.strip().lstrip("\ufeff")
    if not stripped:
        raise AnswerRejected(RejectReason.INVALID_JSON, "the answer is empty")
    candidates = [stripped] + [m.group(1).strip() for m in _FENCE.finditer(text)]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):
            continue
    decoder = json.JSONDecoder()
    starts = [i for i, c in enumerate(stripped) if c in "{["][:_MAX_DECODE_STARTS]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(stripped, start)
        except (ValueError, RecursionError):
            continue
        if _looks_like_patches(value):
            return value
    raise AnswerRejected(RejectReason.INVALID_JSON, "no JSON object with patches was found in the answer "
                                         f"(it begins {stripped[:80]!r})")


def _looks_like_patches(value: Any) -> bool:
    if isinstance(value, dict):
        return "patches" in value or "file_path" in value
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _patch_list(data: Any) -> list[Any]:
    if isinstance(data, dict):
        if "patches" in data:
            items = data["patches"]
            if not isinstance(items, list):
                raise AnswerRejected(RejectReason.BAD_FORMAT, f"\"patches\" must be a list, got {type(items).__name__}")
            return items
        if "file_path" in data:
            return [data]
        raise AnswerRejected(RejectReason.BAD_FORMAT, "the JSON object has no \"patches\" list")
    if isinstance(data, list):
        return data
    raise AnswerRejected(RejectReason.BAD_FORMAT, f"expected an object or an array, got {type(data).__name__}")


def _patch(item: Any, n: int) -> Patch:
    where = f"patch {n}"
    if not isinstance(item, dict):
        raise AnswerRejected(RejectReason.BAD_FORMAT, f"{where} is a {type(item).__name__}, not an object")
    file_path = _text(item, "file_path", where, required=True)
    mode = _mode(item, where)
    where = f"patch {n} ({file_path})"
    if mode == "unified_diff":
        return Patch(file_path, mode, diff=_text(item, "diff", where, required=True, nonempty=True))
    if mode == "search_replace":
        search = _text(item, "search", where, required=True, nonempty=True)
        replace = _text(item, "replace", where, required=True)
        if search == replace:
            raise AnswerRejected(RejectReason.NO_CHANGE, f"{where}: search and replace are the same text")
        return Patch(file_path, mode, search=search, replace=replace)
    start = _line(item, "start_line", where)
    end = _line(item, "end_line", where)
    if end < start:
        raise AnswerRejected(RejectReason.BAD_RANGE, f"{where}: end_line {end} is before start_line {start}")
    expected = _text(item, "expected", where, required=False) if item.get("expected") is not None else None
    return Patch(file_path, mode, start_line=start, end_line=end, code=_text(item, "code", where, required=True),
                 expected=expected)


def _mode(item: dict[str, Any], where: str) -> str:
    raw = item.get("mode")
    if raw is None:
        if "diff" in item:
            return "unified_diff"
        if "search" in item:
            return "search_replace"
        if "start_line" in item:
            return "replace_range"
        raise AnswerRejected(RejectReason.BAD_FORMAT, f"{where} has no \"mode\" (one of {', '.join(PATCH_MODES)})")
    if not isinstance(raw, str) or raw.strip().lower() not in _MODE_ALIASES:
        raise AnswerRejected(RejectReason.BAD_FORMAT, f"{where} has an unknown mode {str(raw)[:40]!r}; expected one of "
                                           f"{', '.join(PATCH_MODES)}")
    return _MODE_ALIASES[raw.strip().lower()]


def _text(item: dict[str, Any], key: str, where: str, *, required: bool, nonempty: bool = False) -> str:
    value = item.get(key)
    if value is None:
        if required:
            raise AnswerRejected(RejectReason.BAD_FORMAT, f"{where} lacks \"{key}\"")
        return ""
    if not isinstance(value, str):
        raise AnswerRejected(RejectReason.BAD_FORMAT, f"{where}: \"{key}\" must be a string, got {type(value).__name__}")
    if nonempty and not value.strip():
        raise AnswerRejected(RejectReason.BAD_FORMAT, f"{where}: \"{key}\" is empty")
    return value


def _line(item: dict[str, Any], key: str, where: str) -> int:
    value = item.get(key)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnswerRejected(RejectReason.BAD_FORMAT, f"{where}: \"{key}\" must be a line number, got {str(value)[:20]!r}")
    if value < 1:
        raise AnswerRejected(RejectReason.BAD_RANGE, f"{where}: \"{key}\" is {value}; lines count from 1")
    return value
