"""Anomaly detection catches a NaN gradient: a degenerate batch makes ScaleNorm take sqrt(<0)."""

import argparse

import torch
from torch import nn

from models.mlp import MLP, ScaleNorm


def main(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    torch.autograd.set_detect_anomaly(True)
    norm, model = ScaleNorm(), MLP(16, 32, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(1, 100):
        x = torch.randn(args.batch, 16) if step != args.bad_step else torch.ones(args.batch, 16)
        x.requires_grad_(True)
        loss = nn.functional.mse_loss(model(norm(x)), torch.zeros(args.batch, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"step {step} loss={loss.item():.5f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--bad-step", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    main(parser.parse_args())
