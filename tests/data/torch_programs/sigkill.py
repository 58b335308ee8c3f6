"""A job that is SIGKILLed mid-training, as the kernel OOM killer (or `docker kill`) would do."""

import os
import signal

import torch

from models.mlp import MLP


def main() -> None:
    model = MLP(64, 256, 10)
    cache = []
    for step in range(1, 40):
        x = torch.randn(64, 64)
        cache.append(model(x).detach())  # an ever-growing cache: the memory leak the OOM killer ends
        if step % 5 == 0:
            print(f"step {step} cached {len(cache)} tensors", flush=True)
        if step == 23:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main()
