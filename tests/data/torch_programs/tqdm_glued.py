"""A progress bar drawn with carriage returns, then a ZeroDivisionError glued right after it."""

import sys
import time

import torch


def compute_metrics(preds: torch.Tensor, labels: torch.Tensor) -> dict:
    correct = (preds == labels).sum().item()
    positives = (labels == 1).sum().item()
    return {"accuracy": correct / len(labels), "recall": correct / positives}


def evaluate(n_batches: int) -> None:
    for i in range(1, n_batches + 1):
        pct = int(100 * i / n_batches)
        bar = "\u2588" * (pct // 10) + " " * (10 - pct // 10)
        sys.stderr.write(f"\rEval: {pct:3d}%|{bar}| {i}/{n_batches} [00:0{i // 10}<00:00, {40 + i}.12it/s]")
        sys.stderr.flush()
        time.sleep(0.01)
    compute_metrics(torch.zeros(8), torch.zeros(8))


if __name__ == "__main__":
    evaluate(20)
