"""The diffs LLMs really write (reference section 6, cases 1-24): applied where they are unambiguous, refused where not."""

from __future__ import annotations

import difflib
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoenix_sidecar.errors import AnswerRejected
from phoenix_sidecar.repair.patch.apply import apply_patches
from phoenix_sidecar.repair.model import Patch
from phoenix_sidecar.repair.safety import changed_lines, check_added

F = 'def main(args):\n    # show a greeting\n    print("Hello!")\n    return\n'
BYE = F.replace("Hello!", "Bye!")
HUNK = ' def main(args):\n     # show a greeting\n-    print("Hello!")\n+    print("Bye!")\n'
LONG = '''import os


def load(path):
    with open(path) as fh:
        return fh.read()


def main(args):
    # show a greeting
    print("Hello!")
    data = load(args[0])
    return len(data)
'''


def apply(diff: str = "", text: str = F, *, path: str = "x.py", mode: str = "unified_diff",
          shown: dict[str, str] | None = None, **fields) -> str:
    """The new text of ``path`` (the old text when nothing changed); raises AnswerRejected."""
    patch = Patch(path, mode, diff=diff, **fields)
    result = apply_patches([(patch, path)], lambda _rel: text, shown=shown)
    return result.texts.get(path, text)


def rejected(reason: str, *args, **kwargs) -> AnswerRejected:
    with pytest.raises(AnswerRejected) as info:
        apply(*args, **kwargs)
    assert info.value.reason == reason, info.value
    return info.value


# 1
@pytest.mark.parametrize("header", ["@@ ... @@", "@@", "@@ @@", "@@@ ... @@@"])
def test_01_numberless_hunk_header(header: str) -> None:
    assert apply(f"{header}\n{HUNK}") == BYE


# 2
def test_02_wrong_line_numbers_are_ignored_in_favour_of_context() -> None:
    assert apply(f"--- a/x.py\n+++ b/x.py\n@@ -40,3 +40,3 @@\n{HUNK}") == BYE


# 3
@pytest.mark.parametrize("counts", ["-1,1 +1,1", "-1,40 +1,40", "-1 +1"])
def test_03_wrong_hunk_counts_are_recounted(counts: str) -> None:
    assert apply(f"--- a/x.py\n+++ b/x.py\n@@ {counts} @@\n{HUNK}") == BYE


# 4
def test_04_missing_context_line_is_tolerated_when_the_change_is_unique() -> None:
    diff = '@@ @@\n def main(args):\n-    print("Hello!")\n+    print("Bye!")\n'
    assert apply(diff) == BYE


# 5
def test_05_new_line_not_marked_plus_is_recognised() -> None:
    diff = '@@ @@\n def main(args):\n     import sys\n     # show a greeting\n-    print("Hello!")\n+    print("Bye!")\n'
    assert apply(diff) == 'def main(args):\n    import sys\n    # show a greeting\n    print("Bye!")\n    return\n'


# 6
def test_06_uniformly_outdented_hunk_is_reindented() -> None:
    diff = '@@ @@\n # show a greeting\n-print("Hello!")\n+print("Bye!")\n+print("again")\n return\n'
    assert apply(diff) == F.replace('    print("Hello!")\n', '    print("Bye!")\n    print("again")\n')


def test_06_uniformly_overindented_hunk_is_reindented() -> None:
    diff = '@@ @@\n         # show a greeting\n-        print("Hello!")\n+        print("Bye!")\n'
    assert apply(diff) == BYE


def test_06_non_uniform_indentation_is_not_a_match() -> None:
    diff = '@@ @@\n # show a greeting\n-        print("Hello!")\n+print("Bye!")\n'
    rejected("no_match", diff)


# 7
def test_07_trailing_whitespace_and_tabs_differences() -> None:
    diff = '@@ @@\n     # show a greeting  \t\n-    print("Hello!")   \n+    print("Bye!")\n'
    assert apply(diff) == BYE
    tabbed = F.replace("    # show", "\t# show").replace('    print("Hello!")', '\tprint("Hello!")')
    diff = '@@ @@\n     # show a greeting\n-    print("Hello!")\n+    print("Bye!")\n'
    assert apply(diff, tabbed) == tabbed.replace('\tprint("Hello!")', '\tprint("Bye!")')
    added = '@@ @@\n     # show a greeting\n+    if args:\n+        print("args")\n'
    assert apply(added, tabbed) == tabbed.replace("\t# show a greeting\n", '\t# show a greeting\n\tif args:\n\t\tprint("args")\n')


