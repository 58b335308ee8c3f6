"""`Candidate`: one piece of evidence competing to explain a failure, with the traceback behind it.

`diagnose` builds the candidates and ranks them; `report` turns the winner into a `Diagnosis`.
Both import this module; neither imports the other's internals (no import circle).
"""

from __future__ import annotations

from dataclasses import dataclass

from phoenix_watchdog.diagnosis.markers import Finding
from phoenix_watchdog.diagnosis.pytrace import PyError, SourceFrame, Traceback


@dataclass(frozen=True)
class Candidate:
    """A `Finding` and, when a Python traceback gave it, that traceback, its root and its frames."""

    finding: Finding
    traceback: Traceback | None = None
    root: PyError | None = None
    frames: tuple[SourceFrame, ...] = ()  # every frame of the chain, final link first, root last
