"""torch.multiprocessing.spawn with one worker killed by SIGKILL mid-run (as an OOM killer would)."""

import os
import signal
import time

import torch
import torch.multiprocessing as mp


def worker(rank: int, steps: int) -> None:
    for step in range(steps):
        x = torch.randn(64, 64) @ torch.randn(64, 64)
        print(f"worker {rank} step {step} norm {x.norm().item():.1f}", flush=True)
        time.sleep(0.05)
        if rank == 1 and step == 3:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    mp.spawn(worker, args=(20,), nprocs=2)
