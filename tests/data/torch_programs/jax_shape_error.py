"""A JAX model whose second layer has the wrong input width: a shape error inside jit."""

import jax
import jax.numpy as jnp


def init(key: jax.Array) -> dict[str, jnp.ndarray]:
    k1, k2 = jax.random.split(key)
    return {"w1": jax.random.normal(k1, (16, 32)), "w2": jax.random.normal(k2, (64, 4))}


@jax.jit
def forward(params: dict[str, jnp.ndarray], x: jnp.ndarray) -> jnp.ndarray:
    h = jnp.tanh(x @ params["w1"])
    return h @ params["w2"]


if __name__ == "__main__":
    params = init(jax.random.PRNGKey(0))
    for step in range(2):
        print(f"step {step}", flush=True)
    print(forward(params, jnp.ones((8, 16))).shape)
