"""A small JAX regression that fails in one of JAX's own ways: a shape error inside jit, a tracer
leaked out of a transformation, a Python branch on a traced value, a traced size, NaNs caught by
jax_debug_nans, a host buffer larger than the machine (XLA's RESOURCE_EXHAUSTED), a parameter
missing from the pytree."""

import argparse

import jax
import jax.numpy as jnp

_seen = []


def init_params(key, width: int, hidden: int) -> dict:
    k1, k2 = jax.random.split(key)
    return {"w1": jax.random.normal(k1, (width, hidden)) * 0.1, "w2": jax.random.normal(k2, (hidden, 1)) * 0.1}


@jax.jit
def predict(params: dict, x: jnp.ndarray) -> jnp.ndarray:
    h = jnp.tanh(x @ params["w1"])
    return h @ params["w2"]


@jax.jit
def add_bias(h: jnp.ndarray, bias: jnp.ndarray) -> jnp.ndarray:
    return h + bias


def loss_fn(params: dict, x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    return jnp.mean((predict(params, x) - y) ** 2)


@jax.jit
def log_loss(params: dict, x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    return jnp.log(loss_fn(params, x, y) - 10.0)


@jax.jit
def remember(params: dict, x: jnp.ndarray) -> jnp.ndarray:
    _seen.append(x.mean())
    return predict(params, x)


@jax.jit
def clip_step(g: jnp.ndarray, limit: float) -> jnp.ndarray:
    if jnp.abs(g).max() > limit:
        return g * 0.5
    return g


@jax.jit
def window(x: jnp.ndarray, n: jnp.ndarray) -> jnp.ndarray:
    return jnp.zeros(n) + x[:3].sum()


def allocate_activations(batch: int, width: int) -> jnp.ndarray:
    return jnp.ones((batch, width), dtype=jnp.float32)


def decay(params: dict) -> dict:
    return {k: v * 0.99 for k, v in params.items()} | {"b1": params["b1"] * 0.9}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", required=True)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.kind == "debug_nans":
        jax.config.update("jax_debug_nans", True)
    key = jax.random.PRNGKey(args.seed)
    params = init_params(key, args.width, args.hidden)
    x = jax.random.normal(key, (args.batch, args.width))
    y = jnp.sum(x, axis=1, keepdims=True)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}: {args.kind}", flush=True)
    for step in range(5):
        grads = jax.grad(loss_fn)(params, x, y)
        params = jax.tree_util.tree_map(lambda p, g: p - 0.05 * g, params, grads)
        print(f"step {step} loss {float(loss_fn(params, x, y)):.4f}", flush=True)
    if args.kind == "shape_matmul":
        print(predict(params, x[:, : args.width // 2]))
    elif args.kind == "shape_bias":
        print(add_bias(x @ params["w1"], jnp.ones((args.hidden + 1,))))
    elif args.kind == "tracer_leak":
        remember(params, x)
        print(float(_seen[0] + 1.0))
    elif args.kind == "concretization":
        print(clip_step(grads["w1"], 1.0))
    elif args.kind == "traced_shape":
        print(window(x[0], jnp.asarray(args.batch)))
    elif args.kind == "debug_nans":
        print(log_loss(params, x, y))
    elif args.kind == "host_oom":
        acts = allocate_activations(args.batch << 16, 1 << 20)
        print(float(acts.sum()))
    elif args.kind == "pytree_key":
        print(decay(params))
    else:
        raise SystemExit(f"unknown kind {args.kind}")


if __name__ == "__main__":
    main()
