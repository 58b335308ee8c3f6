"""Progress: what the job's own output says about how far training got, and whether it still moves.

    parse    one line of output -> a `Reading` (step, total, loss, throughput) in the formats people
             print without configuring anything (tqdm, Lightning, the Hugging Face Trainer,
             DeepSpeed, Megatron, nanoGPT, ``step N``), or a user's ``progress_pattern``
    tracker  the readings of a run over time: the learned no-progress timeout, the best step, the
             loss divergence and throughput slowdown checks; fed from the output tail's thread
    judge    the hang verdict: no progress, or silence, deferred while the GPUs are busy

Pure bookkeeping on injected clocks; nothing here reads a device or a file, starts a thread or
kills anything. May import: the standard library only.
"""

from __future__ import annotations

from phoenix_watchdog.progress.judge import HangJudge, HangVerdict
from phoenix_watchdog.progress.parse import ProgressParser, Reading, compile_pattern
from phoenix_watchdog.progress.tracker import Divergence, LearnedTimeout, ProgressSnapshot, ProgressTracker

__all__ = ["Divergence", "HangJudge", "HangVerdict", "LearnedTimeout", "ProgressParser", "ProgressSnapshot",
           "ProgressTracker", "Reading", "compile_pattern"]
