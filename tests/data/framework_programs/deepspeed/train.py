"""A DeepSpeed (CPU accelerator, gloo) job under torchrun or the deepspeed launcher that fails:
batch sizes that do not multiply out (DeepSpeed's config assertion), a ZeRO stage that does not
exist (its config validation), fp16 asked of a device without it, a forward pass that breaks on one
rank, one rank killed by SIGKILL."""

import argparse
import json
import os
import signal

import deepspeed
import torch

DS_CONFIG = """
{
  "train_batch_size": %(train_batch)d,
  "train_micro_batch_size_per_gpu": %(micro)d,
  "gradient_accumulation_steps": 2,
  "zero_optimization": {"stage": %(stage)d}
}
"""


class Net(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = torch.nn.Linear(width, 16)
        self.head = torch.nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.body(x)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", required=True)
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--micro", type=int, default=8)
    ap.add_argument("--stage", type=int, default=0)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--local_rank", type=int, default=0)
    args = ap.parse_args()
    config = json.loads(DS_CONFIG % {"train_batch": args.train_batch, "micro": args.micro, "stage": args.stage})
    if args.kind == "fp16":
        config["fp16"] = {"enabled": True, "initial_scale_power": 16}
    deepspeed.init_distributed(dist_backend="gloo")
    rank = torch.distributed.get_rank()
    model = Net(args.width)
    # A torch optimizer: DeepSpeed's own CPU Adam would be compiled at start-up (minutes).
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=opt, config=config)
    for step in range(6):
        x = torch.randn(args.micro, args.width)
        if args.kind == "rank_shape" and rank == 1 and step == 2:
            x = torch.randn(args.micro, args.width + 3)
        if args.kind == "rank_kill" and rank == 1 and step == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer does
        loss = engine(x).pow(2).mean()
        engine.backward(loss)
        engine.step()
        if rank == 0:
            print(f"step {step} loss {loss.item():.4f}", flush=True)


if __name__ == "__main__":
    main()
