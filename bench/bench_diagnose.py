"""How long `diagnose()` takes on the crash-to-decision path.

    python bench/bench_diagnose.py [--runs N]

The supervisor's median budget from a crash to a decision is 50 ms in all; diagnosis should be a
small fraction of it (aim: a 1 MB tail in about a fifth of it, 10 ms). Measured here, each as a
median (and p90, p95) over N runs:

- a 200-line tail (the usual case): a rank-prefixed torchrun log ending in a CUDA OOM traceback;
- a 200-line tail of a 7-rank NCCL watchdog storm (C++ frames, the densest evidence per line);
- a 1 MB tail: 1 MiB of rank-prefixed progress lines with the traceback at the end;
- a 1 MB tail of NCCL watchdog storms from 64 ranks before a root-cause traceback;
- a 1 MB tail of tqdm progress bars (``\r``-overwritten, a newline per epoch) glued to a traceback;
- a 1 MB tail of 8 interleaved ranks behind Docker timestamps and ``host:rank:`` tags, one rank's
  traceback among them.

Machines differ, so each figure is also given as a ratio to a baseline measured in the same run
on the same text: splitting it into lines and stripping each, the least any log reader does.
Results are printed and written to bench/results/bench_diagnose.json.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "watchdog")]

from phoenix_watchdog.diagnosis.diagnose import diagnose  # noqa: E402
from phoenix_watchdog.diagnosis.failure import ExitStatus  # noqa: E402

LOGS = ROOT / "tests" / "data" / "logs"
BUDGET_MS = 50.0
MIB = 1 << 20


def progress(n: int, ranks: int = 8) -> str:
    return "".join(f"[rank{i % ranks}]:[2025-03-04 09:{i // 60 % 60:02d}:{i % 60:02d},{i % 1000:03d}][train][INFO] - "
                   f"epoch 3 step {11000 + i} | loss {2.2 - i * 1e-5:.4f} | lr 2.9e-04 | 3.41 it/s\n" for i in range(n))


def bars(n: int, per_line: int = 400) -> str:
    """tqdm to a file: each update overwrites the last with ``\r``; a newline ends an epoch."""
    out = []
    for i in range(n):
        out.append(f"\rEpoch {i // per_line}: {i % per_line * 100 // per_line:3d}%|{'#' * (i % per_line * 10 // per_line):10}| "
                   f"{i % per_line}/{per_line} [00:{i % 60:02d}<01:{(i * 7) % 60:02d}, {3 + i % 7 / 10:.2f}it/s, loss={2.5 - i * 1e-5:.3f}]")
        if i % per_line == per_line - 1:
            out.append("\n")
    return "".join(out)


def tagged(text: str, ranks: int = 8) -> str:
    """Every line behind a Docker timestamp and a pdsh-style ``host:rank:`` tag, ranks interleaved."""
    return "".join(f"2025-03-04T09:{i // 60 % 60:02d}:{i % 60:02d}.{i * 7919 % 10**9:09d}Z node-a{i % ranks // 4}:{i % ranks}: {line}\n"
                   for i, line in enumerate(text.splitlines()))


def tail_lines(text: str, n: int) -> str:
    return "\n".join(text.splitlines()[-n:]) + "\n"


def fill_to(size: int, filler: str, ending: str) -> str:
    """``filler`` repeated (cut at a line boundary) so that filler + ending is ``size`` characters."""
    body = (filler * (size // len(filler) + 1))[: size - len(ending)]
    return body[body.find("\n") + 1:] + ending


def inputs() -> dict[str, str]:
    oom = (LOGS / "gpu_cuda_oom_rank3.log").read_text()
    storm = (LOGS / "gpu_nccl_timeout_8ranks.log").read_text()
    storm64 = "".join(storm.replace("[rank", f"[rank{k}").replace("Rank ", f"Rank {k}") for k in range(10))
    return {
        "200-line tail, OOM": tail_lines(progress(400) + oom, 200),
        "200-line tail, NCCL storm": tail_lines(storm, 200),
        "1 MB tail, progress + OOM": fill_to(MIB, progress(20000), oom),
        "1 MB tail, NCCL storms + OOM": fill_to(MIB, storm64, (LOGS / "gpu_cuda_oom_single.log").read_text()),
        "1 MB tail, tqdm bars + OOM": fill_to(MIB, bars(12000), "\r" + (LOGS / "gpu_cuda_oom_single.log").read_text()),
        "1 MB tail, 8 tagged ranks + OOM": fill_to(MIB, tagged(re.sub(r"(?m)^\[rank\d+\]:", "", progress(12000))),
                                                   tagged((LOGS / "gpu_cuda_oom_single.log").read_text())),
    }


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=31)
    runs = parser.parse_args().runs
    results = {}
    print(f"diagnose() timings, {runs} runs each (budget: {BUDGET_MS:.0f} ms median from crash to decision)\n")
    print(f"{'input':32} {'chars':>9} {'median':>9} {'p90':>9} {'p95':>9} {'budget':>7} {'x baseline':>11}  result")
    for name, text in inputs().items():
        exit = ExitStatus(code=1)
        diagnose(text, exit, workspace="/workspace")  # warm the regex cache
        times = timed(lambda t=text, e=exit: diagnose(t, e, workspace="/workspace"), runs)
        base = timed(lambda t=text: [line.strip() for line in t.splitlines()], runs)
        d = diagnose(text, exit, workspace="/workspace")
        med, p90, p95 = (statistics.median(times), sorted(times)[int(0.9 * (len(times) - 1))],
                         sorted(times)[int(0.95 * (len(times) - 1))])
        ratio = med / statistics.median(base)
        results[name] = {"chars": len(text), "median_ms": round(med, 3), "p90_ms": round(p90, 3), "p95_ms": round(p95, 3),
                         "budget_fraction": round(med / BUDGET_MS, 4), "baseline_ratio": round(ratio, 1),
                         "category": d.category}
        print(f"{name:32} {len(text):>9} {med:>7.2f}ms {p90:>7.2f}ms {p95:>7.2f}ms {med / BUDGET_MS:>6.1%} {ratio:>10.1f}x  {d.category}")
    out = ROOT / "bench" / "results" / "bench_diagnose.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": runs, "results": results}, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
