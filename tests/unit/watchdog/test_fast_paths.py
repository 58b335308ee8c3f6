"""The fast paths of the diagnosis give what the straightforward algorithms they replaced give.

`markers.scan_markers` searches digit-folded line shapes once each and classifies each distinct
text once; the straightforward scan searched every line and classified every hit. `logtext.split_log`
asks the whole text once what no line can hold (carriage returns, over-long lines, glued bars) and
builds its lines in C; the straightforward loop asked every line. Both sides are run here on
corpus logs and on logs drawn by hypothesis, and must agree line for line.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoenix_watchdog.diagnosis import logtext as T
from phoenix_watchdog.diagnosis import markers as M
from phoenix_watchdog.diagnosis import pytrace as P
from phoenix_watchdog.diagnosis.logtext import LogLine, split_log
from phoenix_watchdog.diagnosis.nccl import judge_blocks
from phoenix_watchdog.diagnosis.prefixes import SAMPLE_LINES, find_prefix
from phoenix_watchdog.diagnosis.pytrace import parse_tracebacks
from phoenix_watchdog.diagnosis.categories import Category
from phoenix_watchdog.diagnosis.rulebook import BUILTIN, NEEDLES
from phoenix_watchdog.diagnosis.rules import Rule, user_rules

D = importlib.import_module("phoenix_watchdog.diagnosis.diagnose")  # the package exports the function under this name
LOGS = Path(__file__).resolve().parents[2] / "data" / "logs"
CORPUS = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in sorted(LOGS.glob("*.log"))}
CORPUS_LINES = sorted({ln.text for text in CORPUS.values() for ln in split_log(text)})
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_scan(lines: list[LogLine], skip: set[int], rules=BUILTIN) -> list[M.Finding]:
    """Every line searched for a trigger, every hit classified: what `scan_markers` must equal."""
    user = M._user_trigger(rules)
    hits = {i for i, ln in enumerate(lines) if not ln.text.startswith("frame #") and M._TRIGGER.search(ln.text)}
    if user is not None:
        hits |= {i for i, ln in enumerate(lines) if not ln.text.startswith("frame #") and user.search(ln.text)}
    found: list[M.Finding] = []
    for i in sorted(hits - skip):
        f = M.classify_line(lines[i], rules) or M._classify_wrapped(lines, i, rules)
        if f is not None and not (found and found[-1] == f):  # both halves of a wrapped message hit
            found.append(f)
    return found


def as_lines(texts: list[str], streams: list[str | None]) -> list[LogLine]:
    return [LogLine(i, t, streams[i % len(streams)]) for i, t in enumerate(texts)]


def test_scan_equals_reference_on_every_corpus_log() -> None:
    for name, text in CORPUS.items():
        lines = split_log(text)
        code: set[int] = set()
        parse_tracebacks(lines, code)
        assert M.scan_markers(lines, code) == reference_scan(lines, code), name


words = st.sampled_from([*M.TRIGGERS, *NEEDLES, "Errno 5", "Errno 28", "Errno 12", "Signal 11", "exitcode: -9",
                         "frame #", "loss", "step", "Rank ", " ", ": ", "(", ")", "[", "]"])
digits = st.integers(0, 99999).map(str)
fragments = st.one_of(words, digits, st.text(alphabet="abcdefgINFOXid:-_ 0123456789", max_size=8))
made_up = st.lists(fragments, max_size=8).map("".join)
texts = st.lists(st.one_of(made_up, st.sampled_from(CORPUS_LINES)), max_size=60)


@SETTINGS
@given(base=texts, repeat=st.integers(1, 4), streams=st.lists(st.sampled_from([None, "rank0", "rank7"]), min_size=1, max_size=3))
def test_scan_equals_reference_on_drawn_lines(base: list[str], repeat: int, streams: list[str | None]) -> None:
    lines = as_lines(base * repeat, streams)  # repeats: the per-text memo must keep each line's own place
    skip = set(range(0, len(lines), 5))
    assert M.scan_markers(lines, skip) == reference_scan(lines, skip)


def test_scan_equals_reference_with_user_rules_and_newlines() -> None:
    rules = (*user_rules([{"pattern": r"^custom failure \d+$", "category": "code_bug"}]), *BUILTIN)
    texts_ = ["custom failure 12", "ok", "two\nlines with NCCL error", "Errno 5 here", "frame #3: NCCL error"]
    lines = as_lines(texts_ * 3, [None])
    assert M.scan_markers(lines, set(), rules) == reference_scan(lines, set(), rules)


def reference_strip_prefixes(line: str) -> tuple[str, str | None]:
    """`strip_prefixes` as it was: each prefix sliced off in turn, each key read from its match."""
    key: str | None = None
    for _ in range(4):
        if not line:
            break
        first = line[0]
        if first == "[" and line.startswith("[rank"):
            close = line.find("]", 5, 12)
            if close > 5 and line[5:close].isdigit():
                key = key or f"rank{int(line[5:close])}"
                line = line[close + 1:]
                line = line[1:] if line.startswith(":") else line
                line = line[1:] if line.startswith(" ") else line
                continue
        if first == "[":
            m = T._BRACKET.match(line)
        elif first.isdigit() or (first == " " and line[:4].lstrip()[:1].isdigit()):
            m = T._DIGIT.match(line)
        elif first.isalpha() and ":" in line[:64]:
            m = T._LETTER.match(line)
        else:
            break
        if not m or m.end() == 0:
            break
        if key is None:
            g = m.groupdict()
            for group, name in (("rank", "rank"), ("local", "local"), ("mpi", "rank"), ("task", "rank")):
                if g.get(group) is not None:
                    key = f"{name}{int(g[group])}"
                    break
            else:
                key = f"{g['host']}:{int(g['hrank'])}" if g.get("host") is not None else None
        line = line[m.end():]
    return line, key


def reference_strip_known(raw: str) -> tuple[str, str | None]:
    raw = T.last_overwrite(raw)[:T.MAX_LINE_CHARS]
    return reference_strip_prefixes(raw) if raw else (raw, None)


def test_prefix_regexes_read_digits_only_as_digits() -> None:
    """`split_log` scans each digit-folded line shape once (`_scan_prefixes`): exact only while no
    prefix pattern holds a literal digit (or a backreference) outside a ``{m,n}`` repeat count."""
    for rx in (T._BRACKET, T._DIGIT, T._LETTER):
        pattern = re.sub(r"(?m)#.*$", "", rx.pattern) if rx.flags & re.VERBOSE else rx.pattern  # comments
        assert not re.search(r"\d", re.sub(r"\{\d+(?:,\d*)?\}", "", pattern)), rx.pattern


prefix_lines = st.lists(st.tuples(st.sampled_from(["", "[rank3]:", "[rank12]: ", "[rank4] ", "[default1]:", "0: ",
                                                   "  7: ", "node-a3:2: ", "[1,3]<stderr>:", "[E1206 18:44:13.37 x.cpp:616] ",
                                                   "2025-01-02T03:04:05.123Z ", "I1206 18:44:13.37 99 x.cpp:6] ",
                                                   "[Rank 4] ", "a.py:3: ", "x", "[rank٣]:", "ip-10-0-0-1:07: "]),
                                  st.sampled_from(["", "step 1", ":", " ", "9"])).map("".join), max_size=5).map("".join)


@SETTINGS
@given(line=st.one_of(prefix_lines, st.sampled_from(CORPUS_LINES)))
def test_strip_prefixes_equals_reference(line: str) -> None:
    assert T.strip_prefixes(line) == reference_strip_prefixes(line)


def test_split_reuses_prefix_scans_only_across_digits() -> None:
    """Lines of one digit-folded shape share a scan, each keeps its own digits and key."""
    text = "".join(f"[rank{i % 16}]:[E1206 18:44:{i % 60:02d}.{i} x.cpp:616] [Rank {i % 16}] step {i}\n"
                   f"node-{i % 3}:{i % 5}: tagged {i}\n" for i in range(1500))
    # Shapes the long way must catch though their digits differ: a header glued to a bar ("thread
    # 0x" folds to "thread 9x", as does "thread 5x"), a loguru frame, a bar with a message after it.
    odd = ("[rank1]:x 5Current thread 0x7f (most recent call first):\n[rank1]:x 5Current thread 5x7f\n"
           "[rank2]:> File \"a.py\", line 3\n[rank3]:9/9 [00:01<00:00, 5.0it/s]done\n")
    text = text + odd * 3 + text
    lines = split_log(text)
    assert lines == reference_split(text)
    assert lines[0] == LogLine(0, "[Rank 0] step 0", "rank0")
    assert lines[2999] == LogLine(2999, "tagged 1499", "node-2:4")
    assert LogLine(3001, "Current thread 0x7f (most recent call first):", "rank1") in lines


def reference_split(text: str) -> list[LogLine]:
    """`split_log` as a plain loop that asks every line every question."""
    if len(text) > T.MAX_CHARS:
        cut = text.find("\n", len(text) - T.MAX_CHARS)
        text = text[cut + 1:] if cut >= 0 else text[-T.MAX_CHARS:]
    raws = T.expand_json_tracebacks(T.strip_ansi(text)).split("\n")
    stripped = [reference_strip_known(raw) for raw in raws]
    prefix = find_prefix([line for line, _ in stripped[max(0, len(raws) - SAMPLE_LINES):] if line])
    out: list[LogLine] = []
    for line, key in stripped:
        if prefix is not None and line:
            line, found = prefix.strip(line)
            if line[:1] == "[":
                line, inner = reference_strip_prefixes(line)
                found = inner or found
            key = key or found
        line = line.rstrip()
        if line.startswith("> File \""):
            line = "  " + line[2:]
        elif line[:1] in "╭│╰" and line and (line := T.unbox(line)) is None:
            continue
        for part in T._split_glued(line) if T._BAR_END.search(line) else [line]:
            out += [LogLine(len(out) + k, piece, key) for k, piece in enumerate(T._unglue(part))]
    if out and not out[-1].text:
        out.pop()
    return out


def test_split_equals_reference_on_every_corpus_log() -> None:
    for name, text in CORPUS.items():
        assert split_log(text) == reference_split(text), name


decorations = st.sampled_from(["", "[rank3]:", "[rank12]: ", "[rank²]", "[default1]:", "0: ", "  7: ", "node-a3:2: ",
                               "[1,3]<stderr>:", "2025-01-02T03:04:05.123Z ", "[E1206 18:44:13.37 x.cpp:616] ",
                               "\x1b[31m", "\r", "abc\r", "45%|####| 9/20 [00:01<00:02, 5.00it/s]", "> ",
                               "╭──── Traceback (most recent call last) ────╮", "│ /w/t.py:3 in f │", "│ ❱ 3 │ x() │",
                               "Current thread 0x7f00 ", "thread 5x ", "step 9/s]", "[rank3]:> File \"a.py\""])
bodies = st.one_of(st.sampled_from(CORPUS_LINES), made_up, st.just("x" * (T.MAX_LINE_CHARS + 5)))
logs = st.lists(st.tuples(decorations, bodies).map("".join), max_size=40).map("\n".join)


@SETTINGS
@given(text=logs, lead=st.sampled_from(["", "step 1 | loss 2.0\n" * 1200]))
def test_split_equals_reference_on_drawn_logs(text: str, lead: str) -> None:
    # Over a thousand lines: the whole text is asked once, not each line; the drawn lines also sit
    # before the last `SAMPLE_LINES`, where each digit-folded shape is scanned once.
    text = lead + text + ("\n" + lead if lead else "")
    try:
        expected = reference_split(text)
    except ValueError:  # "[rank²]": isdigit() but not a number, in both
        with pytest.raises(ValueError):
            split_log(text)
        return
    assert split_log(text) == expected


@SETTINGS
@given(text=st.one_of(st.sampled_from(CORPUS_LINES), made_up,
                      st.sampled_from(["Segmentation fault (core dumped)", "x: line 3: 12 Killed python t.py", "a exitcode: -9",
                                       "<Signals.SIGKILL: 9>", "Signal 11 (SIGSEGV) received", "ok bus error"])))
def test_signalled_guard_equals_plain_search(text: str) -> None:
    """classify_line tries `_SIGNALLED` at 0, then elsewhere only where a signal word is: the same match."""
    fast = M._SIGNALLED.match(text) or ("ignal" in text or "exitcode" in text) and M._SIGNALLED.search(text, 1) or None
    plain = M._SIGNALLED.search(text)
    assert (fast and (fast.span(), fast.groupdict())) == (plain and (plain.span(), plain.groupdict()))


def shape_mask(text: str, rules=BUILTIN) -> tuple[bool, ...]:
    folded = text.translate(M._FOLD_DIGITS)
    return tuple(g is None or g.search(folded) is not None for g in M._shape_guards(rules))


USER_RULES = (*user_rules([{"pattern": r"custom failure \d+", "category": "code_bug"}]), *BUILTIN)
# Every rule with needles, one of them found only by a needle with digits: the rule table's gate is asked of shapes.
DIGIT_NEEDLE = (Rule("code_42", r"code 42\b", Category.CODE_BUG, needles=("code 42",)), *BUILTIN)


@SETTINGS
@given(text=st.one_of(st.sampled_from(CORPUS_LINES), made_up,
                      st.sampled_from(["OSError: [Errno 28] No space left on device", "OSError: [Errno 12] Cannot allocate memory",
                                       "NVRM: Xid (PCI:0000:3b:00): 79, pid=1", "custom failure 7", "IOError: [Errno 28] x", "w: code 42 x", "ECC error encountered 3"])),
       digits=st.lists(st.integers(0, 9), min_size=1, max_size=6))
def test_guards_asked_of_the_shape_give_the_plain_classification(text: str, digits: list[int]) -> None:
    """`scan_markers` asks `classify_line`'s needle guards of a line's digit-folded shape: a shape
    shared by lines with other digits must never skip a guard one of them needs."""
    cycle = itertools.cycle(digits)
    other = re.sub(r"\d", lambda m: str(next(cycle)), text)  # the same shape, other digits
    for rules in (BUILTIN, USER_RULES, DIGIT_NEEDLE):
        for t in (text, other):
            ln = LogLine(3, t, "rank1")
            assert M.classify_line(ln, rules, shape_mask(text, rules)) == M.classify_line(ln, rules)


def test_block_rejudging_gives_what_dataclasses_replace_gives() -> None:
    """`nccl.judge_blocks` builds its re-judged findings without `dataclasses.replace`: the same values."""
    for name in ("gpu_nccl_timeout_8ranks.log", *(n for n in CORPUS if "nccl" in n)):
        lines = split_log(CORPUS[name])
        code: set[int] = set()
        parse_tracebacks(lines, code)
        before = M.scan_markers(lines, code)
        after = judge_blocks(before, lines)
        assert len(after) == len(before)
        for old, new in zip(before, after):
            if new is old:
                continue
            expected = dataclasses.replace(old, category=new.category, strength=new.strength, key=new.key,
                                           rule=f"{old.rule}; NCCL block judged as a whole ({new.key})")
            assert type(new) is M.Finding and new == expected and hash(new) == hash(expected), name


def reference_parse(lines: list[LogLine]) -> tuple[list, set[int]]:
    """Every line fed to its stream's parser: what `parse_tracebacks`, which skips ordinary lines
    while a parser is idle, must equal."""
    done: list = []
    code: set[int] = set()
    parsers: dict = {}
    for ln in lines:
        if ln.stream not in parsers:
            parsers[ln.stream] = P._StreamParser(ln.stream, done, code)
        parsers[ln.stream].feed(ln)
    for parser in parsers.values():
        parser.finish()
    done.sort(key=lambda tb: tb.start)
    return done, code


def fast_parse(lines: list[LogLine]) -> tuple[list, set[int]]:
    code: set[int] = set()
    return parse_tracebacks(lines, code), code


def test_parse_equals_reference_on_every_corpus_log() -> None:
    for name, text in CORPUS.items():
        lines = split_log(text)
        assert fast_parse(lines) == reference_parse(lines), name


tb_lines = st.sampled_from(["Traceback (most recent call last):", '  File "/w/train.py", line 3, in <module>', "    x()",
                            "ValueError: bad", "RuntimeError: CUDA error", "Exception in thread Thread-1:",
                            "Exception ignored in: <function f>", "Exception raised from x", P.CAUSE, P.CONTEXT, "",
                            "  | ValueError: boxed", "  +-+---------------- 1 ----------------", "step 3 | loss 2.0",
                            # lines a message being read must hand to `feed` (log records) or may take itself
                            "I0102 03:04 x", "2025-01-02 03:04 done", "٢٠٢٥-01-02 03:04 x", "*****", "h:1:2 [3] NCCL INFO x",
                            "terminate called", "Fatal Python error: Aborted", "  exitcode  : -15 (pid: 4)", "  ", "Error 3"])


@SETTINGS
@given(base=st.lists(st.one_of(tb_lines, made_up, st.sampled_from(CORPUS_LINES)), max_size=60),
       streams=st.lists(st.sampled_from([None, "rank0", "rank7"]), min_size=1, max_size=3))
def test_parse_equals_reference_on_drawn_lines(base: list[str], streams: list[str | None]) -> None:
    lines = as_lines(base, streams)
    assert fast_parse(lines) == reference_parse(lines)


def test_parse_keeps_thread_announcements_read_while_idle() -> None:
    texts = ["step 1", "Exception in thread Thread-1:", "Traceback (most recent call last):",
             '  File "/w/a.py", line 3, in run', "    x()", "ValueError: bad", "step 2",
             "Exception ignored in: <function f>", "Traceback (most recent call last):",
             '  File "/w/a.py", line 9, in __del__', "    y()", "KeyError: 'k'"]
    lines = as_lines(texts, [None])
    found, _ = fast_parse(lines)
    assert [tb.thread for tb in found] == ["Thread-1", "<unraisable>"]
    assert fast_parse(lines) == reference_parse(lines)


def test_moved_finding_is_what_dataclasses_replace_gives() -> None:
    """`scan_markers` rebuilds a repeated line's finding without the dataclass ``__init__``: the same value."""
    for name in ("gpu_nccl_timeout_8ranks.log", "gpu_xid79_fallen_off_bus.log", *list(CORPUS)[:20]):
        for f in M.scan_markers(split_log(CORPUS[name]), set()):
            for pos, stream in ((f.pos + 7, "rank9"), (0, None)):
                new, expected = M._moved(f, pos, stream), dataclasses.replace(f, pos=pos, stream=stream)
                assert type(new) is M.Finding and new == expected and hash(new) == hash(expected)
                assert (new.pos, new.stream, f.pos) == (pos, stream, f.pos) and new.__dict__ == expected.__dict__
                with pytest.raises(dataclasses.FrozenInstanceError):
                    new.pos = 1  # type: ignore[misc]


