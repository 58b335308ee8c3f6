"""The file tailer's costs: following a quiet log, and catching up with a flood.

    python bench/bench_tail.py [--window S] [--megabytes N]

- idle:  CPU of `FileTailer.follow` on a quiet file at the default 0.25 s interval, measured with
         time.thread_time inside the following thread over a window. Target: < 1 % of one core.
         Baseline: a thread that only wakes at the same interval (the least any poller costs).
- flood: N MiB appended to the log in 1 MiB writes, rotated by rename every 16 MiB, then read by
         `poll` until everything arrived. Baseline: the same bytes read with plain ``os.read`` (what
         ``cat`` does). Target: within 3x of the baseline.

Machines differ, so each figure is also given as a ratio to its baseline measured in the same run.
(The tests check only the behaviour these rest on: one poll per interval, nothing lost.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "watchdog")]

from phoenix_watchdog.sources.filetail import FileTailer  # noqa: E402

MIB = 1 << 20
INTERVAL = 0.25


def thread_cpu(target, window: float) -> float:
    """CPU seconds ``target(stop)`` spends in its own thread over ``window`` seconds."""
    stop = threading.Event()
    spent: list[float] = []

    def run() -> None:
        cpu0 = time.thread_time()
        target(stop)
        spent.append(time.thread_time() - cpu0)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(window)
    stop.set()
    thread.join()
    return spent[0]


def bench_idle(window: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "train.log"
        log.write_text("hello\n")
        tailer = FileTailer(log, lambda data: None)
        tail_cpu = thread_cpu(lambda stop: tailer.follow(stop, INTERVAL), window)
        tailer.close()

    def wake_only(stop: threading.Event) -> None:
        while not stop.wait(INTERVAL):
            pass

    base_cpu = thread_cpu(wake_only, window)
    pct = tail_cpu / window * 100
    return {"window_s": window, "tailer_pct_of_one_core": round(pct, 4),
            "baseline_wakeups_pct_of_one_core": round(base_cpu / window * 100, 4),
            "ratio_vs_baseline": round(tail_cpu / base_cpu, 2) if base_cpu else None,
            "target_pct": 1.0, "pass": pct < 1.0}


def bench_flood(megabytes: int) -> dict:
    block = b"".join(b"step %08d loss 2.2 lr 3e-4 | rank 0 | tokens/s 123456\n" % i for i in range(MIB // 56 + 1))[:MIB]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "train.log"
        got = [0]
        tailer = FileTailer(log, lambda data: got.__setitem__(0, got[0] + len(data)), from_end=False)
        generations = []
        fh = open(log, "ab")
        for i in range(megabytes):
            if i and i % 16 == 0:
                fh.close()
                generations.append(Path(tmp) / f"train.log.{i // 16}")
                os.replace(log, generations[-1])
                fh = open(log, "ab")
            fh.write(block)
        fh.close()
        generations.append(log)
        start = time.perf_counter()
        while got[0] < megabytes * MIB:
            tailer.poll()
        tail_s = time.perf_counter() - start
        tailer.close()
        start = time.perf_counter()
        total = 0
        for path in generations:
            fd = os.open(path, os.O_RDONLY)
            while chunk := os.read(fd, MIB):
                total += len(chunk)
            os.close(fd)
        base_s = time.perf_counter() - start
    ratio = tail_s / base_s
    return {"mebibytes": megabytes, "tail_s": round(tail_s, 4), "tail_mib_per_s": round(megabytes / tail_s, 1),
            "baseline_plain_read_s": round(base_s, 4), "ratio_vs_baseline": round(ratio, 2),
            "target_ratio": 3.0, "pass": ratio <= 3.0 and got[0] == total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=float, default=10.0, help="seconds of the idle window")
    parser.add_argument("--megabytes", type=int, default=256, help="MiB of the flood")
    args = parser.parse_args()
    results = {"idle": bench_idle(args.window), "flood": bench_flood(args.megabytes)}
    for name, result in results.items():
        print(f"{name}:")
        for key, value in result.items():
            print(f"  {key:36s} {value}")
    out = ROOT / "bench" / "results" / "bench_tail.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0 if all(r["pass"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
