"""A misspelled method on a line that also reads the config: a code bug, not a configuration error."""

import argparse

import torch


class Trainer:
    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def train(self, epochs: int) -> None:
        for epoch in range(epochs):
            print(f"epoch {epoch}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    trainer = Trainer(torch.nn.Linear(2, 2))
    trainer.trian(args.epochs)
