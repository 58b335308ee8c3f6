"""Line-level evidence: failures that announce themselves without a Python traceback.

Kernel and driver messages (``NVRM: Xid (PCI:0000:3b:00): 79, ...``, an OOM kill), the NCCL
watchdog (``[Rank 3] Watchdog caught collective operation timeout: WorkNCCL(...)``), C++ aborts
(``terminate called after throwing an instance of 'c10::DistBackendError'``), native crashes
(``Fatal Python error: Segmentation fault``, the shell's ``Segmentation fault (core dumped)`` and
``Killed``), argparse usage errors, and the same OOM / illegal-access / NaN / DataLoader texts the
exception rules know, when a job prints them itself. Also what the exit status alone says.

A single C-level regex pass over the whole cleaned text finds the few candidate lines; only those
are matched against the individual rules, so the cost stays flat for long logs of progress output.
"""

from __future__ import annotations

import bisect
import functools
import re
import signal
from dataclasses import dataclass

from phoenix_watchdog.diagnosis import classify as C
from phoenix_watchdog.diagnosis.digits import quiet_gate, text_keyed
from phoenix_watchdog.diagnosis.failure import ExitStatus, signal_name
from phoenix_watchdog.diagnosis.logtext import LogLine
from phoenix_watchdog.diagnosis.rulebook import BUILTIN, NEEDLES
from phoenix_watchdog.diagnosis.rules import Rule, match_line, trie_regex
from phoenix_watchdog.diagnosis.signature import normalise

MAX_EVIDENCE_CHARS = 300
_NEW_OBJECT = object.__new__

# Literal triggers: a line none of them hits cannot match any marker rule below ("INF" is left out:
# every "[INFO]" line would hit it; an upper-case "INF" loss is rare enough). They are compiled
# into one regex factored as a trie (`rules.trie_regex`), which scans ~10x faster than the flat
# alternation.
TRIGGERS = (
    "Xid", "ECC", "GPU is lost", "GPU_IS_LOST", "fallen off", "launch failure", "NVLink", "CUDA", "HIP out",
    "CUBLAS", "CUDNN", "cudaError", "out of memory", "Out of memory", "oom", "OOM", "o space left", "Errno",
    "ENOSPC", "uota exceeded", "PytorchStreamWriter", "write failed", "iostream error", "unexpected pos",
    "illegal", "misaligned", "Assertion", "NCCL", "nccl", "atchdog", "terminate called", "Fatal Python error",
    "SIGSEGV", "Illegal instruction", "Floating point exception", "Aborted", "DataLoader", "in worker", "shared memory", "nan", "NaN", "NAN", "inf", "Inf",
    "non-finite",
    "not finite", "loss scale", ": error: ", "allocate", "no CUDA", "NVIDIA driver",
    "ignal", "xitcode", "egmentation fault", "illed", "us error",
)


_TRIGGER = trie_regex(TRIGGERS + NEEDLES)  # a line it does not hit cannot match a marker rule
# The same words split for `_trigger_hits`: those without digits are searched in digit-folded text.
_FOLD_DIGITS = str.maketrans("0123456789", "9999999999")
_PLAIN = trie_regex(tuple(w for w in TRIGGERS + NEEDLES if not any(c.isdigit() for c in w)))
_WITH_DIGITS = tuple(w for w in TRIGGERS + NEEDLES if any(c.isdigit() for c in w))
_DIGITAL = trie_regex(_WITH_DIGITS) if _WITH_DIGITS else None
_DIGITAL_FOLDED = trie_regex(tuple(w.translate(_FOLD_DIGITS) for w in _WITH_DIGITS)) if _WITH_DIGITS else None
_NOISE = ("frame #",)  # C++ stack frames under a c10 error: never evidence
# Where a c10 error was raised names its kind even when the message scrolled out of the tail.
_RAISED_FROM = re.compile(r"^Exception raised from (?P<fn>\w+) at \S*ProcessGroupNCCL\.cpp")
_DIST_ABORT = re.compile(r"DistBackendError|DistNetworkError|NCCL|nccl")

