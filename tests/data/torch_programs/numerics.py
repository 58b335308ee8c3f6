"""Numerical failures of a training loop, one per --mode:

anomaly: autograd anomaly mode names the backward function that produced NaN;
clip: clip_grad_norm_(error_if_nonfinite=True) refuses non-finite gradients;
assert: the loop asserts the loss is finite (a bare AssertionError);
noise: NumPy's RuntimeWarnings about invalid values, then an unrelated shape bug (not a NaN failure);
policy: a NaN reaches torch.distributions (a policy's mean), which rejects it;
sample: a NaN reaches torch.multinomial (sampling tokens from the model's probabilities).
--lr scales the blow-up, --seed and --steps vary the run.
"""

import argparse

import numpy as np
import torch

from models.mlp import MLP


def log_likelihood(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x - x.detach().max() - 1).mean()  # the root of a negative number: NaN


def check_finite(loss: torch.Tensor) -> None:
    assert torch.isfinite(loss).all()


def action_distribution(mean: torch.Tensor) -> torch.distributions.Normal:
    return torch.distributions.Normal(mean, torch.ones_like(mean))


def sample_tokens(logits: torch.Tensor) -> torch.Tensor:
    return torch.multinomial(torch.softmax(logits, dim=-1), 1)


def stack_features(feats: list) -> np.ndarray:
    return np.stack(feats)


def main(a: argparse.Namespace) -> None:
    torch.manual_seed(a.seed)
    model = MLP(16, 32, 4)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr)
    for step in range(1, a.steps + 1):
        x = torch.randn(8, 16) * (1000 ** (step // a.steps))
        blowup = 1e30 if step == a.steps and a.mode != "noise" else 1.0
        loss = model(x).pow(2).mean() * blowup ** 2
        print(f"step {step} loss {loss.item():.4f}", flush=True)
        if step < a.steps:
            opt.zero_grad()
            loss.backward()
            opt.step()
            continue
        if a.mode == "anomaly":
            with torch.autograd.detect_anomaly():
                log_likelihood(model(x)).backward()
        elif a.mode == "clip":
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)
        elif a.mode == "assert":
            check_finite(loss * 0 * float("inf"))
        elif a.mode == "policy":
            action_distribution(model(x) * (loss * 0)).sample()
        elif a.mode == "sample":
            sample_tokens(model(x) * loss * 0)
        elif a.mode == "noise":
            feats = [np.log(np.array([-1.0, 1.0])), np.sqrt(np.array([-4.0, 4.0, 9.0]))]
            stack_features(feats)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--mode", required=True)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=4)
    main(p.parse_args())
