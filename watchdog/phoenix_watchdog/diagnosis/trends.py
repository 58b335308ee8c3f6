"""Divergence that no single line announces: an fp16 overflow cascade, a loss that blows up.

One ``Gradient overflow. Skipping step`` is routine (dynamic loss scaling probes for the largest
scale that fits); dozens near the end of a log mean the scale is collapsing and training diverges.
A loss that climbs by orders of magnitude has diverged even when it never prints "nan". Both are
judged over the last lines only, and rank low (just above a bare kill signal): when something else
ended the run, that wins.
"""

from __future__ import annotations

import re
import statistics

from phoenix_watchdog.diagnosis.logtext import LogLine
from phoenix_watchdog.diagnosis.markers import Finding

WINDOW = 2000              # the last lines looked at for overflow reports
LOSS_WINDOW = 300          # the last lines looked at for loss values: a blow-up is at the end
OVERFLOW_CASCADE = 10      # overflow reports in the window that make a cascade
MIN_LOSSES = 5             # loss values needed before a trend means anything
BLOWUP_FACTOR = 1000.0     # the last losses against the typical earlier one
BLOWUP_MIN = 100.0         # and at least this large
TREND = 32                 # strength: above a kill without evidence (30), below any exception
_OVERFLOW = ("Gradient overflow", "Skipping step", "reducing loss scale", "overflow detected")
_LOSS = re.compile(r"(?<![A-Za-z0-9])[Ll]oss\b['\"]?\s*(?:[:=]|is)?\s*(?P<v>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\b")


def divergence_findings(lines: list[LogLine]) -> list[Finding]:
    """A nan_divergence finding for an overflow cascade or a loss blow-up in the tail, if any."""
    overflow: list[LogLine] = []
    losses: list[tuple[float, LogLine]] = []
    loss_from = len(lines) - LOSS_WINDOW
    for ln in lines[-WINDOW:]:
        text = ln.text
        if "verflow" in text or "Skipping step" in text:
            if any(w in text for w in _OVERFLOW):
                overflow.append(ln)
        elif ln.pos >= loss_from and "oss" in text and (m := _LOSS.search(text)):
            try:
                losses.append((float(m["v"]), ln))
            except ValueError:
                continue
    out = []
    if len(overflow) >= OVERFLOW_CASCADE:
        last = overflow[-1]
        shown = f"{len(overflow)} gradient overflows in the last lines; last: {last.text.strip()}"
        out.append(Finding("nan_divergence", TREND, "fp16_overflow_cascade", shown[:300], last.pos, last.stream,
                           f"trend rule: at least {OVERFLOW_CASCADE} fp16 overflow reports"))
    if len(losses) >= MIN_LOSSES:
        values = [abs(v) for v, _ in losses]
        typical = statistics.median(values[: max(1, len(values) // 4)])  # the early losses
        peak_at = max(range(len(values) - 3, len(values)), key=lambda i: values[i])
        peak = values[peak_at]
        if peak >= BLOWUP_MIN and peak >= BLOWUP_FACTOR * max(typical, 1e-3):
            ln = losses[peak_at][1]
            shown = f"loss rose from about {typical:.3g} to {peak:.3g}: {ln.text.strip()}"
            out.append(Finding("nan_divergence", TREND, "loss_blowup", shown[:300], ln.pos, ln.stream,
                               f"trend rule: loss grew more than {BLOWUP_FACTOR:.0f}x over its earlier median"))
    return out
