"""JAX on CPU asked for a buffer larger than the machine: XLA reports RESOURCE_EXHAUSTED."""

import jax.numpy as jnp


def make_activations(batch: int, width: int) -> jnp.ndarray:
    return jnp.ones((batch, width), dtype=jnp.float32)


if __name__ == "__main__":
    for batch in (64, 1 << 18):
        acts = make_activations(batch, 1 << 20)
        print(f"batch {batch}: {float(acts.sum()):.0f}", flush=True)
