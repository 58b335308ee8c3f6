"""Assembling a `Diagnosis` from the winning evidence: signature, frame, files, summary, evidence.

`diagnose` decides *what* failed; this module decides how it is written down. The signature's
identity parts depend on the category (see `signature` for the folding rules):

- code_bug, config_error, missing_file, nan_divergence: exception class, folded message, location;
- cuda_oom, cuda_illegal_access, dataloader, segfault: the kind of failure and the location
  (the same OOM in ``forward`` and in ``backward`` are two problems; its byte counts are not);
- gpu_hardware, host_oom, disk_full, nccl_*, missing_dependency: the kind only. Where the
  code happened to be when a GPU fell off the bus or a peer vanished says nothing about the cause;
- unknown: the kind (a signal, a network error) and the normalised last error line of the log;
- hang: the innermost user frame of the main thread.

The *location* (`location_key`) is the innermost user frame as ``<file name>:<function>:<source
line, normalised>``, never its line number or directory; see docs/diagnosis.md.
"""

from __future__ import annotations

import re

from phoenix_watchdog.diagnosis import classify as C
from phoenix_watchdog.diagnosis.candidate import Candidate
from phoenix_watchdog.diagnosis.categories import PATCHABLE
from phoenix_watchdog.diagnosis.failure import Diagnosis, ExitStatus, Frame, HangInfo
from phoenix_watchdog.diagnosis.logtext import LogLine, split_log
from phoenix_watchdog.diagnosis.pytrace import SourceFrame
from phoenix_watchdog.diagnosis.signature import make_signature, normalise
from phoenix_watchdog.diagnosis.stackparse import main_thread, parse_stacks
from phoenix_watchdog.progress.parse import ProgressParser
from phoenix_watchdog.diagnosis.usercode import display_path, is_user_path, stable_path, under

MAX_EVIDENCE = 8
MAX_SUMMARY_CHARS = 300
MAX_MESSAGE_CHARS = 1000
_TYPED = frozenset({"code_bug", "config_error", "missing_file", "nan_divergence"})
_KIND_ONLY = frozenset({"gpu_hardware", "host_oom", "disk_full", "nccl_timeout", "nccl_error",
                        "missing_dependency", "unknown"})
_ABORT_WHAT = re.compile(r"instance of '(?P<what>[^']+)'")
_PROGRESS = re.compile(r"%\||\d(?:it/s|s/it)\b")  # a progress bar says how far, not what failed
_LOCATED = frozenset({"cuda_oom"})
_ERRORISH = re.compile(r"(?i)error|exception|fail|fatal|abort|killed|denied|refused|timed? ?out|cannot|unable|invalid")
# Lines that only say that something ended, with no word on why: a launcher's or a wrapper's.
_TRAILER = re.compile(r"(?i)exit(?:ed)?(?: with)?(?: exit)? (?:code|status)|returned non-zero|\bError \d+\s*$|"
                      r"\b(?:training|job|run) (?:aborted|failed)\b|^\W*(?:fatal|error)\W*$")
_STEP = ProgressParser()


