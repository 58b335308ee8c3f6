"""A small character-level language model in NumPy: embedding, one hidden layer, softmax output."""

from __future__ import annotations

import numpy as np


class CharModel:
    """Predicts the next character from the previous ``context`` characters."""

    def __init__(self, vocab_size: int, context: int = 4, embed: int = 16, hidden: int = 64, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.vocab_size = vocab_size
        self.context = context
        self.embed = embed
        # BUG: the table has one row too few, so the last character of the vocabulary is out of range.
        self.table = rng.normal(0, 0.1, (vocab_size - 1, embed))
        self.w1 = rng.normal(0, 1 / np.sqrt(context * embed), (context * embed, hidden))
        self.b1 = np.zeros(hidden)
        self.w2 = rng.normal(0, 1 / np.sqrt(hidden), (hidden, vocab_size))
        self.b2 = np.zeros(vocab_size)

    def parameters(self) -> dict[str, np.ndarray]:
        return {"table": self.table, "w1": self.w1, "b1": self.b1, "w2": self.w2, "b2": self.b2}

    def embed_tokens(self, idx: np.ndarray) -> np.ndarray:
        if idx.max() >= self.table.shape[0]:
            raise IndexError("index out of range in self")
        return self.table[idx].reshape(idx.shape[0], -1)

    def forward(self, idx: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        x = self.embed_tokens(idx)
        pre = x @ self.w1 + self.b1
        h = np.tanh(pre)
        logits = h @ self.w2 + self.b2
        return logits, {"idx": idx, "x": x, "h": h}

    def loss_and_grads(self, idx: np.ndarray, targets: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        logits, cache = self.forward(idx)
        logits = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        n = idx.shape[0]
        loss = float(-np.log(probs[np.arange(n), targets] + 1e-12).mean())
        d_logits = probs
        d_logits[np.arange(n), targets] -= 1
        d_logits /= n
        grads = {"w2": cache["h"].T @ d_logits, "b2": d_logits.sum(axis=0)}
        d_h = d_logits @ self.w2.T * (1 - cache["h"] ** 2)
        grads["w1"] = cache["x"].T @ d_h
        grads["b1"] = d_h.sum(axis=0)
        d_x = (d_h @ self.w1.T).reshape(n, self.context, self.embed)
        d_table = np.zeros_like(self.table)
        np.add.at(d_table, cache["idx"], d_x)
        grads["table"] = d_table
        return loss, grads

    def step(self, grads: dict[str, np.ndarray], lr: float) -> None:
        for name, param in self.parameters().items():
            param -= lr * grads[name]

    def sample(self, seed_idx: list[int], length: int, rng: np.random.Generator) -> list[int]:
        out = list(seed_idx)
        for _ in range(length):
            logits, _ = self.forward(np.array([out[-self.context:]]))
            p = np.exp(logits[0] - logits[0].max())
            out.append(int(rng.choice(self.vocab_size, p=p / p.sum())))
        return out
