"""A DataLoader worker meets a corrupt record and raises: the main process re-raises it."""

import argparse

import torch
from torch.utils.data import DataLoader, Dataset


class RecordDataset(Dataset):
    def __init__(self, n: int, corrupt: int) -> None:
        self.n, self.corrupt = n, corrupt

    def __len__(self) -> int:
        return self.n

    def decode(self, index: int) -> torch.Tensor:
        if index == self.corrupt:
            raise ValueError(f"corrupt record {index}: bad magic 0x{index * 7919:08x}")
        return torch.full((4,), float(index))

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.decode(index)


def main(args: argparse.Namespace) -> None:
    loader = DataLoader(RecordDataset(256, args.corrupt), batch_size=8, num_workers=2)
    for epoch in range(2):
        for i, batch in enumerate(loader):
            if i % 4 == 0:
                print(f"epoch {epoch} batch {i} mean {batch.mean().item():.2f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--corrupt", type=int, default=77)
    main(parser.parse_args())
