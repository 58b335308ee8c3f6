"""Patches far from every frame of the failure are flagged (not refused): proximity's rules."""

from __future__ import annotations

from phoenix_sidecar.repair.proximity import FAR_LINES, changed_line_numbers, far_changes

BEFORE = "".join(f"line {n}\n" for n in range(1, 201))


def _edit(text: str, line: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[line - 1] = new
    return "".join(lines)


def test_changed_lines_are_numbered_in_the_original_file() -> None:
    after = _edit(BEFORE, 7, "seven\n")
    assert changed_line_numbers(BEFORE, after) == [7]
    inserted = BEFORE.replace("line 10\n", "line 10\nnew\n")
    assert changed_line_numbers(BEFORE, inserted) == [11]
    deleted = BEFORE.replace("line 150\n", "")
    assert changed_line_numbers(BEFORE, deleted) == [150]


def test_a_change_at_or_near_a_frame_is_not_flagged() -> None:
    after = _edit(BEFORE, 100, "fixed\n")
    assert far_changes([("train.py", BEFORE, after)], {"train.py": (100,)}) == []
    near = _edit(BEFORE, 100 + FAR_LINES, "fixed in the callee\n")
    assert far_changes([("train.py", BEFORE, near)], {"train.py": (100,)}) == []


def test_a_file_whose_every_change_is_far_from_every_frame_is_flagged() -> None:
    after = _edit(_edit(BEFORE, 5, "a\n"), 190, "b\n")
    [far] = far_changes([("train.py", BEFORE, after)], {"train.py": (100, 120)})
    assert (far.file, far.changed, far.nearest_frame, far.distance) == ("train.py", (5, 190), 120, 70)
    assert far.to_json() == {"file": "train.py", "changed": [5, 190], "nearest_frame": 120, "distance": 70}


def test_one_near_change_clears_the_file_and_files_without_frames_are_never_flagged() -> None:
    after = _edit(_edit(BEFORE, 5, "a\n"), 101, "b\n")
    assert far_changes([("train.py", BEFORE, after)], {"train.py": (100,)}) == []
    config = _edit(BEFORE, 3, "batch_size: 16\n")
    assert far_changes([("config.yaml", BEFORE, config)], {"config.yaml": ()}) == []
    assert far_changes([("other.py", BEFORE, config)], {}) == []
