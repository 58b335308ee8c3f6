"""Two gloo ranks under torchrun; rank 1 stalls before a collective longer than the group's timeout."""

import argparse
import datetime
import time

import torch
import torch.distributed as dist


def main(timeout_s: float, stall_s: float) -> None:
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=timeout_s))
    rank = dist.get_rank()
    for step in range(1, 4):
        if rank == 1 and step == 2:
            time.sleep(stall_s)  # a slow data shard on one rank
        t = torch.ones(8) * step
        dist.all_reduce(t)
        print(f"rank {rank} step {step} sum {t.sum().item():.0f}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--timeout", type=float, default=3)
    p.add_argument("--stall", type=float, default=8)
    a = p.parse_args()
    main(a.timeout, a.stall)