_XID = re.compile(r"NVRM: Xid \((?P<bus>[^)]*)\): (?P<code>\d+)")
_XID_IGNORED = frozenset({43, 45})  # app stopped / preemptive cleanup: consequences of any crash
_XID_APPLICATION = frozenset({13, 31})  # graphics engine exception / MMU fault: a kernel's bad access
_OOM_KILL = re.compile(r"Out of memory: Kill(?:ed)? process|\boom-kill\b|oom_kill_process|invoked oom-killer"
                       r"|Memory cgroup out of memory|\bOOMKilled\b")
_ARGPARSE = re.compile(r"^\S+: error: (?:unrecognized arguments|the following arguments are required"
                       r"|argument \S+|invalid choice|ambiguous option)")
_NATIVE = re.compile(r"Fatal Python error: (?P<fatal>Segmentation fault|Bus error|Floating point exception"
                     r"|Illegal instruction)|(?P<shell>Segmentation fault|Bus error|Illegal instruction"
                     r"|Floating point exception)\s*(?:\(core dumped\))?\s*(?:\S*python\S*|\S*torchrun\S*|\S+\.py|$)"
                     r"|\bSignal (?P<sig>11|7|4|8) \(SIG\w+\) received")
_ABORT = re.compile(r"^terminate called (?:after throwing an instance of '(?P<what>[^']+)'|without an active exception)"
                    r"|Fatal Python error: Aborted|Aborted \(core dumped\)")
_NATIVE_NAMES = {"Segmentation fault": "SIGSEGV", "Bus error": "SIGBUS", "Illegal instruction": "SIGILL",
                 "Floating point exception": "SIGFPE"}
# A process ended by a signal, in the spellings of shells (zsh: lower case), multiprocessing,
# torchrun's agent, IDEs and launchers. SIGTERM and SIGINT are left out: agents send them to the
# healthy peers of a failed rank.
_SIGNALLED = re.compile(
    r"<Signals\.(?P<name>SIG[A-Z]+): \d+>|\bexitcode\s*:?\s*-(?P<num>\d+)\b|\bSignal (?P<num2>\d+) \(SIG[A-Z]+\) received"
    r"|interrupted by signal (?P<num3>\d+)|terminated with signal (?P<name2>SIG[A-Z]+)"
    r"|^(?:[\w./-]+: )?(?:line \d+: +)?(?:\d+ +)?(?P<word>(?i:segmentation fault|killed|bus error|illegal instruction"
    r"|floating point exception))\b(?: +\(core dumped\))?(?: +\S.*)?$")
_WORD_SIGNALS = {"segmentation fault": signal.SIGSEGV, "killed": signal.SIGKILL, "bus error": signal.SIGBUS,
                 "illegal instruction": signal.SIGILL, "floating point exception": signal.SIGFPE}
_IGNORED_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
_KILLED = re.compile(r"^Killed$|: line \d+: +\d+ Killed\b|^\S*\s*\d+ Killed\s")


@dataclass(frozen=True)
class Finding:
    """One piece of evidence for a category. ``key`` joins the signature; ``line`` is shown to humans."""

    category: str
    strength: int
    key: str
    line: str
    pos: int             # the line's position in the cleaned log; len(lines) for exit-status evidence
    stream: str | None
    rule: str = ""       # which rule decided, for `phoenix diagnose --explain`
    action: str | None = None  # the action a user rule names


@functools.lru_cache(maxsize=8)
def _user_trigger(rules: tuple[Rule, ...]) -> re.Pattern[str] | None:
    """One regex for the rules that are not shipped (they name no needles): one more C-level pass."""
    extra = [r.pattern for r in rules if r.source != "builtin"]
    return re.compile("|".join(f"(?:{p})" for p in extra), re.MULTILINE) if extra else None