@SETTINGS
@given(text=st.one_of(st.sampled_from(CORPUS_LINES), made_up, tb_lines,
                      st.lists(st.sampled_from(["a", "b.", "Error", "Exception", "Exit", ":", " ", ": x", "\t", "_", "9",
                                                "Failure", "Fault", "Interrupt", "rror", "INFO", "٣"]), max_size=8).map("".join)))
def test_bare_head_prefilter_rejects_only_what_the_regex_rejects(text: str) -> None:
    """`_bare_exception_candidates` skips a line whose text before its first ':' does not end in an
    exception-class ending, before the exception regex: exact only if the regex never passes such a line."""
    for t in (text, text.lstrip()):
        if not t[:t.find(":") % (len(t) + 1)].endswith(D._BARE_ENDINGS):
            m = P.looks_like_exception(t)
            assert m is None or not m["last"].endswith(D._BARE_ENDINGS), t


@pytest.mark.parametrize("line", ["I0102 03:04 x", "2025-01-02 03:04 done", "٢٠٢٥-01-02 03:04 x", "*****", "h:1:2 [3] NCCL INFO x",
                                  "terminate called", "Fatal Python error: Aborted", "Traceback (most recent call last):",
                                  P.CAUSE, P.CONTEXT, "Exception in thread T:", "Exception ignored in: f", "", "  ",
                                  '  File "/w/b.py", line 9, in g', "  | boxed", "  + x", "  exitcode  : -15 (pid: 4)", "E"])
