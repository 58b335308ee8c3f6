"""A small MLP and a normalisation layer, used by several corpus programs."""

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, in_features: int, hidden: int, out_features: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        return self.fc2(h)


class ScaleNorm(nn.Module):
    """Divides by the feature standard deviation. ``eps`` has the wrong sign: a bug that only shows
    on a degenerate (constant) batch, where the variance is 0 and the square root goes negative."""

    def __init__(self, eps: float = -1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = torch.sqrt(x.var(dim=1, keepdim=True) + self.eps)
        return x / std
