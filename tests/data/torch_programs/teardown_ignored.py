"""The real error ends the program; an object's __del__ then fails at teardown ("Exception ignored in")."""

import torch


class ShardReader:
    def __init__(self) -> None:
        self.handle = None

    def __del__(self) -> None:
        self.handle.close()  # never opened: fails while the interpreter tears down


def train(reader: ShardReader) -> None:
    weights = torch.randn(10, 10)
    for step in range(3):
        print(f"step {step}", flush=True)
    weights.view(3, -1)


if __name__ == "__main__":
    reader = ShardReader()
    train(reader)