def build_diagnosis(winner: Candidate | None, context: Candidate | None, crash: tuple[SourceFrame, ...] | None,
                    candidates: list[Candidate], lines: list[LogLine], exit: ExitStatus | None,
                    workspace: str | None) -> Diagnosis:
    if winner is None:
        return _nothing(lines, exit)
    f = winner.finding
    category = f.category
    same = context is not None and context.finding.category == category
    source = winner if winner.root is not None else (context if same else None)
    if source is not None and source.root is not None:
        exception: str | None = source.root.type
        message = source.root.message or next((d for d in source.root.details if d.strip()), "")
        frames = source.frames
    else:
        m = _ABORT_WHAT.search(f.line)
        exception = m["what"] if m else None
        message = f.line
        # Where the code was: a native crash's own dump, else an unrelated traceback that ended
        # a process (not one from a rank that only lost its peer: that is the victim's position).
        if category == "segfault":
            frames = crash or ()
        elif context is not None and context.finding.strength > C.SECONDARY + 5:
            frames = context.frames
        else:
            frames = ()
    user = innermost_user(frames, workspace)
    if user is None and source is not None:
        # Reported from outside the user's code (a signal handler at interpreter exit, a library
        # thread): another traceback of the same failure shows where the code was.
        other = next((c for c in candidates if c.root is not None and c is not source and c.finding.category == category
                      and innermost_user(c.frames, workspace) is not None), None)
        if other is not None:
            frames, user = other.frames, innermost_user(other.frames, workspace)
    parts: list[str | None] = [f.key]
    if category in _TYPED and exception:
        parts.insert(0, exception.rsplit(".", 1)[-1])
    if category not in _KIND_ONLY:
        parts.append(location_key(frames, user, workspace))
        if not frames and category in _LOCATED:
            # No frame at all: what the failure said is all that tells one such failure from another.
            parts.append(normalise(f.line, workspace))
    if category == "unknown" and not f.key.startswith("signal:"):  # a kill is its signal, whatever the log says
        parts.append(last_error_line(lines, workspace))  # never one bucket for everything unrecognised
    patchable = category in PATCHABLE and (category != "code_bug" or user is not None)
    frame = _frame(user, workspace)
    head = f"{exception}: {message}" if exception and source is not None else message
    where = f" (at {frame.file}:{frame.line} in {frame.function})" if frame else ""
    summary = _one_line(head, max(60, MAX_SUMMARY_CHARS - len(where))) + where  # the location fits
    evidence = _evidence(winner, source, candidates, exit)
    return Diagnosis(
        signature=make_signature(category, *parts),
        category=category,
        patchable=patchable,
        exception=exception,
        message=_one_line(message, MAX_MESSAGE_CHARS) or None,
        frame=frame,
        summary=_one_line(summary, MAX_SUMMARY_CHARS),  # still bounded for absurdly long paths
        files=user_files(frames, workspace),
        evidence=evidence,
        stream=(source.finding if source is not None else f).stream,
        decided_by=f"{f.rule or 'built-in rules'} (strength {f.strength})",
        action=f.action,
    )


def location_key(frames: tuple[SourceFrame, ...], user: SourceFrame | None, workspace: str | None) -> str | None:
    """Where the failure happened, in a form that survives re-runs and unrelated edits.

    The innermost user frame as file name, function and its source line with numbers folded, but
    not its line number: a repair that inserts two lines above moves the number and nothing else.
    Without a user frame, the innermost three frames' files and functions (where inside the library
    it failed) stand in.
    """
    if user is not None:
        return f"{stable_path(user.file, workspace)}:{user.function}:{normalise(user.source)}"
    if not frames:
        return None
    return "|".join(f"{stable_path(fr.file, workspace)}:{fr.function}" for fr in frames[-3:])


def last_error_line(lines: list[LogLine], workspace: str | None) -> str:
    """What an unrecognised failure said, normalised: its last error line and the line before it.

    The last line that reads like an error is often a trailer every failure of the job ends with
    (``fatal: training aborted``, ``make: *** [train] Error 1``, srun's ``task 0: Exited with exit
    code 1``): it is passed over for an earlier error line when there is one, and the line the same
    rank printed just before it (the failure's own words, when the error line is generic) joins the
    key. Progress bars and step reports are skipped: they say how far, not what failed.
    """
    tail = [ln for ln in lines[-400:] if ln.text.strip() and not _progress(ln.text)]
    said = [ln for ln in tail if not _TRAILER.search(ln.text)]
    if not said:  # nothing but trailers: the last of them is all there is
        errors = [ln for ln in tail if _ERRORISH.search(ln.text)]
        return normalise((errors or tail or [LogLine(0, "", None)])[-1].text.strip(), workspace)
    pick = next((i for i in range(len(said) - 1, -1, -1) if _ERRORISH.search(said[i].text)), len(said) - 1)
    stream = said[pick].stream
    before = next((ln.text for ln in reversed(said[max(0, pick - 8):pick]) if ln.stream == stream), "")
    key = normalise(said[pick].text.strip(), workspace)
    return f"{normalise(before.strip(), workspace)}\n{key}" if before else key


def _progress(text: str) -> bool:
    """A progress bar or a step report that says nothing of an error (``step 120 loss 2.11``)."""
    if _ERRORISH.search(text):
        return False
    return bool(_PROGRESS.search(text)) or _STEP.parse(text) is not None


