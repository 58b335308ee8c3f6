"""A regression model trained with a learning rate far too large: the loss grows without bound.

--style is how the loop logs the loss (plain "step 10 loss 2.3e+05", a Trainer-style dict, a
"train/loss=..." key-value line); --end is how the run ends: the user's guard exits 2 with a
message, or raises "training diverged", or the perplexity it logs, exp(loss), overflows
(OverflowError) before any NaN is printed. --lr and --seed vary the run.
"""

import argparse
import math
import sys

import torch


def log_loss(style: str, epoch: int, step: int, loss: float, gnorm: float) -> None:
    if style == "dict":
        print({"loss": round(loss, 4), "grad_norm": round(gnorm, 4), "learning_rate": 0.5, "epoch": epoch})
    elif style == "kv":
        print(f"epoch={epoch} step={step} train/loss={loss:.4e} train/grad_norm={gnorm:.3e}")
    else:
        print(f"step {step} loss {loss:.4f}")


def perplexity(loss: float) -> float:
    return math.exp(loss)


def main(a: argparse.Namespace) -> None:
    torch.manual_seed(a.seed)
    x = torch.randn(256, 8)
    y = x @ torch.randn(8, 1)
    w = torch.zeros(8, 1, requires_grad=True)
    for step in range(1, 200):
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        gnorm = w.grad.norm().item()
        with torch.no_grad():
            w -= a.lr * w.grad
            w.grad.zero_()
        value = loss.item()
        if step % a.every == 0:
            log_loss(a.style, step // 20, step, value, gnorm)
        if a.end == "overflow":
            perplexity(value)
        if value > 1e12:
            if a.end == "exit":
                print(f"loss {value:.3e} is too large at step {step}, stopping", file=sys.stderr)
                sys.exit(2)
            if a.end == "raise":
                raise RuntimeError(f"training diverged at step {step}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--style", default="plain")
    p.add_argument("--end", default="exit")
    p.add_argument("--lr", type=float, default=1.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--every", type=int, default=1)
    main(p.parse_args())