# 8
def test_08_typographic_quotes_and_dashes_match_ascii() -> None:
    diff = '@@ @@\n     # show a greeting\u2014\n-    print(\u201cHello!\u201d)\n+    print("Bye!")\n'
    text = F.replace("greeting", "greeting-")
    assert apply(diff, text) == text.replace('"Hello!"', '"Bye!"')


# 9
def test_09_blank_context_line_without_leading_space() -> None:
    diff = '@@ @@\n     return fh.read()\n\n\n def main(args):\n-    # show a greeting\n+    # say goodbye\n'
    assert apply(diff, LONG) == LONG.replace("# show a greeting", "# say goodbye")


def test_09_missing_and_extra_blank_context_lines() -> None:
    missing = '@@ @@\n     return fh.read()\n def main(args):\n-    # show a greeting\n+    # say goodbye\n'
    assert apply(missing, LONG) == LONG.replace("# show a greeting", "# say goodbye")
    extra = '@@ @@\n import os\n\n\n\n\n def load(path):\n-    with open(path) as fh:\n+    with open(path, encoding="utf-8") as fh:\n'
    assert apply(extra, LONG) == LONG.replace("open(path)", 'open(path, encoding="utf-8")')


# 10
def test_10_crlf_diff_and_crlf_file_keep_their_line_endings() -> None:
    crlf_diff = ("--- a/x.py\r\n+++ b/x.py\r\n@@ -1,4 +1,4 @@\r\n" + HUNK.replace("\n", "\r\n"))
    assert apply(crlf_diff) == BYE
    crlf_file = F.replace("\n", "\r\n")
    assert apply(f"@@ @@\n{HUNK}", crlf_file) == BYE.replace("\n", "\r\n")
    assert apply(crlf_diff, crlf_file) == BYE.replace("\n", "\r\n")


# 11
def test_11_no_newline_at_end_of_file_is_preserved() -> None:
    text = F.rstrip("\n")
    diff = '@@ -2,3 +2,3 @@\n     print("Hello!")\n-    return\n\\ No newline at end of file\n+    return 0\n\\ No newline at end of file\n'
    assert apply(diff, text) == text.replace("    return", "    return 0")
    appended = '@@ @@\n     print("Hello!")\n     return\n+print("done")\n'
    assert apply(appended, text) == text + '\nprint("done")'


# 12
def test_12_hunks_without_headers_reuse_the_last_file() -> None:
    diff = ('--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n import os\n-\n+import sys\n'
            '@@ -10,2 +10,2 @@\n     # show a greeting\n-    print("Hello!")\n+    print("Bye!")\n')
    assert apply(diff, LONG) == LONG.replace("import os\n\n", "import os\nimport sys\n", 1).replace("Hello!", "Bye!")
    headerless = '@@ -9,3 +9,3 @@\n def main(args):\n     # show a greeting\n-    print("Hello!")\n+    print("Bye!")\n'
    assert apply(headerless, LONG) == LONG.replace("Hello!", "Bye!")


def test_12_missing_at_at_line_after_the_headers() -> None:
    diff = '--- a/x.py\n+++ b/x.py\n     # show a greeting\n-    print("Hello!")\n+    print("Bye!")\n'
    assert apply(diff) == BYE


# 13
@pytest.mark.parametrize("old,new", [
    ("a/x.py", "b/x.py"), ("x.py", "x.py"), ("./x.py", "./x.py"), ("i/x.py", "w/x.py"),
    ("a/x.py\t2024-01-01 10:00:00.000000000 +0000", "b/x.py\t2024-01-01 10:00:01.000000000 +0000"),
    ("/workspace/x.py", "/workspace/x.py"), ('"a/x.py"', '"b/x.py"'),
])
def test_13_path_prefix_variants(old: str, new: str) -> None:
    assert apply(f"--- {old}\n+++ {new}\n@@ -1,4 +1,4 @@\n{HUNK}") == BYE


