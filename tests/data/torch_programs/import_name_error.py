"""A refactor renamed a class in the user's own package: ImportError of a name in a user module."""

import torch

from models.mlp import MLPv2  # renamed to MLP in models/mlp.py

model = MLPv2(16, 32, 2)
print(model(torch.randn(2, 16)))