def scan_markers(lines: list[LogLine], skip: set[int], rules: tuple[Rule, ...] = BUILTIN) -> list[Finding]:
    """Every line-level finding, in log order. ``skip``: indices of traceback frame/source lines."""
    texts = [ln.text for ln in lines]
    folded = _fold(texts)
    hits = _trigger_hits(texts, folded)
    if (user := _user_trigger(rules)) is not None:
        hits |= _regex_hits(user, texts)
    found: list[Finding] = []
    # A storm repeats its lines from rank after rank: each distinct text is classified once, and
    # the costly needle guards of `classify_line` are asked once per digit-folded shape (`_GUARDS`).
    seen: dict[str, Finding | None] = {}
    masks: dict[str, tuple[bool, ...]] = {}
    guards = _shape_guards(rules)
    # A digit-quiet shape's lines all get its first line's answer, each with its own text (`digits`).
    quiet, keyed, shaped = quiet_gate(rules), text_keyed(rules), {}
    for i in sorted(hits - skip):
        ln = lines[i]
        if ln.text not in seen:
            if (shape := folded[i]) in shaped:
                f = shaped[shape] and _relined(shaped[shape], ln)
            else:
                if (mask := masks.get(shape)) is None:
                    mask = masks[shape] = tuple(g is None or g.search(shape) is not None for g in guards)
                f = classify_line(ln, rules, mask)
                if quiet is not None and quiet.search(shape) is None and _shape_keyed(f, keyed):
                    shaped[shape] = f
            seen[ln.text] = f
        elif (f := seen[ln.text]) is not None:
            f = _moved(f, ln.pos, ln.stream)
        # A message hard-wrapped onto the next line (depends on the neighbours: not cached). Only a
        # line starting lower-case continues its predecessor (`_soft_wrapped`): ask that of this
        # line and the next before the call, as a storm's repeated unmatched lines mostly fail it.
        if f is None and (ln.text[:1].islower() or i + 1 < len(lines) and lines[i + 1].text[:1].islower()):
            f = _classify_wrapped(lines, i, rules)
        # Both halves of a wrapped line hit (equal findings have equal positions: that test is cheap).
        if f is not None and not (found and found[-1].pos == f.pos and found[-1] == f):
            found.append(f)
    return found


def _moved(f: Finding, pos: int, stream: str | None) -> Finding:
    """``f`` at another line: a copy of its fields with ``pos`` and ``stream`` set, built without
    the frozen dataclass's ``__init__`` (eight guarded ``object.__setattr__`` calls, ~3x the cost)."""
    g = _NEW_OBJECT(Finding)
    fields = g.__dict__
    fields.update(f.__dict__)
    fields["pos"] = pos
    fields["stream"] = stream
    return g


def _relined(f: Finding, ln: LogLine) -> Finding:
    """``f`` (another line's finding of the same digit-quiet shape) for ``ln``: its own text and place."""
    g = _moved(f, ln.pos, ln.stream)
    g.__dict__["line"] = ln.text.strip()[:MAX_EVIDENCE_CHARS]
    return g


def _shape_keyed(f: Finding | None, text_keyed: frozenset[str]) -> bool:
    """Whether ``f``'s key is the same for every line of its digit-quiet shape: not read from the
    text through `normalise` (which keeps some digits), and holding no digit of the line's own."""
    return f is None or (f.category not in ("nan_divergence", "config_error") and f.rule not in text_keyed
                         and not any(c.isdigit() for c in f.key))


def _fold(texts: list[str]) -> list[str]:
    """``texts`` with every digit folded to 9 (one C-level pass over them joined)."""
    folded = "\n".join(texts).translate(_FOLD_DIGITS).split("\n")
    if len(folded) != len(texts):  # a text with a newline of its own (not one of split_log's lines)
        folded = [t.translate(_FOLD_DIGITS) for t in texts]
    return folded


def _trigger_hits(texts: list[str], folded: list[str] | None = None) -> set[int]:
    """The indices of the lines a built-in trigger hits (C++ frame lines never count).

    Lines that differ only in their digits (progress output, the same report from rank after rank)
    share one digit-folded shape, and the trigger regex runs once per shape: a megabyte of progress
    lines is a few dozen shapes. No trigger of `_PLAIN` holds a digit, so a shape hits exactly when
    each of its lines does; the few triggers with digits are confirmed on the lines themselves.
    """
    if folded is None:
        folded = _fold(texts)
    shapes = {s for s in set(folded) if not s.startswith(_NOISE)}
    hit = {s for s in shapes if _PLAIN.search(s)}
    out = {i for i, s in enumerate(folded) if s in hit}
    if _DIGITAL is not None and (maybe := {s for s in shapes - hit if _DIGITAL_FOLDED.search(s)}):
        out |= {i for i, s in enumerate(folded) if s in maybe and _DIGITAL.search(texts[i])}
    return out