def test_13_header_naming_another_file_is_refused() -> None:
    rejected("diff_mismatch", f"--- a/other.py\n+++ b/other.py\n@@ -1,4 +1,4 @@\n{HUNK}")


# 14
def test_14_fences_and_prose_around_the_diff() -> None:
    diff = f"Here is the fix:\n\n```diff\n--- a/x.py\n+++ b/x.py\n@@ -1,4 +1,4 @@\n{HUNK}```\n\nThis prints Bye instead."
    assert apply(diff) == BYE
    assert apply(f"The change below fixes it.\n--- a/x.py\n+++ b/x.py\n@@ -1,4 +1,4 @@\n{HUNK}\nDone.\n") == BYE


# 15
def test_15_one_hunk_that_jumps_between_regions_is_split() -> None:
    diff = ('@@ @@\n import os\n-\n+import sys\n'  # region 1 ...
            '     # show a greeting\n-    print("Hello!")\n+    print("Bye!")\n')  # ... region 2, no new @@
    assert apply(diff, LONG) == LONG.replace("import os\n\n", "import os\nimport sys\n", 1).replace("Hello!", "Bye!")


# 16
@pytest.mark.parametrize("marker", ["    # ... existing code ...", "    # ...", "    # rest of the function unchanged",
                                    "    // ... rest"])
def test_16_elision_markers_are_refused(marker: str) -> None:
    new = apply(f'@@ @@\n def main(args):\n     # show a greeting\n-    print("Hello!")\n+{marker}\n')
    added, _ = changed_lines(F, new)
    with pytest.raises(AnswerRejected) as info:
        check_added(added, "x.py")
    assert info.value.reason == "elision"


def test_16_a_real_ellipsis_body_is_not_elision() -> None:
    new = apply('@@ @@\n def main(args):\n     # show a greeting\n-    print("Hello!")\n+    ...\n')
    check_added(changed_lines(F, new)[0], "x.py")


# 17
def test_17_ambiguous_match_is_refused_and_more_context_resolves_it() -> None:
    text = "def a():\n    return\n\n\ndef b():\n    return\n"
    err = rejected("ambiguous", "@@ @@\n-    return\n+    return 1\n", text)
    assert "lines 2, 6" in str(err)
    assert apply("@@ @@\n def b():\n-    return\n+    return 1\n", text) == text[: text.rindex("return")] + "return 1\n"


def test_17_ambiguity_after_dropping_context_is_refused() -> None:
    text = "def a():\n    x = compute_value(1)\n\n\ndef b():\n    x = compute_value(1)\n"
    rejected("ambiguous", "@@ @@\n def c():\n-    x = compute_value(1)\n+    x = compute_value(2)\n", text)


def test_17_search_text_twice_is_ambiguous() -> None:
    text = "a = 1\nb = 1\n"
    rejected("ambiguous", text=text, mode="search_replace", search=" = 1", replace=" = 2")


# 18
def test_18_already_applied_patch_changes_nothing() -> None:
    result = apply_patches([(Patch("x.py", "unified_diff", diff=f"@@ @@\n{HUNK}"), "x.py")], lambda _r: BYE)
    assert result.texts == {}
    assert [s.status for s in result.statuses] == ["already_applied"]
    added = '@@ @@\n def main(args):\n+    import sys\n     # show a greeting\n'
    twice = apply(added)
    assert apply(added, twice) == twice  # an insertion already present is not inserted again


# 19
@pytest.mark.parametrize("fmt", ["{n}: {line}", "{n:>4} | {line}", "{n}\t{line}"])
def test_19_line_numbers_copied_from_a_viewer(fmt: str) -> None:
    lines = F.splitlines()
    ctx = "\n".join(" " + fmt.format(n=i + 1, line=lines[i]) for i in (0, 1))
    removed = fmt.format(n=3, line=lines[2])
    added = fmt.format(n=3, line='    print("Bye!")')
    diff = f"@@ @@\n{ctx}\n-{removed}\n+{added}\n"
    assert apply(diff) == BYE


