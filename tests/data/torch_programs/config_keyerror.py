"""The config file names the learning rate `learning_rate`; the code reads `lr`: a KeyError."""

import argparse
import os
import tempfile

import torch
import yaml

from models.mlp import MLP

CONFIG = """\
model:
  hidden: 128
optimizer:
  name: adamw
  learning_rate: 3.0e-4
  weight_decay: 0.01
"""


def load_config(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def build_optimizer(model: torch.nn.Module, cfg: dict, key: str) -> torch.optim.Optimizer:
    opt_cfg = cfg["optimizer"]
    return torch.optim.AdamW(model.parameters(), lr=opt_cfg[key], weight_decay=opt_cfg["weight_decay"])


def main(args: argparse.Namespace) -> None:
    run_dir = tempfile.mkdtemp(prefix="run_")  # a launcher writes the resolved config per run
    path = os.path.join(run_dir, "config.yaml")
    with open(path, "w") as f:
        f.write(CONFIG)
    cfg = load_config(path)
    print(f"loaded config from {path}: {cfg}", flush=True)
    model = MLP(32, cfg["model"]["hidden"], 4)
    opt = build_optimizer(model, cfg, args.key)
    print(opt)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", default="lr")
    main(parser.parse_args())
