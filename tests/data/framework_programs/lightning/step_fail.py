"""Lightning jobs whose own step code fails: a shape mismatch in training_step (rank 1 only under
DDP on CPU), NaNs caught by Trainer(detect_anomaly=True), with or without the rich progress bar."""

import argparse

import torch
from lightning.pytorch.callbacks import RichProgressBar

from model import Regressor, loader, trainer


class Projector(Regressor):
    def __init__(self, width: int, fail_rank: int, fail_step: int) -> None:
        super().__init__(width=width)
        self.head = torch.nn.Linear(16, 4)
        self.fail_rank, self.fail_step = fail_rank, fail_step

    def training_step(self, batch, batch_idx):
        x, y = batch
        if self.global_rank == self.fail_rank and self.global_step >= self.fail_step:
            x = x[:, : x.shape[1] // 2]  # the shard on this rank carries half the features
        feats = self.net[1](self.net[0](x))
        loss = torch.nn.functional.mse_loss(self.net[2](feats) + self.head(feats).mean(dim=1, keepdim=True), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss


class RootLoss(Regressor):
    def training_step(self, batch, batch_idx):
        x, y = batch
        scale = torch.tensor(-1.0 if self.global_step >= 5 else 1.0)
        loss = torch.sqrt(torch.nn.functional.mse_loss(self(x), y) * scale)
        self.log("train_loss", loss, prog_bar=True)
        return loss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", required=True)
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--fail-rank", type=int, default=0)
    ap.add_argument("--fail-step", type=int, default=2)
    ap.add_argument("--rich", action="store_true")
    args = ap.parse_args()
    opts = dict(max_epochs=3)
    if args.devices > 1:
        opts.update(strategy="ddp", devices=args.devices)
    if args.rich:
        opts.update(enable_progress_bar=True, callbacks=[RichProgressBar()])
    data = loader(n=128, width=args.width, batch=args.batch)
    if args.kind == "shape":
        trainer(**opts).fit(Projector(args.width, args.fail_rank, args.fail_step), data)
    elif args.kind == "nan":
        trainer(detect_anomaly=True, **opts).fit(RootLoss(width=args.width), data)
    else:
        raise SystemExit(f"unknown kind {args.kind}")


if __name__ == "__main__":
    main()
