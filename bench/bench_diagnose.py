"""How long `diagnose()` takes on the crash-to-decision path.

    python bench/bench_diagnose.py [--runs N]

The supervisor's median budget from a crash to a decision is 50 ms in all; diagnosis should be a
small fraction of it. Measured here, each as a median (and p90) over N runs:

- a 200-line tail (the usual case): a rank-prefixed torchrun log ending in a CUDA OOM traceback;
- a 200-line tail of a 7-rank NCCL watchdog storm (C++ frames, the densest evidence per line);
- a 1 MB tail: 1 MiB of rank-prefixed progress lines with the traceback at the end;
- a 1 MB tail of NCCL watchdog storms from 64 ranks before a root-cause traceback.

Machines differ, so each figure is also given as a ratio to a baseline measured in the same run
on the same text: splitting it into lines and stripping each, the least any log reader does.
Results are printed and written to bench/results/bench_diagnose.json.
"""

from __future__ import annotations

import argparse
import json
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
    print(f"{'input':32} {'chars':>9} {'median':>9} {'p90':>9} {'budget':>7} {'x baseline':>11}  result")
    for name, text in inputs().items():
        exit = ExitStatus(code=1)
        diagnose(text, exit, workspace="/workspace")  # warm the regex cache
        times = timed(lambda t=text, e=exit: diagnose(t, e, workspace="/workspace"), runs)
        base = timed(lambda t=text: [line.strip() for line in t.splitlines()], runs)
        d = diagnose(text, exit, workspace="/workspace")
        med, p90 = statistics.median(times), sorted(times)[int(0.9 * (len(times) - 1))]
        ratio = med / statistics.median(base)
        results[name] = {"chars": len(text), "median_ms": round(med, 3), "p90_ms": round(p90, 3),
                         "budget_fraction": round(med / BUDGET_MS, 4), "baseline_ratio": round(ratio, 1),
                         "category": d.category}
        print(f"{name:32} {len(text):>9} {med:>7.2f}ms {p90:>7.2f}ms {med / BUDGET_MS:>6.1%} {ratio:>10.1f}x  {d.category}")
    out = ROOT / "bench" / "results" / "bench_diagnose.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": runs, "results": results}, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
