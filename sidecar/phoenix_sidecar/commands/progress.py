"""`phoenix progress`: what progress Phoenix reads in a log, as the supervisor would read it.

For each log: which format was recognised, how many progress reports, the first and last step,
the losses (and whether one was NaN or infinite), the throughput, the divergence the tracker would
call, and with ``--lines`` every recognised line. ``--pattern`` tries a ``progress_pattern``
before settling on one for the config; ``--json`` prints one object per log for scripts.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from typing import Any

from phoenix_sidecar.errors import UsageError
from phoenix_watchdog.progress import ProgressParser, ProgressTracker

MAX_BYTES = 256 * 1024 * 1024  # a bigger log is read up to here: enough to see its format


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "progress", help="show the steps, losses and throughput Phoenix recognises in a training log",
        description="Read training logs the way the supervisor's progress tracker does: which format was "
                    "recognised, the steps, the losses (NaN and blow-ups), the throughput.")
    p.add_argument("logs", nargs="+", metavar="FILE", help="log file; - reads standard input")
    p.add_argument("--pattern", metavar="REGEX", help="a progress_pattern (named groups step, total, loss, "
                                                       "throughput, epoch) tried before the built-in formats")
    p.add_argument("--lines", action="store_true", help="also print every recognised line and what it gave")
    p.add_argument("--json", action="store_true", help="print one JSON object per log, one per line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        parser = ProgressParser(args.pattern)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.logs.count("-") > 1:
        raise UsageError("standard input (-) can be read only once")
    for i, name in enumerate(args.logs):
        report = read_progress(_read(name), parser)
        if args.json:
            print(json.dumps({"input": name, **{k: v for k, v in report.items() if k != "lines"}}, default=str))
            continue
        if i:
            print()
        print(render("stdin" if name == "-" else name, report, lines=args.lines))
    return 0


def read_progress(data: bytes, parser: ProgressParser) -> dict[str, Any]:
    """What a log says about progress, as a plain dict."""
    formats: Counter[str] = Counter()
    lines: list[tuple[int, str, str]] = []
    steps: list[int] = []
    losses: list[float] = []
    rate: tuple[float, str] | None = None
    tracker = ProgressTracker(parser, clock=lambda: 0.0, wall=lambda: 0.0)
    text = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").decode("utf-8", "replace")
    for number, line in enumerate(text.split("\n"), 1):
        reading = parser.parse(line)
        if reading is None:
            continue
        tracker.observe(reading)
        formats[reading.fmt] += 1
        if reading.step is not None and (not steps or steps[-1] != reading.step):
            steps.append(reading.step)
        if reading.loss is not None:
            losses.append(reading.loss)
        if reading.throughput is not None:
            rate = (reading.throughput, reading.unit)
        lines.append((number, line.strip()[:160], _describe(reading)))
    finite = [v for v in losses if math.isfinite(v)]
    divergence = tracker.divergence
    return {
        "formats": dict(formats.most_common()), "reports": len(lines), "steps": len(steps),
        "first_step": steps[0] if steps else None, "last_step": steps[-1] if steps else None,
        "best_step": max(steps) if steps else None, "losses": len(losses),
        "first_loss": finite[0] if finite else None, "last_loss": losses[-1] if losses else None,
        "non_finite_losses": len(losses) - len(finite), "throughput": rate,
        "divergence": divergence.detail if divergence else None, "lines": lines,
    }


def render(name: str, r: dict[str, Any], *, lines: bool = False) -> str:
    if not r["reports"]:
        return (f"{name}:\n  no progress recognised: Phoenix falls back to the silence heartbeat for this job;\n"
                f"  set progress_pattern (a regex with a named group step) if it prints its steps")
    formats = ", ".join(f"{fmt} ({n})" for fmt, n in r["formats"].items())
    rows = [("formats", formats), ("reports", str(r["reports"])),
            ("steps", f"{r['steps']} distinct, {r['first_step']} -> {r['last_step']} (best {r['best_step']})"
             if r["steps"] else "none (loss reports only)")]
    if r["losses"]:
        bad = f", {r['non_finite_losses']} NaN/inf" if r["non_finite_losses"] else ""
        rows.append(("loss", f"{r['losses']} reports, {r['first_loss']} -> {r['last_loss']}{bad}"))
    if r["throughput"]:
        rows.append(("throughput", f"{r['throughput'][0]:.4g} {r['throughput'][1]} (last printed)"))
    rows.append(("divergence", r["divergence"] or "none"))
    out = [f"{name}:"] + [f"  {label:<11} {value}" for label, value in rows]
    if lines:
        out += [f"  {number:>6}: {what:<40} | {text}" for number, text, what in r["lines"]]
    return "\n".join(out)


def _describe(reading: Any) -> str:
    parts = [reading.fmt]
    if reading.step is not None:
        parts.append(f"step {reading.step}" + (f"/{reading.total}" if reading.total else ""))
    if reading.loss is not None:
        parts.append(f"loss {reading.loss:g}")
    if reading.throughput is not None:
        parts.append(f"{reading.throughput:.3g} {reading.unit}")
    return " ".join(parts)


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read(MAX_BYTES)
    try:
        with open(name, "rb") as f:
            return f.read(MAX_BYTES)
    except IsADirectoryError:
        raise UsageError(f"cannot read {name}: it is a directory") from None
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