def test_parse_reading_a_message_hands_every_special_line_to_feed(line: str) -> None:
    """`parse_tracebacks` appends a message's ordinary lines itself: any other line must end or
    change the message exactly as `feed` would."""
    texts = ["Traceback (most recent call last):", '  File "/w/a.py", line 3, in f', "    x()", "ValueError: bad",
             "detail one", line, "detail two", "", "", "step 9"]
    lines = as_lines(texts, [None])
    assert fast_parse(lines) == reference_parse(lines)
    long = texts[:4] + ["detail"] * (P.MAX_DETAIL_LINES + 3) + [line, "after"]
    assert fast_parse(as_lines(long, [None])) == reference_parse(as_lines(long, [None]))


# --- classify_line's answer reused across a digit-quiet shape (`digits`) ---

from phoenix_watchdog.diagnosis import classify as C  # noqa: E402
from phoenix_watchdog.diagnosis import digits as G  # noqa: E402

# Every regex `classify_line` asks, and whether it treats all digits alike; those that do not are
# each behind a word of `digits.DIGIT_WORDS` (the module docstring says which).
LINE_REGEXES = {M._XID: True, C.HARDWARE_TEXT: True, M._OOM_KILL: True, C.DISK_TEXT: False, C.HOST_OOM_TEXT: False,
                C.CUDA_OOM_TEXT: True, C.DEVICE_ASSERT_TEXT: True, C.ILLEGAL_TEXT: True, C.DATALOADER_TEXT: True,
                M._RAISED_FROM: True, M._NATIVE: False, M._ABORT: True, M._DIST_ABORT: True, C.NCCL_TEXT: False,
                C._NCCL_CODE: True, C._NCCL_ANY_CODE: True, C.NCCL_UNWIND: False, C.PEER_TEXT: True,
                C.NAN_LINE_TEXT: True, M._ARGPARSE: True, M._KILLED: True, M._SIGNALLED: True}


