"""`diagnose`: reduce a failed run (log tail, exit status, hang info) to a `Diagnosis`.

The steps, each in its own module:

1. `logtext.split_log` cleans the lines and tags each with the rank that wrote it;
2. `pytrace.parse_tracebacks` reads the Python tracebacks of every rank;
3. `markers.scan_markers` finds line-level evidence (Xid, NCCL watchdog, segfaults, OOM kills...);
   `launcher.find_root_cause` reads torchrun's summary of which rank failed first;
4. every piece of evidence becomes a candidate `Finding` with a strength (see `classify`), and the
   strongest wins; the rank torchrun names as root cause gets a small bonus, and among equals the
   earliest line (the first failure) wins;
5. `signature.make_signature` hashes the winner's identity.

Which traceback counts. In each stream the *last* traceback that is not a consequence (launcher
summary, interrupt, peer closed the connection) ended that process; earlier ones were handled
and it went on. A terminal traceback followed by many ordinary lines of its own stream was
handled too (a logged exception), so it is demoted below a later crash or kill. Across streams the
earliest failure wins, because ranks that fail later usually fail *because* the first one died.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from phoenix_watchdog.diagnosis import classify as C
from phoenix_watchdog.diagnosis.candidate import Candidate
from phoenix_watchdog.diagnosis.failure import Diagnosis, ExitStatus, HangInfo
from phoenix_watchdog.diagnosis.launcher import RootCause, find_root_cause
from phoenix_watchdog.diagnosis.logtext import LogLine, split_log
from phoenix_watchdog.diagnosis.nccl import judge_blocks
from phoenix_watchdog.diagnosis.markers import MAX_EVIDENCE_CHARS, Finding, exit_findings, scan_markers
from phoenix_watchdog.diagnosis.pytrace import PyError, SourceFrame, Traceback, UNRAISABLE, looks_like_exception, parse_tracebacks
from phoenix_watchdog.diagnosis.report import build_diagnosis, hang_diagnosis
from phoenix_watchdog.diagnosis.rulebook import BUILTIN
from phoenix_watchdog.diagnosis.rules import Rule
from phoenix_watchdog.diagnosis.stackparse import crashed_thread, parse_stacks
from phoenix_watchdog.diagnosis.trends import TREND, divergence_findings

STALE_AFTER_LINES = 40   # ordinary lines after a traceback that mean the process carried on
MAX_TRACEBACKS_PER_STREAM = 64  # a retry loop that logs the same error thousands of times
HANDLED = 25             # strength of an exception the process survived
PEER_LOST = C.SECONDARY + 5  # an error that only says a peer went away (see `classify.traceback_strength`)
ROOT_RANK_BONUS = 3
BARE_SCAN_LINES = 3000   # bare exception lines are looked for near the end only
MAX_BARE_STREAMS = 8
MAX_EXPLAINED = 12       # evidence lines `explain` lists
_DOTTED_BARE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+: \S")
_MISSING_RESULT = frozenset({"IndexError", "KeyError", "Empty", "StopIteration"})
_BARE_ENDINGS = ("Error", "Exception", "Failure", "Fault", "Interrupt", "Exit")
# Output that describes a failure rather than a process carrying on: stack dumps, C++ frames.
_DIAGNOSTIC_PREFIXES = ("Thread 0x", "Current thread", "Extension modules", "Fatal Python error",
                        "Stack (most recent", "  File \"", "  <no Python frame>", "frame #", "Exception raised from",
                        "CUDA kernel errors", "For debugging consider", "Compile with `TORCH_USE_CUDA_DSA`")


def diagnose(log_text: str, exit: ExitStatus | None = None, hang: HangInfo | None = None,
             workspace: str | None = None, rules: tuple[Rule, ...] = ()) -> Diagnosis:
    """What a failed run reduces to: category, signature, root exception, user frame, evidence.

    Args:
        log_text: the tail of the run's combined stdout/stderr.
        exit: how the process ended, when known.
        hang: set when the supervisor killed the job for silence; its stack locates the hang.
        workspace: the job's directory; frames under it are user code.
        rules: the user's own rules (`rules.user_rules`), consulted before the shipped ones.
    """
    lines = split_log(log_text)
    if hang is not None:
        return hang_diagnosis(hang, lines, exit, workspace)
    candidates, rank = _ranked_candidates(lines, exit, workspace, (*rules, *BUILTIN))
    winner = max(candidates, key=rank) if candidates else None
    context = _best_traceback(candidates)
    crash = _crash_frames(lines, winner) if winner and winner.finding.category == "segfault" else None
    return build_diagnosis(winner, context, crash, candidates, lines, exit, workspace)


def explain(log_text: str, exit: ExitStatus | None = None, workspace: str | None = None,
            rules: tuple[Rule, ...] = ()) -> list[str]:
    """Every piece of evidence, strongest first, with the rule that read it (``phoenix diagnose --explain``)."""
    lines = split_log(log_text)
    candidates, rank = _ranked_candidates(lines, exit, workspace, (*rules, *BUILTIN), every=True)
    out: list[str] = []
    ranked = sorted(candidates, key=rank, reverse=True)
    for c in ranked[:MAX_EXPLAINED]:
        f = c.finding
        strength, _ = rank(c)
        where = f"line {f.pos + 1}" if f.pos < len(lines) else "exit status"
        stream = f", {f.stream}" if f.stream else ""
        out.append(f"{f.category:<20} strength {strength:>3}  {where}{stream}: {f.line[:160]}")
        out.append(f"{'':<20} decided by {f.rule or 'built-in rules'}")
    if len(ranked) > MAX_EXPLAINED:
        out.append(f"... and {len(ranked) - MAX_EXPLAINED} weaker pieces of evidence")
    return out


def _ranked_candidates(lines: list[LogLine], exit: ExitStatus | None, workspace: str | None, rules: tuple[Rule, ...],
                       every: bool = False) -> tuple[list[Candidate], Callable[[Candidate], tuple[int, int]]]:
    code_lines: set[int] = set()
    tracebacks = parse_tracebacks(lines, code_lines)
    markers = judge_blocks(scan_markers(lines, code_lines, rules), lines)
    root = find_root_cause(lines)
    candidates = _traceback_candidates(tracebacks, lines, markers, workspace, rules)
    candidates += [Candidate(f) for f in markers]
    candidates += _bare_exception_candidates(lines, tracebacks, code_lines, workspace, rules)
    candidates += [Candidate(f) for f in exit_findings(exit, len(lines))]
    candidates += _root_cause_candidates(root, workspace, rules)
    if every or all(c.finding.strength < TREND for c in candidates):
        # A trend never outranks evidence of its own strength or more, so it is read only when needed.
        candidates += [Candidate(f) for f in divergence_findings(lines)]
    root_streams = root.streams if root else frozenset()

    def rank(c: Candidate) -> tuple[int, int]:
        bonus = ROOT_RANK_BONUS if c.finding.stream in root_streams else 0
        return (c.finding.strength + bonus, -c.finding.pos)

    return candidates, rank


def _why(v: C.ChainVerdict) -> str:
    if v.rule is not None:
        return v.rule.describe()
    return f"built-in exception rules ({v.decider.type} -> {v.category or 'a consequence of another failure'})"


def _traceback_candidates(tracebacks: list[Traceback], lines: list[LogLine], markers: list[Finding],
                          workspace: str | None, rules: tuple[Rule, ...]) -> list[Candidate]:
    tracebacks = _last_per_stream(tracebacks, MAX_TRACEBACKS_PER_STREAM)
    verdicts: dict[tuple[PyError, ...], C.ChainVerdict] = {}  # identical chains repeat in floods
    judged = []
    for tb in tracebacks:
        if tb.chain not in verdicts:
            verdicts[tb.chain] = C.classify_chain(tb.chain, workspace, rules)
        judged.append((tb, verdicts[tb.chain]))
    terminal: dict[str | None, Traceback] = {}
    for tb, v in judged:  # in log order, so the last one of each stream stays
        if not v.secondary and tb.thread is None:
            terminal[tb.stream] = tb
    for stream, tb in list(terminal.items()):
        if (dead := _dead_thread(tb, verdicts[tb.chain], judged, workspace)) is not None:
            terminal[stream] = dead
    spans = [(tb.start, tb.end) for tb in tracebacks]
    marker_lines = {f.pos for f in markers}
    out = []
    for tb, v in judged:
        strength = C.traceback_strength(v)
        if strength >= C.EXCEPTION and (terminal.get(tb.stream) is not tb
                                        or _carried_on(tb, lines, spans, marker_lines)):
            strength = HANDLED
        shown = f"{v.root.type}: {v.root.message}".strip()[:MAX_EVIDENCE_CHARS]
        finding = Finding(v.category or "unknown", strength, v.key, shown, tb.start, tb.stream, _why(v),
                          v.rule.action if v.rule else None)
        out.append(Candidate(finding, tb, v.root, _frames_root_last(tb.chain, v.root)))
    return out


def _bare_exception_candidates(lines: list[LogLine], tracebacks: list[Traceback], code_lines: set[int],
                               workspace: str | None, rules: tuple[Rule, ...]) -> list[Candidate]:
    """The last ``SomeError: message`` line of each stream printed outside any traceback.

    Loggers, launchers and frameworks often print just the exception line (``logger.error(e)``,
    a summary at exit). It is evidence of what went wrong, weaker than a traceback that ended a
    process and than a kill (it may have been survived), but a category and a key all the same.
    """
    spans = [(tb.start, tb.end) for tb in tracebacks]
    seen: set[str | None] = set()
    out: list[Candidate] = []
    for ln in reversed(lines[-BARE_SCAN_LINES:]):
        text = ln.text
        # The exception regex's type name runs up to the first ':' (or the end) and ends with the
        # last dotted part, so a head not ending in one of `_BARE_ENDINGS` cannot pass: an exact,
        # cheap test before any other (indentation stripped below leaves a head's ending as it is).
        if not text[:text.find(":") % (len(text) + 1)].endswith(_BARE_ENDINGS):
            continue
        if text[:1] in (" ", "\t") and ln.pos not in code_lines:
            # An indented line is evidence only as a dotted exception name (an excerpt quoted with
            # its traceback's indentation), never as source code under a frame line.
            text = text.lstrip()
            if not _DOTTED_BARE.match(text) or ln.pos and lines[ln.pos - 1].text.lstrip().startswith('File "'):
                continue
        if ln.stream in seen or not text or text[0] in " \t" or ln.pos in code_lines or ": " not in text[:120] \
                and not text.endswith(_BARE_ENDINGS):
            continue
        m = looks_like_exception(text)
        if m is None or not m["last"].endswith(_BARE_ENDINGS) or any(s <= ln.pos <= e for s, e in spans):
            continue
        if ln.pos and lines[ln.pos - 1].text.startswith(UNRAISABLE):
            continue  # an exception raised at teardown and ignored: it ended nothing
        seen.add(ln.stream)
        err = PyError(m["type"], (m["msg"] or "").strip(), (), ())
        v = C.classify_chain((err,), workspace, rules)
        if v.category is None:
            continue
        strength = C.BARE if not v.secondary else C.SECONDARY
        finding = Finding(v.category, strength, v.key, text.strip()[:MAX_EVIDENCE_CHARS], ln.pos, ln.stream,
                          "bare exception line: " + _why(v), v.rule.action if v.rule else None)
        out.append(Candidate(finding, None, err, ()))
        if len(seen) >= MAX_BARE_STREAMS:
            break
    return out


def _last_per_stream(tracebacks: list[Traceback], limit: int) -> list[Traceback]:
    """The last ``limit`` tracebacks of each stream, in log order: earlier ones were survived."""
    seen: dict[str | None, int] = {}
    kept = []
    for tb in reversed(tracebacks):
        seen[tb.stream] = seen.get(tb.stream, 0) + 1
        if seen[tb.stream] <= limit:
            kept.append(tb)
    return kept[::-1]


def _frames_root_last(chain: tuple[PyError, ...], root: PyError) -> tuple[SourceFrame, ...]:
    """All frames of a chain ordered so the innermost frame of the root exception comes last."""
    others = [e for e in reversed(chain) if e is not root]
    return tuple(f for err in (*others, root) for f in err.frames)


def _dead_thread(main: Traceback, v: C.ChainVerdict, judged: list[tuple[Traceback, C.ChainVerdict]],
                 workspace: str | None) -> Traceback | None:
    """The job's own thread whose exception ("Exception in thread ...") the main thread's error
    followed, when that error is a lookup of a result that never came (an empty list or queue, a
    missing key, None): the dead thread never delivered it, so its exception ended the run. None
    otherwise: an unrelated error of the main thread after a thread died is its own failure."""
    if v.category != "code_bug" or v.rule is not None or not (
            v.root.short_type in _MISSING_RESULT or "'NoneType' object" in v.root.message):
        return None
    for tb, tv in reversed(judged):
        if (tb.thread is not None and tb.stream == main.stream and tb.start < main.start and tv.category
                and not tv.secondary and C.user_frames(tv.root.frames, workspace, strict=False)):
            return tb
    return None


def _carried_on(tb: Traceback, lines: list[LogLine], spans: list[tuple[int, int]], markers: set[int]) -> bool:
    """Whether the process that printed ``tb`` went on writing ordinary output afterwards.

    Ordinary means: its own stream, not blank, not evidence, not a stack dump or C++ frames, and
    not inside a later traceback (torchrun's long ChildFailedError summary follows a rank's error).
    """
    later = iter(sorted((s, e) for s, e in spans if s > tb.raised))
    span = next(later, None)
    count = 0
    for ln in lines[tb.raised + 1:]:
        while span is not None and ln.pos > span[1]:
            span = next(later, None)
        if span is not None and ln.pos >= span[0]:
            continue
        if ln.stream != tb.stream or ln.pos in markers or not ln.text.strip():
            continue
        if ln.text.startswith(_DIAGNOSTIC_PREFIXES):
            continue
        count += 1
        if count > STALE_AFTER_LINES:
            return True
    return False


def _root_cause_candidates(root: RootCause | None, workspace: str | None,
                           rules: tuple[Rule, ...]) -> list[Candidate]:
    """torchrun's own account of the first failed rank, for when that rank's output is missing.

    These carry no stream: the rank's own lines (its traceback, its faulthandler dump) say the same
    more precisely and win ties by coming first.
    """
    if root is None:
        return []
    if root.traceback is not None:
        v = C.classify_chain((root.traceback,), workspace, rules)
        strength = C.traceback_strength(v)
        shown = f"{v.root.type}: {v.root.message}"[:MAX_EVIDENCE_CHARS]
        finding = Finding(v.category or "unknown", strength, v.key, shown, root.pos, None, "torchrun root cause: " + _why(v))
        return [Candidate(finding, None, v.root, root.traceback.frames)]
    shown = f"torchrun root cause: {root.describe()}"
    if root.signal is None:
        # The first rank to fail exited without a word here (its output filtered or redirected):
        # its failure is unknown, and outranks what its peers said about losing it.
        return [Candidate(Finding("unknown", PEER_LOST + 1, "root_rank_exit", shown, root.pos, None,
                                  "torchrun root cause: exit code, nothing else"))]
    return [Candidate(Finding(f.category, f.strength, f.key, shown, root.pos, None, "torchrun root cause: exit signal"))
            for f in exit_findings(ExitStatus(signal=root.signal), root.pos)]


def _best_traceback(candidates: list[Candidate]) -> Candidate | None:
    """The strongest traceback other than a launcher's: where the code was when things failed."""
    tbs = [c for c in candidates if c.root is not None and c.finding.strength > C.SECONDARY]
    return max(tbs, key=lambda c: (c.finding.strength, -c.finding.pos)) if tbs else None


def _crash_frames(lines: list[LogLine], winner: Candidate) -> tuple[SourceFrame, ...] | None:
    """The crashed thread's frames from a faulthandler dump printed at or after the crash line."""
    start = winner.finding.pos if winner.finding.pos < len(lines) else 0
    texts = [ln.text for ln in lines[start:start + 400]]
    if not any("most recent call first" in t for t in texts):
        texts = [ln.text for ln in lines]
    thread = crashed_thread(parse_stacks(texts))
    if thread is None:
        return None
    # Stack dumps list innermost first; tracebacks (and the report) want innermost last.
    return tuple(SourceFrame(f.file, f.line, f.function) for f in reversed(thread.frames))
