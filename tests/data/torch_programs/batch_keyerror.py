"""A collate function renamed a field: the training step looks up a key the batch no longer has."""

import torch
from torch.utils.data import DataLoader

from models.mlp import MLP


def collate(items):
    xs = torch.stack([x for x, _ in items])
    ys = torch.tensor([y for _, y in items])
    return {"inputs": xs, "targets": ys}


def training_step(model, batch):
    logits = model(batch["inputs"])
    return torch.nn.functional.cross_entropy(logits, batch["labels"])


def main() -> None:
    data = [(torch.randn(12), i % 3) for i in range(64)]
    model = MLP(12, 24, 3)
    for batch in DataLoader(data, batch_size=16, collate_fn=collate):
        loss = training_step(model, batch)
        print(f"loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
