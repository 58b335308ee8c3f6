"""Reading answers as LLMs really send them: bare, fenced, wrapped in prose, with modes spelled loosely."""

from __future__ import annotations

import json

import pytest

from phoenix_sidecar.errors import AnswerRejected
from phoenix_sidecar.repair.patch.answer import parse_answer
from phoenix_sidecar.repair.model import Patch

SR = {"file_path": "train.py", "mode": "search_replace", "search": "a = 1", "replace": "a = 2"}
EXPECTED = [Patch("train.py", "search_replace", search="a = 1", replace="a = 2")]


@pytest.mark.parametrize("text", [
    json.dumps({"patches": [SR]}),
    json.dumps([SR]),
    json.dumps(SR),
    "```json\n" + json.dumps({"patches": [SR]}) + "\n```",
    "Here is my fix.\n\n```\n" + json.dumps([SR]) + "\n```\nIt sets a to 2.",
    "The bug is in train.py. " + json.dumps({"patches": [SR], "explanation": "a was wrong"}) + " Good luck!",
    "\ufeff  " + json.dumps({"patches": [SR, SR]}) + "\n",
])
def test_answer_shapes(text: str) -> None:
    assert parse_answer(text) == EXPECTED


def test_modes_are_inferred_and_aliases_accepted() -> None:
    answer = [
        {"file_path": "a.py", "diff": "@@\n-x\n+y\n"},
        {"file_path": "b.py", "search": "x", "replace": "y"},
        {"file_path": "c.py", "start_line": "3", "end_line": 4, "code": "z\n"},
        {"file_path": "d.py", "mode": "Search-Replace", "search": "x", "replace": "y"},
        {"file_path": "e.py", "mode": "udiff", "diff": "@@\n-x\n+y\n"},
        {"file_path": "f.py", "mode": "replace_range", "start_line": 1, "end_line": 1, "code": "q", "expected": None},
    ]
    patches = parse_answer(json.dumps(answer))
    assert [p.mode for p in patches] == ["unified_diff", "search_replace", "replace_range", "search_replace",
                                         "unified_diff", "replace_range"]
    assert patches[2].start_line == 3 and patches[5].expected is None


@pytest.mark.parametrize("answer,reason", [
    ({"patches": [{"file_path": "a.py", "mode": "replace_range", "start_line": 5, "end_line": 2, "code": ""}]},
     "bad_range"),
    ({"patches": [{"file_path": "a.py", "mode": "replace_range", "start_line": 0, "end_line": 2, "code": ""}]},
     "bad_range"),
    ({"patches": [{"file_path": "a.py", "mode": "search_replace", "search": "  ", "replace": "x"}]}, "bad_format"),
    ({"patches": [{"file_path": "a.py", "mode": "unified_diff"}]}, "bad_format"),
    ({"patches": [{"mode": "search_replace", "search": "a", "replace": "b"}]}, "bad_format"),
    ({"patches": [{"file_path": "a.py", "mode": "search_replace", "search": "a", "replace": True}]}, "bad_format"),
    ({"patches": [["a.py"]]}, "bad_format"),
    ({"fix": "a = 2"}, "bad_format"),
    (42, "bad_format"),
])
def test_malformed_answers_name_what_is_wrong(answer: object, reason: str) -> None:
    with pytest.raises(AnswerRejected) as info:
        parse_answer(json.dumps(answer))
    assert info.value.reason == reason
    assert "patch" in str(info.value) or reason == "bad_format"


def test_json_inside_prose_that_is_not_patches_is_not_taken() -> None:
    with pytest.raises(AnswerRejected) as info:
        parse_answer('The config {"lr": 0.1} looks fine; I have no patch.')
    assert info.value.reason == "invalid_json" and "begins" in str(info.value)
