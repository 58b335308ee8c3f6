"""A training script that installs rich's traceback handler: the crash is drawn in a box."""

import rich.traceback
import torch

rich.traceback.install(width=100)


def collate(samples: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(samples)


def main() -> None:
    samples = [torch.randn(3, 32, 32) for _ in range(3)] + [torch.randn(3, 28, 28)]
    for step in range(3):
        print(f"step {step} ok", flush=True)
    batch = collate(samples)
    print(batch.shape)


if __name__ == "__main__":
    main()