def test_19_viewer_numbers_in_search_text() -> None:
    assert apply(mode="search_replace", search='2:     # show a greeting\n3:     print("Hello!")\n',
                 replace='2:     # show a greeting\n3:     print("Bye!")\n') == BYE


# 20
@pytest.mark.parametrize("wrap", [
    "*** Begin Patch ***\n*** Update File: x.py\n{hunk}*** End Patch ***\n",
    "*** Begin Patch\n*** Update File: x.py\n@@ def main(args):\n{hunk}*** End of File\n*** End Patch\n",
    "apply_patch <<'EOF'\n--- a/x.py\n+++ b/x.py\n{hunk}EOF\n",
    "  *** Begin Patch  \n*** Update File: x.py  \n{hunk}  *** End Patch\n",
])
def test_20_envelope_markers_and_heredocs(wrap: str) -> None:
    assert apply(wrap.format(hunk="@@\n" + HUNK)) == BYE


def test_20_add_and_delete_file_envelopes_are_refused() -> None:
    rejected("new_file", "*** Begin Patch\n*** Add File: x.py\n+print(1)\n*** End Patch\n")
    rejected("deletion", "*** Begin Patch\n*** Delete File: x.py\n*** End Patch\n")


# 21
def test_21_duplicate_hunks_apply_once() -> None:
    assert apply(f"@@ @@\n{HUNK}@@ @@\n{HUNK}") == BYE


def test_21_hunks_out_of_order() -> None:
    diff = ('@@ -10,2 +10,2 @@\n     # show a greeting\n-    print("Hello!")\n+    print("Bye!")\n'
            '@@ -1,2 +1,2 @@\n import os\n-\n+import sys\n')
    assert apply(diff, LONG) == LONG.replace("import os\n\n", "import os\nimport sys\n", 1).replace("Hello!", "Bye!")


def test_21_overlapping_hunks_are_refused() -> None:
    diff = (f"@@ @@\n{HUNK}"
            '@@ @@\n     # show a greeting\n-    print("Hello!")\n+    print("Ciao!")\n')
    rejected("overlap", diff)


# 22
def test_22_replace_range_off_by_one_is_relocated_by_expected() -> None:
    assert apply(mode="replace_range", start_line=2, end_line=2, code='    print("Bye!")\n',
                 expected='    print("Hello!")\n') == BYE
    assert apply(mode="replace_range", start_line=3, end_line=3, code='    print("Bye!")\n') == BYE


def test_22_replace_range_whose_expected_text_is_gone_is_refused() -> None:
    rejected("stale_range", mode="replace_range", start_line=3, end_line=3, code="x = 1\n", expected="y = 2\n")
    rejected("bad_range", mode="replace_range", start_line=3, end_line=9, code="x = 1\n")


def test_22_replace_range_on_a_file_changed_since_the_prompt_is_refused() -> None:
    rejected("stale_range", mode="replace_range", start_line=3, end_line=3, code="x\n", shown={"x.py": "0" * 64})


# 23
def test_23_a_patch_is_never_retargeted_to_another_file() -> None:
    # The search text exists only in another file; it is not searched for there.
    rejected("no_match", mode="search_replace", search="LAYERS = 2", replace="LAYERS = 3")


# 24 (all-or-nothing across files with real files: tests/integration/repair/test_unsafe_corpus.py and test_patch_cli.py)
def test_24_one_failing_patch_fails_the_whole_answer() -> None:
    good = Patch("a.py", "search_replace", search="a = 1", replace="a = 2")
    bad = Patch("b.py", "search_replace", search="nowhere", replace="x")
    with pytest.raises(AnswerRejected) as info:
        apply_patches([(good, "a.py"), (bad, "b.py")], lambda rel: {"a.py": "a = 1\n", "b.py": "b = 1\n"}[rel])
    assert info.value.file_path == "b.py"


def test_patches_of_one_file_that_build_on_each_other() -> None:
    first = Patch("x.py", "search_replace", search='print("Hello!")', replace='print("Bye!")')
    second = Patch("x.py", "search_replace", search='    print("Bye!")\n    return\n',
                   replace='    print("Bye!")\n    return 1\n')
    result = apply_patches([(first, "x.py"), (second, "x.py")], lambda _r: F)
    assert result.texts["x.py"] == BYE.replace("return\n", "return 1\n")


