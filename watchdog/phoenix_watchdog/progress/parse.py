"""One line of a training job's output -> the step, loss and throughput it reports, if any. Pure.

The formats recognised without configuration, most specific first (the first that finds a step
wins; the loss and the throughput are then looked for in the same line):

- a user's ``progress_pattern``: a regex with named groups ``step`` (and optionally ``total``,
  ``loss``, ``throughput``, ``epoch``); when it is set it is tried first;
- Megatron-LM: ``iteration  100/ 5000 | ... elapsed time per iteration (ms): 812.3 | ... lm loss: 6.1E+00``;
- DeepSpeed: ``step=100, skipped=0, lr=[...]`` and ``steps: 100 loss: 2.34 iter time (s): 0.5 samples/sec: 62``;
- nanoGPT: ``iter 100: loss 2.3456, time 45.67ms, mfu 12.3%``;
- tqdm bars, the Hugging Face Trainer's and PyTorch Lightning's included:
  ``Epoch 1:  45%|████▌     | 45/100 [00:09<00:11,  4.87it/s, v_num=0, train_loss=0.512]``
  (Lightning's epoch prefix makes the step global: epoch x total + n), Lightning's rich bar
  ``Epoch 1/9  ━━━━━━━━ 45/100 0:00:09 • 0:00:11 4.87it/s train_loss: 0.512``; only bars counting
  iterations (``it/s``, ``s/it``) are steps: a download bar in bytes or a ``Map`` bar in examples is not;
- ``step N``, ``global_step N``, ``iter N``, ``iteration N/M`` with ``:``, ``=`` or nothing between.

A line with a loss but no step (the Hugging Face Trainer's ``{'loss': 0.51, 'learning_rate': 4e-05,
'epoch': 0.3}``) is a `Reading` with ``step=None``: the tracker gives its loss to the latest step.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["PATTERN_GROUPS", "ProgressParser", "Reading", "compile_pattern", "may_hold_progress"]

NUM = r"[-+]?(?:nan|inf(?:inity)?|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
PATTERN_GROUPS = ("step", "total", "loss", "throughput", "epoch")
MAX_LINE = 4096  # a longer "line" is a dump, not a progress report

# Every built-in format has one of these words: a line (or a whole block of output) without any is
# skipped with one search, so a job that prints a lot costs next to nothing.
HINTS = ("step", "iter", "it/s", "s/it", "loss", "━")
HINTS_BYTES = tuple(h.encode() for h in HINTS)


def may_hold_progress(data: bytes) -> bool:
    """Whether a block of output could hold a built-in progress report (plain substring searches: fast)."""
    low = data.lower()
    return any(h in low for h in HINTS_BYTES)
_MEGATRON = re.compile(r"\biteration\s+(\d+)\s*/\s*(\d+)\s*\|")
_MEGATRON_LOSS = re.compile(rf"\blm loss:\s*({NUM})", re.I)
_MEGATRON_MS = re.compile(rf"elapsed time per iteration \(ms\):\s*({NUM})")
_DEEPSPEED = re.compile(r"(?:\bstep=(\d+),\s*skipped=\d+|\bsteps:\s*(\d+)\s+loss:)")
_DEEPSPEED_SAMPLES = re.compile(rf"samples/sec:\s*({NUM})")
_NANOGPT = re.compile(rf"\biter\s+(\d+):\s*loss\s+({NUM})(?:,\s*time\s+({NUM})\s*ms)?")
_BAR = re.compile(r"\|\s*(\d+)/(\d+)\s*\[[\d:]+<[\d:?]+,\s*(?:(\d+(?:\.\d+)?)\s*(it/s|s/it)|\?it/s)([^\]]*)\]")
_BAR_NO_TOTAL = re.compile(r"(?:^|\s|\|)(\d+)it\s*\[[\d:]+,\s*(?:(\d+(?:\.\d+)?)\s*(it/s|s/it)|\?it/s)([^\]]*)\]")
_RICH_BAR = re.compile(r"[━╸╺─]+\s*(\d+)/(\d+)\s+[\d:]+\s*•\s*[\d:-]+\s*(?:(\d+(?:\.\d+)?)\s*(it/s|s/it))?")
_EPOCH = re.compile(r"\bEpoch\s+(\d+)(?:/\d+)?\s*:?", re.I)
_STEP = re.compile(r"(?<![\w.])(?:global[_ ]step|step|iter|iteration)s?\b\s*[:=#]?\s*(\d+)(?:\s*/\s*(\d+))?", re.I)
_LOSS = re.compile(rf"(?<![\w.])(?:train[_ ]|training[_ ]|lm[_ ])?loss['\"]?\s*[:=]?\s*(?:tensor\()?({NUM})(?![\w.])", re.I)
_RATE = re.compile(rf"({NUM})\s*(it/s|steps?/s|samples/s(?:ec)?|tokens/s(?:ec)?|tok/s)\b")


@dataclass(frozen=True)
class Reading:
    """What one line reports.

    Attributes:
        step: the step (iteration) number, or None for a line that reports only a loss.
        total: the planned number of steps, when printed.
        loss: the training loss, when printed (may be NaN or infinite: that is the point).
        throughput: the printed rate (in ``unit``), or one derived from a printed step time.
        unit: ``it/s``, ``samples/s``, ``tokens/s``, ... ("" without a throughput).
        fmt: which recogniser matched (``tqdm``, ``megatron``, ``custom``, ...), for humans.
    """

    step: int | None
    total: int | None = None
    loss: float | None = None
    throughput: float | None = None
    unit: str = ""
    fmt: str = ""


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A ``progress_pattern`` setting, checked: a valid regex with a ``step`` group and only known groups.

    Raises:
        ValueError: saying what is wrong with it.
    """
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"progress_pattern {pattern!r} is not a valid regular expression: {exc}") from None
    groups = set(compiled.groupindex)
    if "step" not in groups and "loss" not in groups:
        raise ValueError(f"progress_pattern {pattern!r} needs a named group (?P<step>...) (or (?P<loss>...))")
    unknown = groups - set(PATTERN_GROUPS)
    if unknown:
        raise ValueError(f"progress_pattern {pattern!r} has unknown groups {sorted(unknown)}; "
                         f"known: {', '.join(PATTERN_GROUPS)}")
    return compiled


