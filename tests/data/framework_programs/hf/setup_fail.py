"""Hugging Face jobs that fail while setting up: TrainingArguments values from the run config that
transformers refuses, a checkpoint that does not fit the model config, a local model directory
without its files, a model the hub cannot give (offline, or the endpoint refuses the connection)."""

import argparse
import os

import torch
import yaml
from transformers import AutoModel, TrainingArguments

from tiny import model

RUN_CONFIG = """
output_dir: out
learning_rate: 3.0e-5
lr_scheduler_type: {scheduler}
warmup_steps: {warmup}
per_device_train_batch_size: 8
"""
OLD_KEYS = "evaluation_strategy: steps\n"  # the name transformers 4 used; 5 no longer takes it


def training_arguments(scheduler: str, warmup: str, old: bool = False) -> TrainingArguments:
    cfg = yaml.safe_load(RUN_CONFIG.format(scheduler=scheduler, warmup=warmup) + (OLD_KEYS if old else ""))
    return TrainingArguments(report_to=[], use_cpu=True, **cfg)


def load_finetuned(path: str, hidden: int, vocab: int) -> torch.nn.Module:
    net = model(hidden=hidden, vocab=vocab)
    net.load_state_dict(torch.load(path, weights_only=True))
    return net


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", required=True)
    ap.add_argument("--scheduler", default="linear")
    ap.add_argument("--warmup", default="100")
    ap.add_argument("--old-keys", action="store_true")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=18)
    ap.add_argument("--model", default="bert-base-uncased")
    args = ap.parse_args()
    print(f"{args.kind}: HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE')}", flush=True)
    if args.kind == "args":
        print(training_arguments(args.scheduler, args.warmup, args.old_keys).lr_scheduler_type)
    elif args.kind == "size_mismatch":
        os.makedirs("ckpt", exist_ok=True)
        torch.save(model(hidden=32, vocab=18).state_dict(), "ckpt/finetuned.pt")
        load_finetuned("ckpt/finetuned.pt", args.hidden, args.vocab)
    elif args.kind == "local_dir":
        model().config.save_pretrained("checkpoints/run-3/final")  # the run died before it wrote its weights
        encoder = AutoModel.from_pretrained("checkpoints/run-3/final")
        print(encoder.config)
    elif args.kind == "hub":
        encoder = AutoModel.from_pretrained(args.model)
        print(encoder.config)
    else:
        raise SystemExit(f"unknown kind {args.kind}")


if __name__ == "__main__":
    main()