def test_digit_blindness_of_every_regex_classify_line_asks() -> None:
    assert {rx.pattern: G.digit_blind(rx) for rx in LINE_REGEXES} == {rx.pattern: b for rx, b in LINE_REGEXES.items()}
    assert not G.digit_blind(r"\bstatus=[1-9]|vendor err \d")  # `_nccl_failure`: behind "status="
    for pattern, blind in ((r"\d+[\d.]+\w*[^)]\S.", True), (r"(?<![A-Za-z0-9])x{2,40}", True), (r"[0-9a-f]+", True),
                           (r"Errno 28", False), (r"[1-6]", False), (r"(\d)\1", False), (r"[^0]", False), (r"(", False)):
        assert G.digit_blind(pattern) is blind, pattern


def test_quiet_gate_holds_the_needles_of_digit_reading_rules() -> None:
    gate = G.quiet_gate(DIGIT_NEEDLE)
    assert gate.search("w: code 99 x") and gate.search("[Errno 99]") and not gate.search("Watchdog caught collective")
    assert G.quiet_gate((*user_rules([{"pattern": r"code 4[0-5]", "category": "code_bug"}]), *BUILTIN)) is None


MESSAGE_KEYED = (Rule("msg", r"widget \w+ failed", Category.CODE_BUG, key="message", needles=("widget",)), *BUILTIN)
redigit_texts = st.lists(st.one_of(made_up, st.sampled_from(CORPUS_LINES),
                                   st.sampled_from(["widget 3 failed at step 12", "NVRM: Xid (PCI:0000:3b:00): 43, pid=1",
                                                    "Signal 15 (SIGTERM) received", "exitcode: -9", "w: code 42 x",
                                                    "NCCL INFO proxy.cc:12 -> 6", "NCCL WARN status=3 x",
                                                    "loss 1 is nan", "p: error: argument --lr 3"])), max_size=30)


