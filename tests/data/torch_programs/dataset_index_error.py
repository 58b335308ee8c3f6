"""An off-by-one __len__ makes a DataLoader worker index past the end of the sample list."""

import torch
from torch.utils.data import DataLoader, Dataset


class Shards(Dataset):
    def __init__(self, n: int) -> None:
        self.samples = [torch.randn(6) for _ in range(n)]

    def __len__(self) -> int:
        return len(self.samples) + 1  # counts the header row of the manifest

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.samples[index]


def main() -> None:
    loader = DataLoader(Shards(100), batch_size=10, num_workers=2)
    for step, batch in enumerate(loader):
        print(f"step {step} batch {tuple(batch.shape)}", flush=True)


if __name__ == "__main__":
    main()
