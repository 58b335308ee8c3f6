"""Train the character model on a small text; checkpoints its parameters at the end."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from model import CharModel

TEXT = ("the quick brown fox jumps over the lazy dog. " * 40 +
        "pack my box with five dozen liquor jugs! " * 40 + "sphinx of black quartz, judge my vow? " * 40)


def build_vocab(text: str) -> tuple[dict[str, int], list[str]]:
    chars = sorted(set(text))
    return {c: i for i, c in enumerate(chars)}, chars


def batches(data: np.ndarray, context: int, batch_size: int, rng: np.random.Generator):
    while True:
        starts = rng.integers(0, len(data) - context - 1, batch_size)
        x = np.stack([data[s:s + context] for s in starts])
        y = np.array([data[s + context] for s in starts])
        yield x, y


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--context", type=int, default=4)
    p.add_argument("--config", default="")
    p.add_argument("--out", default="")
    p.add_argument("--log-every", type=int, default=50)
    return p.parse_args(argv)


def load_config(path: str) -> dict:
    cfg = {"lr": 0.5, "hidden": 64, "embed": 16, "seed": 0}
    if path:
        cfg.update(json.loads(Path(path).read_text()))
    return cfg


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config)
    stoi, itos = build_vocab(TEXT)
    data = np.array([stoi[c] for c in TEXT])
    model = CharModel(len(itos), context=args.context, embed=cfg["embed"], hidden=cfg["hidden"], seed=cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    # BUG: the key is "lr"; this config has no "learning_rate".
    lr = cfg["learning_rate"]
    started = time.monotonic()
    losses = []
    for step, (x, y) in zip(range(1, args.steps + 1), batches(data, args.context, args.batch_size, rng)):
        loss, grads = model.loss_and_grads(x, y)
        model.step(grads, lr)
        losses.append(loss)
        if step % args.log_every == 0 or step == args.steps:
            print(f"step {step} loss {np.mean(losses[-args.log_every:]):.3f}", flush=True)
    if args.out:
        np.savez(args.out, **model.parameters())
    sample = model.sample([stoi[c] for c in "the "], 20, rng)
    print("sample:", "".join(itos[i] for i in sample))
    print(f"training finished in {time.monotonic() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
