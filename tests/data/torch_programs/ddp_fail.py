"""gloo ranks under torchrun (2-4 of them); one rank fails at --fail-step in the way --mode says.

raise:   it raises in user code and exits; its peers lose the connection;
linger:  it raises, logs the traceback and keeps its process alive for --linger seconds (uploading
         logs, a flushing logger) so its peers die of the collective timeout first;
stall:   it stalls before the collective longer than the group timeout (gloo timeout everywhere);
barrier: it stalls before a monitored_barrier, which rank 0 reports by rank;
late:    it joins the process group later than the group timeout (the store gives up waiting);
kill:    it is SIGKILLed (as the kernel OOM killer would); segv: it crashes in native code;
oom:     it asks for more host memory than there is; nan: its loss check finds a NaN.
"""

import argparse
import ctypes
import datetime
import math
import os
import signal
import time
import traceback

import torch
import torch.distributed as dist


def check_shard(batch: torch.Tensor, rank: int, step: int) -> None:
    raise ValueError(f"rank {rank}: shard for step {step} has {batch.numel() - 1} rows, expected {batch.numel()}")


def sync_grads(grad: torch.Tensor, mode: str, fail: bool, stall: float, timeout: float) -> None:
    if fail and mode in ("stall", "barrier"):
        time.sleep(stall)  # a slow shard read on this rank
    if mode == "barrier":
        dist.monitored_barrier(timeout=datetime.timedelta(seconds=timeout))
    dist.all_reduce(grad)


def failing_step(a: argparse.Namespace, batch: torch.Tensor, rank: int, step: int) -> None:
    if a.mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if a.mode == "segv":
        ctypes.string_at(0)
    if a.mode == "oom":
        torch.empty(1 << 46, dtype=torch.uint8)
    if a.mode == "nan":
        loss = batch.sum() * math.inf * 0
        if torch.isnan(loss):
            raise FloatingPointError(f"rank {rank}: loss is nan at step {step}")
    if a.mode in ("raise", "linger"):
        check_shard(batch, rank, step)


def train(a: argparse.Namespace) -> None:
    if a.mode == "late" and int(os.environ["RANK"]) == a.fail_rank:
        time.sleep(a.stall)  # a node that boots slowly
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=a.timeout))
    rank = dist.get_rank()
    for step in range(1, 6):
        batch = torch.ones(a.rows) * (rank + step)
        fail = rank == a.fail_rank and step == a.fail_step
        if fail and a.mode not in ("stall", "barrier", "late"):
            try:
                failing_step(a, batch, rank, step)
            except Exception:
                if a.mode != "linger":
                    raise
                traceback.print_exc()
                time.sleep(a.linger)
                raise SystemExit(1)
        sync_grads(batch, a.mode, fail, a.stall, a.timeout)
        print(f"rank {rank} step {step} sum {batch.sum().item():.1f}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--mode", default="raise")
    p.add_argument("--fail-rank", type=int, default=1)
    p.add_argument("--fail-step", type=int, default=3)
    p.add_argument("--rows", type=int, default=4)
    p.add_argument("--timeout", type=float, default=3)
    p.add_argument("--stall", type=float, default=8)
    p.add_argument("--linger", type=float, default=8)
    train(p.parse_args())
