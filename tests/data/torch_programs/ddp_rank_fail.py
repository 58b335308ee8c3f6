"""Two gloo ranks under torchrun; rank 1 fails after the first all_reduce.

--mode raise: rank 1 raises in user code (its peer then loses the connection);
--mode segv:  rank 1 crashes in native code (a null pointer read);
--mode kill:  rank 1 is killed by SIGKILL (as the kernel OOM killer would).
--record wraps main in torch.distributed.elastic's @record, so torchrun's summary carries the
worker's traceback instead of "To enable traceback see ...".
"""

import argparse
import ctypes
import os
import signal

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record


def validate_batch(batch: torch.Tensor, rank: int, step: int) -> None:
    if rank == 1 and step == 3:
        if os.environ["FAIL_MODE"] == "segv":
            ctypes.string_at(0)
        if os.environ["FAIL_MODE"] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise ValueError(f"rank {rank}: batch at step {step} has {batch.numel() + 1} elements, expected {batch.numel()}")


def train() -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    for step in range(1, 6):
        batch = torch.ones(4) * (rank + step)
        dist.all_reduce(batch)
        validate_batch(batch, rank, step)
        print(f"rank {rank} step {step} sum {batch.sum().item():.1f}", flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("raise", "segv", "kill"), default="raise")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    os.environ["FAIL_MODE"] = args.mode
    (record(train) if args.record else train)()