def hang_diagnosis(hang: HangInfo, lines: list[LogLine], exit: ExitStatus | None,
                   workspace: str | None) -> Diagnosis:
    """A job killed for silence: where its main thread was stuck decides the signature."""
    # A faulthandler dump is the job's own output: clean it like the log (rank prefixes, colours).
    thread = main_thread(parse_stacks(ln.text for ln in split_log(hang.stack or "")), workspace)
    frames = tuple(SourceFrame(fr.file, fr.line, fr.function) for fr in reversed(thread.frames)) if thread else ()
    user = innermost_user(frames, workspace)
    located = user or (frames[-1] if frames else None)
    location = f"{stable_path(located.file, workspace)}:{located.function}" if located else "no-stack"
    silent = hang.detail or f"no output for {hang.silent_seconds:.0f} s"
    frame = _frame(user, workspace)
    shown = _frame(located, workspace)
    where = f"; main thread in {shown.function} ({shown.file}:{shown.line})" if shown else "; no stack dump"
    evidence = [silent]
    evidence += [f"{fr.function} ({display_path(fr.file, workspace)}:{fr.line})" for fr in reversed(frames[-5:])]
    last = next((ln.text.strip() for ln in reversed(lines) if ln.text.strip()), None)
    if last:
        evidence.append(f"last output: {last}")
    if exit is not None:
        evidence.append(exit.describe())
    innermost = frames[-1] if frames else None
    return Diagnosis(
        signature=make_signature("hang", location),
        category="hang",
        patchable=bool(innermost and is_user_path(innermost.file, workspace, strict=_strict(frames, workspace))),
        exception=None,
        message=silent,
        frame=frame,
        summary=_one_line(silent + where, MAX_SUMMARY_CHARS),
        files=user_files(frames, workspace),
        evidence=tuple(_one_line(e, 300) for e in evidence[:MAX_EVIDENCE]),
        decided_by="the supervisor's hang verdict (no output for the heartbeat interval)",
    )


def innermost_user(frames: tuple[SourceFrame, ...], workspace: str | None) -> SourceFrame | None:
    """The innermost user-code frame (frames ordered innermost last)."""
    strict = _strict(frames, workspace)
    for fr in reversed(frames):
        if is_user_path(fr.file, workspace, strict=strict):
            return fr
    return None


def user_files(frames: tuple[SourceFrame, ...], workspace: str | None) -> tuple[str, ...]:
    """User source files named in the frames, each once, ordered by last appearance (innermost last)."""
    strict = _strict(frames, workspace)
    seen: dict[str, None] = {}
    for fr in frames:
        if is_user_path(fr.file, workspace, strict=strict):
            path = display_path(fr.file, workspace)
            seen.pop(path, None)
            seen[path] = None
    return tuple(seen)


def _strict(frames: tuple[SourceFrame, ...], workspace: str | None) -> bool:
    """Judge by the workspace only if some frame lies under it (else its paths differ from the job's)."""
    return bool(workspace) and any(under(fr.file, workspace) for fr in frames)


def _frame(fr: SourceFrame | None, workspace: str | None) -> Frame | None:
    return Frame(display_path(fr.file, workspace), fr.line, fr.function) if fr else None


def _evidence(winner: Candidate, source: Candidate | None, candidates: list[Candidate],
              exit: ExitStatus | None) -> tuple[str, ...]:
    out: list[str] = []
    seen: set[str] = set()

    def add(line: str) -> None:
        line = _one_line(line, 300)
        key = normalise(line)  # the same line from eight ranks is one piece of evidence
        if line and key not in seen and len(out) < MAX_EVIDENCE:
            seen.add(key)
            out.append(line)

    add(winner.finding.line)
    if source is not None and source.traceback is not None:
        final = source.traceback.final
        add(f"{final.type}: {final.message}")
    same = sorted((c.finding for c in candidates if c.finding.category == winner.finding.category
                   and c is not winner and c.traceback is None), key=lambda x: x.pos)
    for finding in same[:4]:
        add(finding.line)
    if exit is not None:
        add(exit.describe())
    return tuple(out)


def _nothing(lines: list[LogLine], exit: ExitStatus | None) -> Diagnosis:
    """No evidence at all: the exit status (if known) is the only identity."""
    desc = exit.describe() if exit is not None else "no exit status"
    key = desc if exit is not None else "no-evidence"
    key += "\x1f" + last_error_line(lines, None)  # never one bucket for everything unrecognised
    tail = next((ln.text.strip() for ln in reversed(lines) if ln.text.strip()), "")
    summary = f"{desc}; nothing recognisable in the last {len(lines)} log lines"
    return Diagnosis(
        signature=make_signature("unknown", key),
        category="unknown",
        patchable=False,
        exception=None,
        message=_one_line(tail, MAX_MESSAGE_CHARS) or None,
        frame=None,
        summary=summary,
        files=(),
        evidence=(_one_line(tail, 300) or "the log is empty", desc),
        decided_by="no rule matched anything in the log",
    )


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