def _regex_hits(trigger: re.Pattern[str], texts: list[str]) -> set[int]:
    """The indices of the lines ``trigger`` hits, searched over the whole text (a user's pattern may use anchors)."""
    # C++ frame lines are blanked before the scan: an NCCL storm prints dozens per rank.
    texts = ["" if text.startswith(_NOISE) else text for text in texts]
    joined = "\n".join(texts)
    starts = [0]
    for text in texts[:-1]:
        starts.append(starts[-1] + len(text) + 1)
    hits: set[int] = set()
    pos = 0
    while (m := trigger.search(joined, pos)) is not None:
        i = bisect.bisect_right(starts, m.start()) - 1
        pos = starts[i + 1] if i + 1 < len(starts) else len(joined)  # one look per line is enough
        hits.add(i)
    return hits


def _soft_wrapped(lines: list[LogLine], i: int) -> bool:
    """Whether line ``i`` continues line ``i - 1``: a message hard-wrapped mid-sentence (same writer,
    the previous line stops without closing punctuation, this one starts with a lower-case word)."""
    if i <= 0 or i >= len(lines):
        return False
    prev, cur = lines[i - 1], lines[i]
    head = cur.text[:1]
    if not head.islower():  # most lines: decided before the previous line is stripped
        return False
    tail = prev.text.rstrip()[-1:]
    return bool(tail) and tail not in ".:;!?)]}>\"'" and prev.stream == cur.stream and not prev.text.startswith(_NOISE)


def _classify_wrapped(lines: list[LogLine], i: int, rules: tuple[Rule, ...]) -> Finding | None:
    """The finding of a message wrapped across line ``i`` and a neighbour, read as one line."""
    for a in (i - 1, i):
        if _soft_wrapped(lines, a + 1):
            first, second = lines[a], lines[a + 1]
            joined = LogLine(first.pos, f"{first.text.rstrip()} {second.text.lstrip()}", first.stream)
            if (f := classify_line(joined, rules)) is not None:
                return f
    return None


def _has(text: str, needles: tuple[str, ...]) -> bool:
    return _needles(needles).search(text) is not None


@functools.lru_cache(maxsize=None)
def _needles(needles: tuple[str, ...]) -> re.Pattern[str]:
    return trie_regex(needles)  # one C-level search instead of a generator over the needles


# Substrings without which a rule's regex cannot match: cheap guards that spare most searches.
_HW_NEEDLES = ("ECC", "GPU", "fallen off", "launch failure", "NVLink", "NVIDIA driver", "CUDA-capable")
_OOM_NEEDLES = ("oom", "OOM", "ut of memory")
_DISK_NEEDLES = ("No space", "Errno 28", "Errno 122", "ENOSPC", "quota", "PytorchStreamWriter", "write failed",
                 "unexpected pos", "iostream error")
_ILLEGAL_NEEDLES = ("illegal", "misaligned", "program counter", "IllegalAddress", "ILLEGAL_ADDRESS")
_NATIVE_NEEDLES = ("Segmentation fault", "Bus error", "Illegal instruction", "Floating point exception", "Signal ")


# Which guards of `classify_line` `_shape_guards` asks of a digit-folded shape, in this order:
# the rule table's needles, then each needle tuple above.
_GUARDS = (_HW_NEEDLES, _OOM_NEEDLES, _DISK_NEEDLES, _ILLEGAL_NEEDLES, _NATIVE_NEEDLES)
_ALL = (True,) * (1 + len(_GUARDS))


