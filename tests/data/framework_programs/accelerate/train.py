"""A small regression fine-tune under `accelerate launch --multi_gpu --num_processes 2` (CPU, gloo) that fails in one
of several ways: one rank's batch validation raises, a data shard is missing, one rank is killed,
the loss goes NaN, a rank stalls past the process group timeout, or the Accelerator is asked for
something this machine cannot do."""

import argparse
import datetime
import math
import os
import signal
import time

import torch
from accelerate import Accelerator
from accelerate.utils import InitProcessGroupKwargs
from torch.utils.data import DataLoader, TensorDataset


def check_batch(x: torch.Tensor, step: int, rank: int, bad_rank: int) -> None:
    if rank == bad_rank and step >= 3:
        raise ValueError(f"batch {step} on rank {rank} has {x.shape[0]} rows with out-of-range features")


def read_shard(path: str) -> torch.Tensor:
    with open(path, encoding="utf-8") as f:
        return torch.tensor([[float(v) for v in line.split(",")] for line in f])


def guard_loss(loss: torch.Tensor, step: int) -> None:
    if not math.isfinite(loss.item()):
        raise FloatingPointError(f"loss is {loss.item()} at step {step}; stopping before the optimizer step")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", required=True)
    ap.add_argument("--bad-rank", type=int, default=1)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--shard", default="data/shards/train-0003.csv")
    ap.add_argument("--precision", default="no")
    args = ap.parse_args()
    handlers = [InitProcessGroupKwargs(timeout=datetime.timedelta(seconds=4))]
    acc = Accelerator(cpu=True, mixed_precision=args.precision, kwargs_handlers=handlers)
    rank = acc.process_index
    acc.print(f"world {acc.num_processes}, kind {args.kind}")
    if args.kind == "missing_shard":
        extra = read_shard(args.shard)
        acc.print(f"extra rows: {len(extra)}")
    g = torch.Generator().manual_seed(rank)
    data = DataLoader(TensorDataset(torch.randn(256, 8, generator=g), torch.randn(256, 1, generator=g)),
                      batch_size=args.batch)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5 if args.kind == "nan" else 0.01)
    model, opt, data = acc.prepare(model, opt, data)
    for step, (x, y) in enumerate(data):
        if args.kind == "rank_raise":
            check_batch(x, step, rank, args.bad_rank)
        if args.kind == "rank_kill" and rank == args.bad_rank and step == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        if args.kind == "stall" and rank == args.bad_rank and step == 2:
            time.sleep(12)
        if args.kind == "nan":
            y = y * (1e30 if step >= 3 else 1.0)
        loss = torch.nn.functional.mse_loss(model(x), y) ** 2
        if args.kind == "nan":
            guard_loss(loss, step)
        acc.backward(loss)
        opt.step()
        opt.zero_grad()
        acc.print(f"step {step} loss {loss.item():.4f}")
        if step >= args.steps:
            break
    acc.wait_for_everyone()


if __name__ == "__main__":
    main()