class ProgressParser:
    """Parses lines; ``pattern`` (a ``progress_pattern``) is tried before the built-in formats."""

    def __init__(self, pattern: str | None = None) -> None:
        self.pattern = compile_pattern(pattern) if pattern else None

    def parse(self, line: str) -> Reading | None:
        """The progress ``line`` reports, or None when it reports none."""
        if len(line) > MAX_LINE or not line.strip():
            return None
        if self.pattern is not None:
            found = self._custom(line)
            if found is not None:
                return found
        low = line.lower()
        if not any(h in low for h in HINTS):
            return None
        for recogniser in (_megatron, _deepspeed, _nanogpt, _bar, _generic):
            found = recogniser(line)
            if found is not None:
                return found
        return None

    def _custom(self, line: str) -> Reading | None:
        assert self.pattern is not None
        match = self.pattern.search(line)
        if match is None:
            return None
        groups = match.groupdict()
        step = _int(groups.get("step"))
        loss = _float(groups.get("loss"))
        if step is None and loss is None:
            return None
        epoch, total = _int(groups.get("epoch")), _int(groups.get("total"))
        if epoch is not None and total and step is not None and step < total:
            step = epoch * total + step
        throughput = _float(groups.get("throughput"))
        return Reading(step, total, loss, throughput, "/s" if throughput is not None else "", "custom")


def _megatron(line: str) -> Reading | None:
    match = _MEGATRON.search(line) if "iteration" in line else None
    if match is None:
        return None
    loss = _MEGATRON_LOSS.search(line)
    ms = _MEGATRON_MS.search(line)
    rate = _per_second(ms.group(1), 1000.0) if ms else None
    return Reading(int(match.group(1)), int(match.group(2)), _float(loss.group(1)) if loss else None,
                   rate, "it/s" if rate is not None else "", "megatron")


def _deepspeed(line: str) -> Reading | None:
    match = _DEEPSPEED.search(line) if "step" in line else None
    if match is None:
        return None
    step = int(match.group(1) or match.group(2))
    samples = _DEEPSPEED_SAMPLES.search(line)
    rate = _float(samples.group(1)) if samples else None
    return Reading(step, None, _loss(line), rate, "samples/s" if rate is not None else "", "deepspeed")


def _nanogpt(line: str) -> Reading | None:
    match = _NANOGPT.search(line) if "iter " in line else None
    if match is None:
        return None
    rate = _per_second(match.group(3), 1000.0) if match.group(3) else None
    return Reading(int(match.group(1)), None, _float(match.group(2)), rate, "it/s" if rate is not None else "",
                   "nanogpt")


def _bar(line: str) -> Reading | None:
    """The last tqdm-style bar on the line (a line of carriage returns holds several refreshes)."""
    if "it/s" not in line and "s/it" not in line and "━" not in line:
        return None
    found = None
    for match in _BAR.finditer(line):
        found = (int(match.group(1)), int(match.group(2)), match.group(3), match.group(4), match.group(5), "tqdm")
    if found is None:
        for match in _RICH_BAR.finditer(line):
            rest = line[match.end():]
            found = (int(match.group(1)), int(match.group(2)), match.group(3), match.group(4), rest, "lightning")
    if found is None:
        for match in _BAR_NO_TOTAL.finditer(line):
            found = (int(match.group(1)), None, match.group(2), match.group(3), match.group(4), "tqdm")
    if found is None:
        return None
    n, total, rate_text, unit, postfix, fmt = found
    step = n
    epoch = _EPOCH.search(line)
    if epoch is not None and total:
        step, fmt = int(epoch.group(1)) * total + n, "lightning"
    rate = None
    if rate_text is not None:
        rate = float(rate_text) if unit == "it/s" else _per_second(rate_text, 1.0)
    return Reading(step, total, _loss(postfix or ""), rate, "it/s" if rate is not None else "", fmt)


def _generic(line: str) -> Reading | None:
    match = _STEP.search(line)
    loss = _loss(line)
    if match is None:
        if loss is not None and ("'loss'" in line or '"loss"' in line):
            return Reading(None, None, loss, None, "", "hf_trainer")  # the Trainer's log dict
        return None
    rate = _RATE.search(line)
    throughput = _float(rate.group(1)) if rate else None
    return Reading(int(match.group(1)), _int(match.group(2)), loss, throughput,
                   _unit(rate.group(2)) if rate else "", "step")


def _loss(text: str) -> float | None:
    match = _LOSS.search(text)
    return _float(match.group(1)) if match else None


def _unit(text: str) -> str:
    return {"step/s": "it/s", "steps/s": "it/s", "samples/sec": "samples/s", "tokens/sec": "tokens/s",
            "tok/s": "tokens/s"}.get(text, text)


def _per_second(text: str | None, scale: float) -> float | None:
    """A rate from a printed duration per step (``scale`` units per second): 250 ms -> 4/s."""
    value = _float(text)
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return scale / value


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None
