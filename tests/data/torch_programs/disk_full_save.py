"""Checkpoint saving onto a full disk (/dev/full answers every write with ENOSPC)."""

import argparse

import torch

from models.mlp import MLP


def save_checkpoint(model: torch.nn.Module, step: int, path: str) -> None:
    torch.save({"model": model.state_dict(), "step": step}, path)


def write_metrics(path: str, step: int, loss: float) -> None:
    with open(path, "a") as f:
        f.write(f"{step},{loss}\n" * 10000)
        f.flush()


def main(args: argparse.Namespace) -> None:
    model = MLP(128, 512, 10)
    for step in range(1, 4):
        print(f"step {step} loss {1.0 / step:.3f}", flush=True)
    if args.what == "checkpoint":
        save_checkpoint(model, 3, args.path)
    else:
        write_metrics(args.path, 3, 0.33)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--what", choices=("checkpoint", "metrics"), default="checkpoint")
    parser.add_argument("--path", default="/dev/full")
    main(parser.parse_args())
