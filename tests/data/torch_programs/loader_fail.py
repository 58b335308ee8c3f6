"""DataLoader failures: a worker killed by SIGBUS (a full /dev/shm) or SIGSEGV (a native decoder),
a bug in collate_fn, an image file that is not there, a worker too slow for the loader's timeout
(a stalled network filesystem); --workers and --batch vary the run."""

import argparse
import os
import signal
import time

import torch
from torch.utils.data import DataLoader, Dataset


class Frames(Dataset):
    def __init__(self, root: str, mode: str, bad: int) -> None:
        self.root, self.mode, self.bad = root, mode, bad

    def __len__(self) -> int:
        return 1024

    def __getitem__(self, index: int) -> torch.Tensor:
        if index == self.bad:
            if self.mode == "bus":
                os.kill(os.getpid(), signal.SIGBUS)
            if self.mode == "segv":
                os.kill(os.getpid(), signal.SIGSEGV)
            if self.mode == "slow":
                time.sleep(30)
            if self.mode == "missing":
                with open(os.path.join(self.root, f"frame_{index:06d}.jpg"), "rb") as f:
                    f.read()
        return torch.full((3, 8, 8), float(index))


def pad_collate(items: list) -> torch.Tensor:
    longest = max(t.shape[-1] for t in items)
    return torch.stack([torch.nn.functional.pad(t, (0, longest - t.shape[-1])) for t in items[:-1]] + [items])


def main(a: argparse.Namespace) -> None:
    collate = pad_collate if a.mode == "collate" else None
    loader = DataLoader(Frames(a.root, a.mode, a.bad), batch_size=a.batch, num_workers=a.workers, collate_fn=collate,
                        timeout=a.timeout)
    for step, batch in enumerate(loader):
        print(f"step {step} batch {tuple(batch.shape)}", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--mode", required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--bad", type=int, default=100)
    p.add_argument("--root", default="data/frames")
    p.add_argument("--timeout", type=float, default=0)
    main(p.parse_args())
