"""Plain SGD with far too large a learning rate: the loss explodes without ever printing nan."""

import sys

import torch

torch.manual_seed(0)
x = torch.randn(256, 16) * 3
y = x @ torch.randn(16, 1)
w = torch.zeros(16, 1, requires_grad=True)
for step in range(1, 200):
    loss = ((x @ w - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 0.35 * w.grad
        w.grad.zero_()
    print(f"step {step} loss {loss.item():.6g}", flush=True)
    if loss.item() > 1e9:
        print("early stopping triggered", flush=True)
        sys.exit(3)