@functools.lru_cache(maxsize=8)
def _shape_guards(rules: tuple[Rule, ...]) -> tuple[re.Pattern[str] | None, ...]:
    """The guards of `classify_line` with their needles' digits folded, to search a line's folded shape.

    A needle in a line is its folded self in the line's shape, so a guard that misses the shape
    misses every line of it; one that hits is asked again of the line itself. None: always hits
    (a rule without needles is tried on every line)."""
    fold = tuple(dict.fromkeys(n.translate(_FOLD_DIGITS) for r in rules for n in r.needles))
    gate = None if any(not r.needles for r in rules) or not fold else trie_regex(fold)
    return (gate, *(trie_regex(tuple(dict.fromkeys(n.translate(_FOLD_DIGITS) for n in g))) for g in _GUARDS))


def classify_line(ln: LogLine, rules: tuple[Rule, ...] = BUILTIN, shape: tuple[bool, ...] = _ALL) -> Finding | None:
    """The marker rule one cleaned line matches, if any (the rule table first, then these in order).

    ``shape``: which of `_shape_guards` the line's digit-folded shape hits; a guard it misses is
    not asked of the line (the answer would be no)."""
    text = ln.text
    if text.startswith(_NOISE):
        return None
    shown = text.strip()[:MAX_EVIDENCE_CHARS]

    def hit(category: str, strength: int, key: str) -> Finding:
        return Finding(category, strength, key, shown, ln.pos, ln.stream, f"built-in line rule ({key})")

    if shape[0] and (found := match_line(rules, text)):
        rule, m = found
        return Finding(str(rule.category), rule.strength, rule.signature_key(m, text), shown, ln.pos, ln.stream,
                       rule.describe(), rule.action)

    if "Xid" in text and (m := _XID.search(text)):
        code = int(m["code"])
        if code in _XID_IGNORED:
            return None
        if code in _XID_APPLICATION:
            return hit("cuda_illegal_access", C.LINE - 5, f"xid:{code}")
        return hit("gpu_hardware", C.HARDWARE, f"xid:{code}")
    if shape[1] and _has(text, _HW_NEEDLES) and (m := C.HARDWARE_TEXT.search(text)):
        return hit("gpu_hardware", C.HARDWARE, C.hardware_key(m.group(0)))
    oomish = shape[2] and _has(text, _OOM_NEEDLES)
    if oomish and _OOM_KILL.search(text):
        return hit("host_oom", C.HOST_OOM, "host_oom")
    if shape[3] and _has(text, _DISK_NEEDLES) and C.DISK_TEXT.search(text):
        return hit("disk_full", C.DISK, "disk_full")
    if ("allocate" in text or "Errno 12" in text) and C.HOST_OOM_TEXT.search(text):
        return hit("host_oom", C.LINE, "host_oom")
    if (oomish or "ALLOC_FAILED" in text or "MemoryAllocation" in text) and C.CUDA_OOM_TEXT.search(text):
        return hit("cuda_oom", C.LINE, "cuda_oom")
    if ("assert" in text or "Assertion" in text) and C.DEVICE_ASSERT_TEXT.search(text):
        return hit("code_bug", C.LINE - 5, "device-side assert")
    if shape[4] and _has(text, _ILLEGAL_NEEDLES) and (m := C.ILLEGAL_TEXT.search(text)):
        return hit("cuda_illegal_access", C.LINE, m.group(0).lower())
    if ("DataLoader" in text or "worker" in text or "shared memory" in text) and (m := C.DATALOADER_TEXT.search(text)):
        return hit("dataloader", C.LINE, C.dataloader_key(m.group(0)))
    if "collective operation timeout" in text:
        return hit("nccl_timeout", C.NCCL_TIMEOUT, "nccl_timeout")
    if text.startswith("Exception raised from "):
        if m := _RAISED_FROM.search(text):
            return hit(*(("nccl_timeout", C.NCCL_TIMEOUT, "nccl_timeout") if m["fn"] == "checkTimeout"
                         else ("nccl_error", C.NCCL, "nccl")))
        return None
    if shape[5] and _has(text, _NATIVE_NEEDLES) and (m := _NATIVE.search(text)):
        kind = m["fatal"] or m["shell"]
        name = _NATIVE_NAMES[kind] if kind else signal_name(int(m["sig"]))
        return hit("segfault", C.NATIVE_CRASH, f"signal:{name}")
    if ("terminate called" in text or "Aborted" in text) and (m := _ABORT.search(text)):
        if m["what"] and _DIST_ABORT.search(m["what"]):  # the NCCL watchdog takes the process down
            return hit("nccl_error", C.NCCL, "nccl")
        return hit("segfault", C.ABORT, "signal:SIGABRT")
    if ("NCCL" in text or "nccl" in text) and C.NCCL_TEXT.search(text) and _nccl_failure(text):
        return hit("nccl_error", C.NCCL, C.nccl_key(text))
    if ("nan" in text or "NaN" in text or "NAN" in text or "inf" in text or "Inf" in text or "loss scale" in text) \
            and C.NAN_LINE_TEXT.search(text):
        return hit("nan_divergence", C.LINE, normalise(text))
    if ": error: " in text and _ARGPARSE.search(text):
        return hit("config_error", C.LINE, normalise(text.split(": error: ", 1)[1]))
    if "Killed" in text and _KILLED.search(text):
        return hit("unknown", C.KILLED, "signal:SIGKILL")
    # _SIGNALLED's last form is anchored at 0; away from 0 every form needs one of these words.
    if m := _SIGNALLED.match(text) or ("ignal" in text or "exitcode" in text) and _SIGNALLED.search(text, 1):
        return _signalled(m, hit)
    return None


