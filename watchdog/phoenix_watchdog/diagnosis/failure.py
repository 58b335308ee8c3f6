"""Plain records that describe how a run ended and what the diagnosis made of it. Pure, no I/O."""

from __future__ import annotations

import signal as _signal
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExitStatus:
    """How the job's main process (or container) ended.

    Attributes:
        code: the exit code 0-255, or None when a signal killed it or the code is unknown.
        signal: the number of the signal that killed it, if any.
        oom_killed: the kernel OOM killer ended it (Docker's ``State.OOMKilled``).
    """

    code: int | None = None
    signal: int | None = None
    oom_killed: bool = False

    @classmethod
    def from_returncode(cls, returncode: int) -> ExitStatus:
        """From ``Popen.returncode`` (negative means killed by that signal)."""
        if returncode < 0:
            return cls(signal=-returncode)
        return cls(code=returncode)

    @property
    def effective_signal(self) -> int | None:
        """The killing signal, also when reported as a shell-style code 128+N (137, 139)."""
        if self.signal is not None:
            return self.signal
        if self.code is not None and 128 < self.code < 128 + 65:
            return self.code - 128
        return None

    @property
    def succeeded(self) -> bool:
        return self.code == 0 and self.signal is None and not self.oom_killed

    def describe(self) -> str:
        sig = self.effective_signal
        parts = []
        if self.code is not None:
            parts.append(f"exit code {self.code}")
        if sig is not None:
            parts.append(f"killed by {signal_name(sig)}")
        if self.oom_killed:
            parts.append("OOM-killed")
        return ", ".join(parts) or "unknown exit"


@dataclass(frozen=True)
class HangInfo:
    """Why the job was declared hung, and where it was stuck.

    Attributes:
        silent_seconds: how long stdout and stderr had been silent.
        stack: the stack dump taken before the kill (py-spy or faulthandler text), if any.
        detail: which evidence decided, for humans ("no new step for 31 s ... while the output
            continued"); empty: silence.
    """

    silent_seconds: float
    stack: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Frame:
    """One source location: the innermost frame in user code."""

    file: str
    line: int
    function: str


@dataclass(frozen=True)
class Diagnosis:
    """What a failure reduces to.

    Attributes:
        signature: stable id of the failure; equal for recurrences, different for different failures.
        category: a `categories.Category` value.
        patchable: whether a code patch could plausibly fix it.
        exception: the root exception type (``ValueError``, ``torch.OutOfMemoryError``), or None.
        message: the root exception message (or the key error line), or None.
        frame: the innermost frame in user code, or None.
        summary: one line for humans.
        files: user source files named in the traceback, innermost last (for the repair prompt).
        evidence: the log lines that decided the category (bounded, for humans and the prompt).
        stream: the rank (``rank1``) or stream whose output decided it, when the lines name one.
        decided_by: the rule that decided the category, in words (``phoenix diagnose --explain``).
        action: the action a user rule of ``phoenix.yaml`` names for this failure, if one decided;
            None leaves the category's configured action in force.
    """

    signature: str
    category: str
    patchable: bool
    exception: str | None
    message: str | None
    frame: Frame | None
    summary: str
    files: tuple[str, ...] = ()
    evidence: tuple[str, ...] = field(default_factory=tuple)
    stream: str | None = None
    decided_by: str | None = None
    action: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The `phoenix diagnose --json` object."""
        data = asdict(self)
        data["files"] = list(self.files)
        data["evidence"] = list(self.evidence)
        return data


def signal_name(number: int) -> str:
    """``SIGKILL`` for 9; ``signal 77`` for numbers with no name."""
    try:
        return _signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
