"""The watchdog's error base class; every error the watchdog raises derives from it."""

from __future__ import annotations


class WatchdogError(Exception):
    """Base of every error raised by ``phoenix_watchdog``."""


class SourceUnavailable(WatchdogError):
    """A log source or probe cannot be read (missing file, closed stream, no driver)."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
