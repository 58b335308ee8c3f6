"""An example training job for Phoenix: a small PyTorch classifier on synthetic data.

It runs on a GPU when there is one and on the CPU otherwise, needs no download, checkpoints every
epoch and resumes from the last checkpoint, so a restart loses at most one epoch. What makes it a
good citizen under Phoenix:

- it writes its output (tracebacks included) to ``--log-file`` as well as to stdout/stderr, line by
  line, so the sidecar tailing the shared log volume sees every line as it is written;
- on SIGUSR1 it prints every thread's stack into that log (``faulthandler``), so a hang can be
  located before Phoenix stops it (``dump_signal: SIGUSR1``); a segfault's stack lands there too.

    python train.py --epochs 3 --log-file /logs/train.log --checkpoint-dir checkpoints
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Tee:
    """Writes to the original stream and to the log file, flushing each write."""

    def __init__(self, stream, log):  # type: ignore[no-untyped-def]
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.stream.flush()
        self.log.write(text)
        self.log.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self.log.flush()

    def fileno(self) -> int:
        return self.stream.fileno()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=int(os.environ.get("EPOCHS", 20)))
    p.add_argument("--steps-per-epoch", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-file", help="also write all output here (a file on the shared log volume)")
    p.add_argument("--checkpoint-dir", default="checkpoints")
    p.add_argument("--log-every", type=int, default=50, help="steps between progress lines")
    return p.parse_args()


def synthetic_data(seed: int, split: int, samples: int, features: int = 64, classes: int = 10) -> TensorDataset:
    """Labels from a fixed random teacher (one per ``seed``): learnable, deterministic, no download."""
    teacher = torch.randn(features, classes, generator=torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed * 1000 + split)
    x = torch.randn(samples, features, generator=gen)
    y = (x @ teacher + 0.1 * torch.randn(samples, classes, generator=gen)).argmax(dim=1)
    return TensorDataset(x, y)


def build_model(features: int, hidden: int, classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, classes))


def save_checkpoint(directory: Path, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".epoch-{epoch}.pt.tmp"
    torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()}, tmp)
    os.replace(tmp, directory / "last.pt")  # atomic: a crash mid-save keeps the previous checkpoint


def load_checkpoint(directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    path = directory / "last.pt"
    if not path.exists():
        return 0
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["epoch"])


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, device: torch.device,
                epoch: int, log_every: int) -> float:
    model.train()
    criterion = nn.CrossEntropyLoss()
    total, started = 0.0, time.monotonic()
    for step, (inputs, labels) in enumerate(loader, 1):
        inputs, labels = inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        outputs = model(inputs)
        loss = criterion(outputs, labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch} step {step}")
        loss.backward()
        optimizer.step()
        total += loss.item()
        if step % log_every == 0:
            rate = step * loader.batch_size / (time.monotonic() - started)
            print(f"epoch {epoch} step {step}/{len(loader)} loss {total / step:.4f} ({rate:.0f} samples/s)")
    return total / max(1, len(loader))


@torch.no_grad()
def evaluate(model: nn.Module, data: TensorDataset, device: torch.device) -> float:
    model.eval()
    x, y = data.tensors
    predictions = model(x.to(device)).argmax(dim=1).cpu()
    return (predictions == y).float().mean().item()


def main() -> int:
    args = parse_args()
    if args.log_file:
        Path(args.log_file).parent.mkdir(parents=True, exist_ok=True)
        log = open(args.log_file, "a", buffering=1, encoding="utf-8")
        sys.stdout, sys.stderr = Tee(sys.stdout, log), Tee(sys.stderr, log)
        faulthandler.enable(file=log, all_threads=True)
        faulthandler.register(signal.SIGUSR1, file=log, all_threads=True)
    else:
        faulthandler.enable(all_threads=True)
        faulthandler.register(signal.SIGUSR1, all_threads=True)

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    train = synthetic_data(args.seed, 1, args.steps_per_epoch * args.batch_size)
    held_out = synthetic_data(args.seed, 2, 4096)
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        pin_memory=device.type == "cuda", drop_last=True)
    model = build_model(train.tensors[0].shape[1], args.hidden, 10).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    checkpoints = Path(args.checkpoint_dir)
    start = load_checkpoint(checkpoints, model, optimizer)
    print(f"training on {name} (torch {torch.__version__}), epochs {start + 1}..{args.epochs}"
          + (f", resumed from {checkpoints / 'last.pt'}" if start else ""), flush=True)
    for epoch in range(start + 1, args.epochs + 1):
        loss = train_epoch(model, loader, optimizer, device, epoch, args.log_every)
        accuracy = evaluate(model, held_out, device)
        save_checkpoint(checkpoints, epoch, model, optimizer)
        print(f"epoch {epoch} done: loss {loss:.4f}, accuracy {accuracy:.3f}, checkpoint saved", flush=True)
    print("training finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
