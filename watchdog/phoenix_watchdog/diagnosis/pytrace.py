"""Reading Python tracebacks out of cleaned log lines, one stream (rank) at a time.

A *traceback* here is what the interpreter prints for an uncaught exception: a chain of one or
more exceptions (``raise ... from``: "direct cause"; an exception inside ``except``: "during
handling"), each with its frames (outermost first) and its message. Two embedded forms are read
too: the worker traceback that PyTorch's DataLoader re-raises in the main process ("Original
Traceback") becomes the first link of the chain, and torchrun's ``ChildFailedError`` summary keeps
its message lines for `launcher` to read.

The parser is a small state machine per stream. It tolerates foreign lines interleaved into a
traceback (another rank writing without a prefix), tracebacks whose header was cut off by the tail
(it starts at the first ``File "..."`` line), and Python 3.11 caret lines. Tracebacks without an
exception line (a truncated log, anomaly-mode warnings that print frames) are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from phoenix_watchdog.diagnosis.logtext import LogLine

CAUSE = "The above exception was the direct cause of the following exception:"
CONTEXT = "During handling of the above exception, another exception occurred:"
_HEADER = re.compile(r"^(\s*)(?:Exception Group )?Traceback \(most recent call (?P<order>last|first)\):\s*$")
# Python 3.11 exception groups draw their sub-tracebacks in a box: "  | ", "  + ", "+-+---- 1 ----".
_GROUP_RULE = re.compile(r"^\s*\+[-+]+(?: \d+ -+| \.\.\.[^\n]*)?$")
_GROUP_BAR = re.compile(r"^(?:\s*[|+](?: |$))+")
_FRAME = re.compile(r'^(\s*)File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+?))?\s*$')
_EXC = re.compile(r"^(?P<type>(?:[A-Za-z_]\w*\.)*(?P<last>[A-Za-z_]\w*))(?::(?: (?P<msg>.*))?)?$")
_THREAD = re.compile(r"^Exception in thread (?P<name>.+?):?\s*$")
# Python's report of an exception it could not raise (a __del__ or a Cython __dealloc__ at teardown):
# what follows was survived, like a thread's exception, and never ended the program.
UNRAISABLE = "Exception ignored"
_ANNOUNCEMENTS = ("Exception in thread", UNRAISABLE)  # what an idle parser remembers for the next traceback
# Lines written by a logger or the runtime, never part of an exception message.
_LOG_RECORD = re.compile(
    r"^(?:[IWEF]\d{4} \d{2}:\d{2}|\d{4}-\d{2}-\d{2}[ T]\d{2}:|terminate called|Fatal Python error"
    r"|Traceback \(most recent|\*{5,}|\S+:\d+:\d+ \[\d+\] NCCL )"
)
_RECORD_FIRST = frozenset("IWEFtT*")  # first characters `_LOG_RECORD` can match but for a digit (\d)
MAX_FOREIGN = 40          # interleaved lines tolerated inside one traceback
MAX_DETAIL_LINES = 400    # message lines kept after the exception line (torchrun summaries are long)
RULE_DETAIL_LINES = 8     # message lines the category rules look at


@dataclass(frozen=True)
class SourceFrame:
    """One traceback frame as printed; ``source`` is the code line shown under it, if any."""

    file: str
    line: int
    function: str
    source: str = ""


@dataclass(frozen=True)
class PyError:
    """One exception of a chain: type as printed, first message line, following message lines."""

    type: str
    message: str
    details: tuple[str, ...]
    frames: tuple[SourceFrame, ...]  # outermost first

    @property
    def short_type(self) -> str:
        return self.type.rsplit(".", 1)[-1]

    @property
    def text(self) -> str:
        """Message plus its first continuation lines: what category rules match against."""
        return "\n".join((self.message, *self.details[:RULE_DETAIL_LINES]))


@dataclass(frozen=True)
class Traceback:
    """A complete uncaught-exception report.

    Attributes:
        chain: the exceptions, original cause first, the one that ended the program last.
        links: how each link led to the next: "cause", "context", "worker" (DataLoader re-raise)
            or "group" (a sub-exception of an exception group).
        stream: the rank prefix the lines carried, None when unprefixed.
        start, end: indices of its first and last line in the cleaned log.
        raised: index of the final exception's own line. Message lines may follow it, and where a
            message ends cannot be told from the text, so what came after is measured from here.
        thread: the thread name when Python printed "Exception in thread ..." (not fatal by itself).
    """

    chain: tuple[PyError, ...]
    links: tuple[str, ...]
    stream: str | None
    start: int
    end: int
    raised: int
    thread: str | None = None

    @property
    def final(self) -> PyError:
        return self.chain[-1]


@dataclass
class _Builder:
    """One traceback being read: its frames, then its exception line and message lines."""

    indent: int
    start: int
    thread: str | None
    frames: list[SourceFrame] = field(default_factory=list)
    exc: re.Match[str] | None = None
    exc_index: int = 0
    details: list[str] = field(default_factory=list)
    foreign: int = 0
    end: int = 0
    blank_run: int = 0
    embedded: bool = False  # the message holds a traceback of its own (DataLoader, torchrun summary)
    innermost_first: bool = False  # "most recent call first": frames to be reversed


def looks_like_exception(text: str) -> re.Match[str] | None:
    """Match an exception line (``pkg.mod.SomeError: message``), rejecting log-level words."""
    m = _EXC.match(text)
    if not m:
        return None
    last = m["last"].lstrip("_")  # private classes too: numpy's _UFuncOutputCastingError, _ArrayMemoryError
    if last[:1].isupper():
        return m if any(c.islower() for c in last) else None  # "INFO: ..." is a logger, not a class
    last = m["last"]
    return m if "." in m["type"] and last[0] != "_" or m["type"].startswith("_") else None


def parse_tracebacks(lines: Iterable[LogLine], code_lines: set[int] | None = None) -> list[Traceback]:
    """Every complete traceback in the log, in order of their first line.

    ``code_lines``, when given, receives the indices of frame and source-code lines: pattern scans
    must not mistake ``raise RuntimeError("loss is nan")`` shown as source for the error itself.
    """
    done: list[Traceback] = []
    code = code_lines if code_lines is not None else set()
    parsers: dict[str | None, _StreamParser] = {}
    for ln in lines:
        parser = parsers.get(ln.stream)
        if parser is None:
            parser = parsers[ln.stream] = _StreamParser(ln.stream, done, code)
        elif parser.current is None and not parser.chain and parser.thread is None:
            # An idle parser (no chain, so no pending link either) and a line that is no header,
            # frame, group box or thread announcement, the common case: `feed` would change nothing.
            text = ln.text
            head = text[:16]
            if not ("|" in head or "+" in head or 'File "' in text or "Traceback (" in text
                    or text.startswith(_ANNOUNCEMENTS)):
                continue
        elif (b := parser.current) is not None and b.exc is not None and len(b.details) < MAX_DETAIL_LINES:
            # Reading a message (torchrun's summary runs to hundreds of lines): a line that is no
            # group box, chain separator, frame, header, announcement, blank or possible log record
            # (`_LOG_RECORD` needs one of these first characters or "] NCCL ") just joins it.
            text = ln.text
            head = text[:16]
            first = text[:1]
            if not ("|" in head or "+" in head or 'File "' in text or "Traceback (" in text or text == CAUSE
                    or text == CONTEXT or text.startswith(_ANNOUNCEMENTS) or first in _RECORD_FIRST
                    or first.isdecimal() or "] NCCL " in text or not text.strip()):
                b.blank_run = 0
                b.details.append(text)
                b.end = ln.pos
                continue
        parser.feed(ln)
    for parser in parsers.values():
        parser.finish()
    done.sort(key=lambda tb: tb.start)
    return done


class _StreamParser:
    """The traceback state machine of one stream: idle, reading frames, reading the message."""

    def __init__(self, key: str | None, done: list[Traceback], code: set[int]) -> None:
        self.key, self.done, self.code = key, done, code
        self.current: _Builder | None = None
        self.chain: list[PyError] = []
        self.links: list[str] = []
        self.pending_link: str | None = None  # a chain separator was read; the next traceback continues it
        self.thread: str | None = None         # "Exception in thread X:" was the last line
        self.chain_start = self.chain_end = self.chain_raised = 0
        self.chain_thread: str | None = None

    def feed(self, ln: LogLine) -> None:
        if "|" in ln.text[:16] or "+" in ln.text[:16]:
            unboxed = self._ungroup(ln)
            if unboxed is None:
                return
            ln = unboxed
        text, b = ln.text, self.current
        if b is None:
            if self.chain or self.thread or 'File "' in text or "Traceback (" in text or "Exception " in text:
                self._idle(ln)
            return  # the common case: an ordinary line between tracebacks
        if b.exc is None:
            self._frames(b, ln)
        else:
            self._message(b, ln)

    def _ungroup(self, ln: LogLine) -> LogLine | None:
        """Read an exception group's box as a chain: its sub-exceptions follow the group."""
        if _GROUP_RULE.match(ln.text):
            if self.current is not None and self.current.exc is not None:
                self._close_builder()
                self.pending_link = "group"
            return None
        m = _GROUP_BAR.match(ln.text)
        if m is None or not self.chain and self.current is None and "Exception Group" not in ln.text:
            return ln
        return LogLine(ln.pos, ln.text[m.end():], ln.stream)

    def finish(self) -> None:
        self._close_builder()
        self._close_chain()

    def _idle(self, ln: LogLine) -> None:
        text = ln.text
        hm = _HEADER.match(text) if "Traceback (" in text else None
        fm = _FRAME.match(text) if not hm and 'File "' in text else None
        if hm or fm:
            if self.pending_link is None:
                self._close_chain()
            indent = len(hm[1]) if hm else max(len(fm[1]) - 2, 0)  # type: ignore[index]
            self.current = _Builder(indent=indent, start=ln.pos, end=ln.pos, thread=self.thread,
                                    innermost_first=bool(hm and hm["order"] == "first"))
            self.thread = None
            if fm:
                self._add_frame(self.current, fm, ln.pos)
            return
        if text in (CAUSE, CONTEXT):
            if self.chain:
                self.pending_link = "cause" if text == CAUSE else "context"
            return
        if not text.strip():
            return
        if self.pending_link is None:
            self._close_chain()
        if self.thread is not None and ("%|" in text or "it/s]" in text or "s/it]" in text):
            return  # a progress bar redrawn between the announcement and its traceback
        tm = _THREAD.match(text) if text.startswith("Exception in thread") else None
        self.thread = tm["name"] if tm else "<unraisable>" if text.startswith(UNRAISABLE) else None

    def _frames(self, b: _Builder, ln: LogLine) -> None:
        text = ln.text
        fm = _FRAME.match(text) if 'File "' in text else None
        if fm:
            self._add_frame(b, fm, ln.pos)
            return
        if not text.strip():
            return
        indent = len(text) - len(text.lstrip())
        if indent > b.indent + 2 and b.frames:
            _add_source(b, text)
            b.end = ln.pos
            self.code.add(ln.pos)
            return
        em = looks_like_exception(text[b.indent:]) if indent == b.indent else None
        if em:
            b.exc, b.end, b.exc_index = em, ln.pos, ln.pos
        elif _HEADER.match(text):  # a new traceback while this one never finished: drop it
            self.current = None
            self._idle(ln)
        else:
            b.foreign += 1  # a line from some other writer
            if b.foreign > MAX_FOREIGN:
                self.current = None

    def _message(self, b: _Builder, ln: LogLine) -> None:
        text = ln.text
        if text in (CAUSE, CONTEXT):
            self._close_builder()
            self.pending_link = "cause" if text == CAUSE else "context"
            return
        if (_LOG_RECORD.match(text) or text.startswith(("Exception in thread", UNRAISABLE)) or len(b.details) >= MAX_DETAIL_LINES
                or (not b.embedded and 'File "' in text and _FRAME.match(text))):
            # The message is over. A frame here is another process's traceback interleaved
            # without prefixes, or one whose header was lost: it starts a traceback of its own.
            self.finish()
            self._idle(ln)
            return
        if not text.strip():
            b.blank_run += 1
            if b.blank_run >= 2:
                self.finish()
            else:
                b.details.append("")
            return
        if "Traceback (most recent call last):" in text:
            b.embedded = True
        b.blank_run = 0
        b.details.append(text)
        b.end = ln.pos

    def _add_frame(self, b: _Builder, fm: re.Match[str], index: int) -> None:
        b.frames.append(SourceFrame(fm["file"], int(fm["line"]), fm["func"] or "<module>"))
        b.end = index
        self.code.add(index)

    def _close_builder(self) -> None:
        b, self.current = self.current, None
        if b is None or b.exc is None:
            return
        details = list(b.details)
        while details and not details[-1].strip():
            details.pop()
        frames = tuple(reversed(b.frames)) if b.innermost_first else tuple(b.frames)
        err = PyError(b.exc["type"], (b.exc["msg"] or "").strip(), tuple(details), frames)
        if self.chain:
            self.links.append(self.pending_link or "context")
        else:
            self.chain_start, self.chain_thread = b.start, b.thread
            origin = _worker_origin(err)
            if origin is not None:
                self.chain.append(origin)
                self.links.append("worker")
        self.pending_link = None
        self.chain.append(err)
        self.chain_end, self.chain_raised = b.end, b.exc_index

    def _close_chain(self) -> None:
        if self.chain:
            self.done.append(Traceback(tuple(self.chain), tuple(self.links), self.key, self.chain_start,
                                       self.chain_end, self.chain_raised, self.chain_thread))
        self.chain, self.links, self.pending_link = [], [], None


def _add_source(b: _Builder, text: str) -> None:
    code = text.strip()
    last = b.frames[-1]
    if last.source or set(code) <= set("^~ ") or code.startswith("[Previous line repeated"):
        return
    b.frames[-1] = SourceFrame(last.file, last.line, last.function, code[:300])


def _worker_origin(err: PyError) -> PyError | None:
    """The worker-side exception embedded in a DataLoader re-raise ("Original Traceback")."""
    for i, line in enumerate(err.details):
        if line.lstrip().startswith("Original Traceback (most recent call last):"):
            return parse_embedded(err.details[i:])
    return None


def parse_embedded(lines: Iterable[str]) -> PyError | None:
    """The original exception of a traceback quoted in a message (header line first, any wording)."""
    rows = list(lines)
    if not rows:
        return None
    indent = len(rows[0]) - len(rows[0].lstrip())
    rows[0] = " " * indent + "Traceback (most recent call last):"
    found = parse_tracebacks(LogLine(i, r, None) for i, r in enumerate(rows))
    return found[0].chain[0] if found else None
