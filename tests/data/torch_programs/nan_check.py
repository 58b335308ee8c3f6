"""A learning rate far too high: the loss diverges and an explicit finiteness check stops the run."""

import argparse
import sys

import torch
from torch import nn

from models.mlp import MLP


def train_step(model, opt, x, y, step: int, mode: str) -> float:
    loss = nn.functional.mse_loss(model(x), y)
    if not torch.isfinite(loss):
        if mode == "exit":
            print(f"loss is nan at step {step}, stopping training", flush=True)
            sys.exit(1)
        raise FloatingPointError(f"Loss is NaN at step {step}: {loss.item()}")
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def main(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    model = MLP(8, 64, 8)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    for step in range(1, 500):
        x = torch.randn(16, 8) * 10
        loss = train_step(model, opt, x, x * 3, step, args.mode)
        print(f"step {step} loss {loss:.4g}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=5.0)
    parser.add_argument("--mode", choices=("raise", "exit"), default="raise")
    main(parser.parse_args())
