"""Errors of the sidecar. One base class; each error carries the data a human needs.

Adapters (Docker, git, subprocess, HTTP, the file system) translate foreign exceptions into these
at their boundary. The CLI maps them to exit codes in one place (``phoenix_sidecar.cli``).
"""

from __future__ import annotations

from typing import Any


class PhoenixError(Exception):
    """Base of every error raised by ``phoenix_sidecar``."""


class ConfigError(PhoenixError):
    """A configuration value is missing, malformed or not allowed.

    Attributes:
        key: the configuration key (``heartbeat_min``), or None for whole-file problems.
        source: where the value came from (``env PHOENIX_HEARTBEAT_MIN``, ``file phoenix.yaml``).
        problem: what is wrong with it, including what is allowed.
    """

    def __init__(self, problem: str, *, key: str | None = None, source: str | None = None) -> None:
        where = ""
        if key and source:
            where = f"{key} (from {source}): "
        elif key:
            where = f"{key}: "
        elif source:
            where = f"{source}: "
        super().__init__(f"{where}{problem}")
        self.key = key
        self.source = source
        self.problem = problem


class UsageError(PhoenixError):
    """The command line itself is wrong (missing argument, conflicting options)."""


class LockHeld(PhoenixError):
    """Another process holds the workspace lock.

    Attributes:
        path: the lock file.
        holder: what the holder recorded (pid, host, started, command), possibly empty.
    """

    def __init__(self, path: str, holder: dict[str, Any]) -> None:
        desc = describe_holder(holder)
        who = "an orphaned job holds" if holder.get("orphaned_job") else "another Phoenix holds"
        super().__init__(f"{who} {path}: {desc}")
        self.path = path
        self.holder = holder


class LockUnavailable(PhoenixError):
    """The lock cannot be taken at all (unwritable directory, filesystem without locks)."""


class RuntimeUnavailable(PhoenixError):
    """The job runtime cannot be reached (Docker daemon down, container missing, spawn failed)."""


class DockerUnreachable(RuntimeUnavailable):
    """The Docker daemon does not answer: socket missing, daemon down, or a call timed out.

    Attributes:
        timed_out: the request was sent but no answer came in time, so it may have taken effect.
    """

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class ContainerGone(RuntimeUnavailable):
    """The supervised container does not exist (any more)."""


class RefusedAction(PhoenixError):
    """Phoenix refused an action outside its mandate (another container, a path outside the workspace)."""


class StateError(PhoenixError):
    """Phoenix's own state could not be read or written (corrupt file, full disk)."""


class AnswerRejected(PhoenixError):
    """An LLM answer (or a saved one) was refused before anything was written.

    Attributes:
        reason: a bounded code (``allowlist``, ``ambiguous``, ...), the label of ``events.PatchRejected``.
        detail: one human line saying what was wrong.
        file_path: the patch target concerned, if any.
    """

    def __init__(self, reason: str, detail: str, *, file_path: str | None = None) -> None:
        where = f"{file_path}: " if file_path else ""
        super().__init__(f"{where}{detail} [{reason}]")
        self.reason = reason
        self.detail = detail
        self.file_path = file_path


class RepairError(PhoenixError):
    """The repair machinery could not do its work (git, the isolated copy, a promotion conflict)."""


class LlmError(PhoenixError):
    """An LLM client failed.

    Attributes:
        kind: bounded: ``timeout``, ``http``, ``rate_limited``, ``process``, ``parse`` or ``config``.
        client: the client's name (``gemini_api``).
    """

    def __init__(self, kind: str, message: str, *, client: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.client = client


class GaveUp(PhoenixError):
    """The supervisor stopped the job for good: a budget ran out or the category says stop.

    Attributes:
        summary: the multi-line give-up summary printed for the human.
        incident: the incident record that ended the run.
    """

    def __init__(self, summary: str, incident: dict[str, Any]) -> None:
        super().__init__(summary)
        self.summary = summary
        self.incident = incident


def describe_holder(holder: dict[str, Any]) -> str:
    """One line naming a lock holder from its recorded fields."""
    if not holder:
        return "holder unknown (no record in the lock file)"
    orphan = holder.get("orphaned_job")
    if orphan:
        pids = ", ".join(str(p) for p in orphan.get("pids") or []) or "none found"
        group = f"; stop it with: kill -TERM -- -{orphan['pgid']}" if orphan.get("pgid") else ""
        return (f"the job of a Phoenix that died (pid {holder.get('pid')}) is still running "
                f"({orphan.get('program') or 'program unknown'}), pids {pids}; it holds the lock until "
                f"it exits: wait for it (phoenix lock --wait) or stop it{group}")
    parts = []
    if holder.get("pid") is not None:
        parts.append(f"pid {holder['pid']}")
    if holder.get("host"):
        parts.append(f"on {holder['host']}")
    if holder.get("started"):
        parts.append(f"since {holder['started']}")
    if holder.get("command"):
        parts.append(f"running {holder['command']!r}")
    return ", ".join(parts) if parts else "holder unknown"