@SETTINGS
@given(base=redigit_texts, digits=st.lists(st.integers(0, 9), min_size=1, max_size=6),
       rules=st.sampled_from([BUILTIN, USER_RULES, DIGIT_NEEDLE, MESSAGE_KEYED]))
def test_scan_reusing_shapes_equals_reference(base: list[str], digits: list[int], rules) -> None:
    """Lines of one shape with other digits: the reused answer is each line's own."""
    cycle = itertools.cycle(digits)
    others = [re.sub(r"\d", lambda m: str(next(cycle)), t) for t in base]
    lines = as_lines([t for pair in zip(base, others) for t in pair], [None, "rank1"])
    assert M.scan_markers(lines, set(), rules) == reference_scan(lines, set(), rules)


def test_scan_reusing_shapes_equals_reference_on_a_storm() -> None:
    storm = CORPUS["gpu_nccl_timeout_8ranks.log"]
    text = "".join(storm.replace("[rank", f"[rank{k}").replace("Rank ", f"Rank {k}") for k in range(6))
    lines = split_log(text)
    code: set[int] = set()
    parse_tracebacks(lines, code)
    assert M.scan_markers(lines, code) == reference_scan(lines, code)


def test_without_the_regex_internals_no_regex_is_trusted_and_the_scan_is_unchanged(monkeypatch) -> None:  # noqa: ANN001
    # `digits` reads CPython's internal regex parser; a Python that moved it must cost speed, never answers.
    monkeypatch.setattr(G, "P", None)
    G.quiet_gate.cache_clear()
    try:
        assert not G.digit_blind(r"\w+ error")
        storm = CORPUS["gpu_nccl_timeout_8ranks.log"]
        lines = split_log("".join(storm.replace("[rank", f"[rank{k}") for k in range(3)))
        code: set[int] = set()
        parse_tracebacks(lines, code)
        assert M.scan_markers(lines, code) == reference_scan(lines, code)
    finally:
        G.quiet_gate.cache_clear()