def _signalled(m: re.Match[str], hit) -> Finding | None:  # noqa: ANN001 (the closure of classify_line)
    """The finding for a process reported killed by a signal, as the exit status would say it."""
    try:
        if m["word"]:
            sig = _WORD_SIGNALS[m["word"].lower()]
        elif m["name"] or m["name2"]:
            sig = signal.Signals[m["name"] or m["name2"]]
        else:
            sig = signal.Signals(int(m["num"] or m["num2"] or m["num3"]))
    except (KeyError, ValueError):
        return None
    if sig in _IGNORED_SIGNALS:
        return None
    f = exit_findings(ExitStatus(signal=int(sig)), 0)[0]
    return hit(f.category, f.strength, f.key)


def _nccl_failure(text: str) -> bool:
    """NCCL also logs at WARN level in healthy runs; only failures count."""
    if "NCCL WARN" not in text:
        return True
    # A transport's completion error names no error word: a non-zero work status or a vendor code.
    return re.search(r"(?i)fail|error|abort|timeout|closed|reset|refused|unhandled|invalid"
                     r"|\bstatus=[1-9]|vendor err \d", text) is not None


_NATIVE_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE}


def exit_findings(exit: ExitStatus | None, at: int) -> list[Finding]:
    """What the exit status alone says (positioned after the last log line)."""
    if exit is None:
        return []
    out: list[Finding] = []
    desc = exit.describe()
    if exit.oom_killed:
        out.append(Finding("host_oom", C.HOST_OOM, "host_oom", desc, at, None, "exit status: OOM-killed"))
    sig = exit.effective_signal
    if sig in _NATIVE_SIGNALS:
        out.append(Finding("segfault", C.NATIVE_CRASH, f"signal:{signal_name(sig)}", desc, at, None, "exit status: signal"))
    elif sig == signal.SIGABRT:
        out.append(Finding("segfault", C.ABORT, "signal:SIGABRT", desc, at, None, "exit status: signal"))
    elif sig is not None:
        # SIGKILL without OOM evidence: the kernel OOM killer is the usual sender, but `docker kill`,
        # a preemption or a human send it too. Calling it host_oom would stop a job a restart could
        # carry on; calling it unknown restarts it, and the per-signature budget bounds the cost.
        why = " (no OOM evidence in the log: the kernel OOM killer, docker kill or a preemption)" \
            if sig == signal.SIGKILL else ""
        out.append(Finding("unknown", C.KILLED, f"signal:{signal_name(sig)}", desc + why, at, None, "exit status: signal"))
    return out
