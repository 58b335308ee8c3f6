"""A DataLoader worker is SIGKILLed mid-epoch (as the kernel OOM killer would do to it)."""

import os
import signal

import torch
from torch.utils.data import DataLoader, Dataset


class Images(Dataset):
    def __len__(self) -> int:
        return 512

    def __getitem__(self, index: int) -> torch.Tensor:
        if index == 200:
            os.kill(os.getpid(), signal.SIGKILL)
        return torch.zeros(3, 8, 8)


def main() -> None:
    loader = DataLoader(Images(), batch_size=16, num_workers=2)
    for step, batch in enumerate(loader):
        print(f"step {step} batch {tuple(batch.shape)}", flush=True)


if __name__ == "__main__":
    main()
