"""A job that logs through the logging module (timestamp and level on every line) and then crashes."""

import logging
import sys

import torch

logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("train")


def evaluate(model: torch.nn.Module, batches: list[torch.Tensor]) -> float:
    total = 0.0
    for b in batches:
        total += model(b).mean().item()
    return total / len([b for b in batches if b.numel() > 100])


if __name__ == "__main__":
    model = torch.nn.Linear(4, 2)
    for epoch in range(4):
        log.info("epoch %d loss %.4f", epoch, 1.0 / (epoch + 1))
    try:
        evaluate(model, [torch.randn(2, 4)])
    except ZeroDivisionError:
        log.exception("evaluation failed")
        raise
