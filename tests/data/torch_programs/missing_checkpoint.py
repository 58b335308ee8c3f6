"""Resuming from a checkpoint that was never written (or was cleaned up): FileNotFoundError."""

import argparse

import torch

from models.mlp import MLP


def load_checkpoint(model: torch.nn.Module, path: str) -> int:
    state = torch.load(path, map_location="cpu")
    model.load_state_dict(state["model"])
    return state["step"]


def main(args: argparse.Namespace) -> None:
    model = MLP(16, 32, 2)
    print(f"resuming from {args.resume}", flush=True)
    step = load_checkpoint(model, args.resume)
    print(f"resumed at step {step}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--resume", default="checkpoints/step_4000.pt")
    main(parser.parse_args())
