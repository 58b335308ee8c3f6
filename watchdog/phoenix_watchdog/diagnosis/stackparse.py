"""Reading thread stacks from py-spy dumps and faulthandler output (`stackdump` takes them).

A hung job's stack is taken before it is killed (``py-spy dump``, or faulthandler on a signal),
and a crashing interpreter prints one itself ("Fatal Python error: Segmentation fault" followed by
"Current thread 0x... (most recent call first):"). Both list frames innermost first:

    py-spy:        Thread 4242 (idle): "MainThread"
                       wait_for_data (train.py:40)
    faulthandler:  Current thread 0x00007f12 (most recent call first):
                     File "/workspace/train.py", line 40 in wait_for_data

`parse_stacks` reads either (several processes of ``py-spy dump --subprocesses`` included) and
`main_thread` picks the thread whose position explains a hang.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from phoenix_watchdog.diagnosis.failure import Frame
from phoenix_watchdog.diagnosis.usercode import is_user_path

_PYSPY_THREAD = re.compile(r'^Thread (?P<id>\S+) \((?P<state>[^)]*)\)(?:: "(?P<name>.*)")?\s*$')
_PYSPY_FRAME = re.compile(r"^\s+(?P<func>\S.*?) \((?P<file>[^()]+?):(?P<line>\d+)\)\s*$")
_FH_THREAD = re.compile(
    r"^(?P<current>Current thread|Thread) (?P<id>0x[0-9a-fA-F]+)(?: \[(?P<name>[^\]]*)\])? \(most recent call first\):"
    r"|^(?P<stack>Stack) \(most recent call first\):"
)
_FH_FRAME = re.compile(r'^\s+File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>.+?)\s*$')
MAX_FRAMES = 200


@dataclass(frozen=True)
class ThreadStack:
    """One thread of a dump. ``frames`` are innermost first, as both tools print them."""

    ident: str
    name: str
    current: bool  # faulthandler's "Current thread": the one that crashed or took the signal
    frames: tuple[Frame, ...]

    @property
    def is_main(self) -> bool:
        return self.name == "MainThread" or bool(self.frames and self.frames[-1].function == "<module>")

    def innermost_user(self, workspace: str | None) -> Frame | None:
        """The innermost frame in user code (see `usercode`), falling back when nothing is under the workspace."""
        for strict in (True, False):
            for fr in self.frames:
                if is_user_path(fr.file, workspace, strict=strict):
                    return fr
            if not workspace:
                break
        return None


def parse_stacks(lines: Iterable[str]) -> list[ThreadStack]:
    """Every thread stack in the text, in order. Lines that belong to no stack are skipped."""
    threads: list[ThreadStack] = []
    ident = name = ""
    current = False
    frames: list[Frame] | None = None

    def close() -> None:
        nonlocal frames
        if frames is not None:
            threads.append(ThreadStack(ident, name, current, tuple(frames[:MAX_FRAMES])))
        frames = None

    for raw in lines:
        line = raw.rstrip()
        if line.startswith("Thread "):
            m = _PYSPY_THREAD.match(line)
            if m:
                close()
                ident, name, current, frames = m["id"], m["name"] or "", False, []
                continue
        if "most recent call first" in line:
            m = _FH_THREAD.match(line.lstrip())
            if m:
                close()
                ident = m["id"] or ""
                name = m["name"] or ""
                current = bool(m["current"] == "Current thread" or m["stack"])
                frames = []
                continue
        if frames is None or not line.strip():
            continue
        m = _FH_FRAME.match(line) if 'File "' in line else _PYSPY_FRAME.match(line)
        if m:
            frames.append(Frame(m["file"], int(m["line"]), m["func"]))
        elif not line.startswith((" ", "\t")):
            close()  # "Extension modules: ...", the next log line: the stack is over
    close()
    return threads


def main_thread(threads: list[ThreadStack], workspace: str | None) -> ThreadStack | None:
    """The thread whose position explains a hang.

    The main thread of the process that runs user code: py-spy names it "MainThread"; faulthandler
    does not, but the main thread is the one whose outermost frame is ``<module>``. With
    ``py-spy --subprocesses`` the launcher's own main thread (torchrun) has no user frame, so a main
    thread with user code is preferred. Failing all that, faulthandler's current thread, then the first.
    """
    if not threads:
        return None
    mains = [t for t in threads if t.is_main]
    for t in mains:
        if t.innermost_user(workspace) is not None:
            return t
    if mains:
        return mains[0]
    return next((t for t in threads if t.current), threads[0])


def crashed_thread(threads: list[ThreadStack]) -> ThreadStack | None:
    """The thread that crashed: faulthandler's "Current thread", else the first one printed."""
    return next((t for t in threads if t.current), threads[0] if threads else None)
