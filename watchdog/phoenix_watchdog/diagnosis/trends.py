"""Divergence that no single line announces: an fp16 overflow cascade, a loss that blows up.

One ``Gradient overflow. Skipping step`` is routine (dynamic loss scaling probes for the largest
scale that fits); dozens near the end of a log mean the scale is collapsing and training diverges,
and so do a few halvings in a row that drive the scale down to a handful.
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
HALVINGS = 4               # or this many halvings in a row (no step succeeded in between: the scale
SCALE_FLOOR = 8.0          # would have stayed) that end at or below this loss scale
MIN_LOSSES = 5             # loss values needed before a trend means anything
BLOWUP_FACTOR = 1000.0     # the last losses against the typical earlier one
BLOWUP_MIN = 100.0         # and at least this large
TREND = 32                 # strength: above a kill without evidence (30), below any exception
_OVERFLOW = ("Gradient overflow", "Skipping step", "reducing loss scale", "overflow detected")
_REDUCED_TO = re.compile(r"reducing (?:loss scale )?to (?P<to>\d+(?:\.\d+)?)")
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
    halvings = _last_halvings(overflow)
    if len(overflow) >= OVERFLOW_CASCADE or halvings:
        last = overflow[-1]
        shown = f"{len(overflow)} gradient overflows in the last lines; last: {last.text.strip()}"
        why = (f"at least {OVERFLOW_CASCADE} fp16 overflow reports" if len(overflow) >= OVERFLOW_CASCADE else
               f"{halvings} loss-scale halvings in a row, down to {SCALE_FLOOR:g} or less")
        out.append(Finding("nan_divergence", TREND, "fp16_overflow_cascade", shown[:300], last.pos, last.stream,
                           f"trend rule: {why}"))
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


def _last_halvings(overflow: list[LogLine]) -> int:
    """The halvings in a row that end the overflow reports, when they reach the floor; else 0.

    Each report that names the new scale (DeepSpeed's "Attempted loss scale: 8, reducing to 4",
    apex's "reducing loss scale to 4.0") must halve the one before: a step that succeeded in
    between, or a scale that grew back, breaks the run.
    """
    scales = [float(m["to"]) for ln in overflow if (m := _REDUCED_TO.search(ln.text))]
    if not scales or scales[-1] > SCALE_FLOOR:
        return 0
    run = 1
    while run < len(scales) and scales[-run - 1] == 2 * scales[-run]:
        run += 1
    return run if run >= HALVINGS else 0
