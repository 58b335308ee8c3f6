"""NumPy preprocessing failures of a feature pipeline, one per --error.

cast: an in-place ufunc whose float result cannot go into the int array (_UFuncOutputCastingError);
singular: inverting a covariance matrix of collinear features (LinAlgError);
broadcast: two arrays whose shapes do not broadcast (ValueError);
alloc: an array far larger than the host's memory (_ArrayMemoryError);
missing: a features file that is not there (FileNotFoundError).
"""

import argparse
import os

import numpy as np


def scale_counts(counts: np.ndarray, factor: float) -> np.ndarray:
    counts *= factor
    return counts


def whiten(features: np.ndarray) -> np.ndarray:
    cov = features.T @ features
    return features @ np.linalg.inv(cov)


def add_position_bias(tokens: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return tokens + bias


def allocate_buffer(rows: int, cols: int) -> np.ndarray:
    return np.zeros((rows, cols), dtype=np.float64)


def load_features(root: str, shard: int) -> np.ndarray:
    return np.load(os.path.join(root, f"features_{shard:05d}.npy"))


def main(a: argparse.Namespace) -> None:
    rng = np.random.default_rng(a.seed)
    for shard in range(a.shards):
        x = rng.normal(size=(a.rows, 4))
        print(f"shard {shard}: {x.shape[0]} rows, mean {x.mean():.4f}", flush=True)
    if a.error == "cast":
        scale_counts(rng.integers(0, 9, size=a.rows), 1.5)
    elif a.error == "singular":
        x = rng.normal(size=(a.rows, 3))
        whiten(np.concatenate([x, x[:, :1] * 2], axis=1))
    elif a.error == "broadcast":
        add_position_bias(np.ones((a.rows, 16, 8)), np.ones((a.rows + 1, 16, 8)))
    elif a.error == "alloc":
        allocate_buffer(1 << 24, a.rows << 20)
    elif a.error == "missing":
        load_features(a.root, a.shards)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--error", required=True)
    p.add_argument("--rows", type=int, default=32)
    p.add_argument("--shards", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", default="data/features")
    main(p.parse_args())
