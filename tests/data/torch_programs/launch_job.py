"""Configuration mistakes of a training job, one per --mode:

yaml: a syntax error in the YAML config; missing_key: a section the code reads is not in the
config; validate: the config's own dataclass rejects a value (__post_init__); env: an environment
variable the job needs is not set; no_launcher: a torch.distributed job started with plain python
instead of torchrun (no RANK in the environment); missing_config: the config file is not there.
"""

import argparse
import dataclasses
import os

import torch.distributed as dist
import yaml

GOOD = "model:\n  hidden: 256\n  layers: 4\noptim:\n  lr: 0.0003\n  weight_decay: 0.01\ndata:\n  batch_size: 32\n"
BROKEN = "model:\n  hidden: 256\n  layers: 4\noptim:\n  lr: 0.0003\n   weight_decay: 0.01\ndata:\n  batch_size: 32\n"


@dataclasses.dataclass
class TrainConfig:
    batch_size: int
    grad_accum: int
    micro_batch: int

    def __post_init__(self) -> None:
        if self.batch_size != self.grad_accum * self.micro_batch:
            raise ValueError(f"batch_size ({self.batch_size}) must equal grad_accum ({self.grad_accum}) "
                             f"* micro_batch ({self.micro_batch})")


def load_config(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def build_scheduler(cfg: dict) -> tuple:
    sched = cfg["scheduler"]
    return sched["warmup_steps"], sched["total_steps"]


def tracker_login() -> str:
    return os.environ["TRACKER_API_TOKEN"]


def main(a: argparse.Namespace) -> None:
    os.makedirs("configs", exist_ok=True)
    path = os.path.join("configs", "train.yaml")
    if a.mode != "missing_config":
        with open(path, "w") as f:
            f.write(BROKEN if a.mode == "yaml" else GOOD)
    print(f"loading {path}", flush=True)
    cfg = load_config(path if a.mode != "missing_config" else os.path.join("configs", f"{a.exp}.yaml"))
    print(f"model: {cfg['model']}", flush=True)
    if a.mode == "missing_key":
        build_scheduler(cfg)
    elif a.mode == "validate":
        TrainConfig(batch_size=cfg["data"]["batch_size"], grad_accum=a.accum, micro_batch=a.micro)
    elif a.mode == "env":
        tracker_login()
    elif a.mode == "no_launcher":
        dist.init_process_group("gloo")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--mode", required=True)
    p.add_argument("--accum", type=int, default=3)
    p.add_argument("--micro", type=int, default=8)
    p.add_argument("--exp", default="exp_large")
    main(p.parse_args())
