"""Lightning jobs that fail in fit: configuration Lightning refuses, a step that returns the wrong
thing, a callback that raises, a checkpoint to resume that is not there, a broken datamodule."""

import argparse

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping

from model import Regressor, loader, trainer


class NoOptimizer(Regressor):
    configure_optimizers = None


class DictStep(Regressor):
    def training_step(self, batch, batch_idx):
        x, y = batch
        return {"mse": torch.nn.functional.mse_loss(self(x), y)}


class CountingCallback(Callback):
    """Writes per-epoch stats; the stats keys come from the logged metrics."""

    def on_train_epoch_end(self, trainer, pl_module):
        metrics = trainer.callback_metrics
        print(f"epoch {trainer.current_epoch}: loss {float(metrics['train_loss']):.4f}", flush=True)
        ratio = float(metrics["train_loss"]) / float(metrics["val_loss"])
        print(f"ratio {ratio:.3f}")


class ShardData(L.LightningDataModule):
    def __init__(self, shards: list[str]) -> None:
        super().__init__()
        self.shards = shards

    def setup(self, stage: str) -> None:
        self.parts = {name: loader(seed=i) for i, name in enumerate(self.shards)}

    def train_dataloader(self):
        return self.parts["train"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", required=True)
    ap.add_argument("--resume", default="checkpoints/last.ckpt")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--precision", default="bf17-mixed")
    args = ap.parse_args()
    print(f"lightning {L.__version__}: {args.kind}", flush=True)
    if args.kind == "no_optimizer":
        trainer(max_epochs=args.epochs).fit(NoOptimizer(), loader())
    elif args.kind == "dict_step":
        trainer(max_epochs=args.epochs).fit(DictStep(), loader())
    elif args.kind == "callback":
        trainer(max_epochs=args.epochs, callbacks=[CountingCallback()]).fit(Regressor(), loader())
    elif args.kind == "monitor":
        stop = EarlyStopping(monitor="val_loss", patience=3, strict=True)
        trainer(max_epochs=args.epochs, callbacks=[stop]).fit(Regressor(), loader())
    elif args.kind == "precision":
        trainer(max_epochs=args.epochs, precision=args.precision).fit(Regressor(), loader())
    elif args.kind == "resume":
        trainer(max_epochs=args.epochs).fit(Regressor(), loader(), ckpt_path=args.resume)
    elif args.kind == "datamodule":
        trainer(max_epochs=args.epochs).fit(Regressor(), datamodule=ShardData(["training", "validation"]))
    elif args.kind == "both_loaders":
        trainer(max_epochs=args.epochs).fit(Regressor(), loader(), datamodule=ShardData(["train"]))
    else:
        raise SystemExit(f"unknown kind {args.kind}")


if __name__ == "__main__":
    main()
