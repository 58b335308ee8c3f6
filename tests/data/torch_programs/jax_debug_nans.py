"""JAX with jax_debug_nans: a log of a negative value raises FloatingPointError at the op."""

import jax
import jax.numpy as jnp

jax.config.update("jax_debug_nans", True)


def loss_fn(w: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
    return jnp.log(x @ w).mean()


if __name__ == "__main__":
    w = jnp.array([1.0, -3.0])
    x = jnp.array([[1.0, 1.0], [2.0, 0.5]])
    for step in range(3):
        print(f"step {step}", flush=True)
    print(loss_fn(w, x))
