"""Training loop whose data pipeline narrows the features mid-run: a shape mismatch in forward()."""

import argparse

import torch
from torch import nn

from models.mlp import MLP


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    model = MLP(in_features=100, hidden=args.hidden, out_features=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(1, args.steps + 1):
        width = 100 if step < args.fail_step else 64  # a feature column was dropped upstream
        x, y = torch.randn(args.batch, width), torch.randint(0, 10, (args.batch,))
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"step {step:5d} | loss {loss.item():.4f} | lr 0.05", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--fail-step", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    train(parser.parse_args())