def test_no_match_says_where_the_closest_line_is() -> None:
    err = rejected("no_match", '@@ @@\n def main(args):\n-    print("Helo!")\n+    print("Bye!")\n    unrelated()\n',
                   text=F.replace("# show a greeting\n", ""))
    assert "closest line in the file is 2" in str(err)


# -- property: a diff difflib wrote applies exactly, whatever its header claims, or is refused ------
VOCAB = ["x = 1", "y = 2", "return x", "", "    pass", "print(x)", "z = x + y", "# note", "def f():", "    return y"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.sampled_from(VOCAB), min_size=3, max_size=30), data=st.data())
def test_property_difflib_diffs_apply_exactly_or_are_refused(lines: list[str], data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(lines) - 1))
    end = data.draw(st.integers(start, min(len(lines), start + 4)))
    replacement = data.draw(st.lists(st.text("abcdefgh =+()", min_size=1, max_size=12), max_size=4))
    old = "\n".join(lines) + "\n"
    new_lines = lines[:start] + [f"new_{r}" for r in replacement] + lines[end:]
    new = "\n".join(new_lines) + "\n"
    if old == new:
        return
    diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "a/x.py", "b/x.py", n=2))
    mangle = data.draw(st.sampled_from(["none", "numbers", "counts", "strip"]))
    if mangle == "numbers":
        diff = re.sub(r"@@ -\d+", "@@ -999", diff)
    elif mangle == "counts":
        diff = re.sub(r"@@ -(\d+),\d+ \+(\d+),\d+ @@", r"@@ -\1,1 +\2,1 @@", diff)
    elif mangle == "strip":
        diff = re.sub(r"(?m)^@@.*@@$", "@@ ... @@", diff)
    try:
        result = apply(diff, old)
    except AnswerRejected as exc:
        assert exc.reason in ("ambiguous", "no_match", "overlap"), exc
        return
    assert result == new, (diff, result)


@settings(max_examples=80, deadline=None)
@given(n=st.integers(4, 40), data=st.data())
def test_property_unique_lines_always_apply(n: int, data: st.DataObject) -> None:
    lines = [f"line_{i} = {i}" for i in range(n)]
    start = data.draw(st.integers(0, n - 1))
    end = data.draw(st.integers(start + 1, min(n, start + 3)))
    new_lines = lines[:start] + ["changed()"] + lines[end:]
    old, new = "\n".join(lines) + "\n", "\n".join(new_lines) + "\n"
    diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "a/x.py", "b/x.py"))
    assert apply(re.sub(r"(?m)^@@.*@@$", "@@ -1,1 +1,1 @@", diff), old) == new


def test_a_reindenting_change_is_not_mistaken_for_an_applied_one() -> None:
    text = "if ready:\n    pass\nx = compute_value(1)\n"
    # The old line is misquoted, and the new line equals a file line but for its indentation:
    # that is not "already applied", it is not found.
    rejected("no_match", "@@ @@\n-x = compute_value(2)\n+    x = compute_value(1)\n", text)


# Context must match: a hunk written for another version of the file is refused, not placed by its removed line.
def test_a_hunk_whose_context_is_nowhere_in_the_file_is_refused() -> None:
    other_version = ('@@ -10,5 +10,5 @@\n def greet(name, loud=False):\n     """Say hello."""\n'
                     '     # show a greeting\n-    print("Hello!")\n+    print("Bye!")\n     return name\n')
    err = rejected("context_mismatch", other_version, LONG)
    assert "greet" in str(err) or "Say hello" in str(err) or "return name" in str(err)


def test_a_hunk_with_unknown_context_lines_is_refused_though_its_core_matches() -> None:
    # (One unknown line among real ones is taken as a new line the model forgot to mark "+": test 5.)
    diff = ('@@ @@\n def main(args):\n     # show a greeting\n-    print("Hello!")\n+    print("Bye!")\n'
            '     log.flush()\n     metrics.close()\n')
    rejected("context_mismatch", diff)
