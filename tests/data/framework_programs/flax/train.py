"""A Flax (linen) MLP trained with Optax that fails: parameters applied to inputs of another width,
an optimizer state of another parameter tree, a checkpoint directory that is not there."""

import argparse
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


class MLP(nn.Module):
    hidden: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.relu(nn.Dense(self.hidden)(x)))


def restore(path: str) -> dict:
    import orbax.checkpoint as ocp
    return ocp.StandardCheckpointer().restore(os.path.abspath(path))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", required=True)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--ckpt", default="checkpoints/step_400")
    args = ap.parse_args()
    key = jax.random.PRNGKey(0)
    model = MLP(args.hidden)
    params = model.init(key, jnp.ones((1, args.width)))
    tx = optax.adam(1e-3)
    state = tx.init(params)
    print(f"flax {args.kind}: {sum(p.size for p in jax.tree_util.tree_leaves(params))} parameters", flush=True)
    if args.kind == "apply_width":
        x = jnp.ones((4, args.width + 4))
        print(model.apply(params, x))
    elif args.kind == "opt_tree":
        bigger = MLP(args.hidden).init(key, jnp.ones((1, args.width)))
        bigger = {"params": {**bigger["params"], "Dense_2": {"kernel": jnp.ones((1, 1))}}}
        grads = jax.tree_util.tree_map(jnp.zeros_like, bigger)
        updates, state = tx.update(grads, state, params)
    elif args.kind == "restore":
        params = restore(args.ckpt)
    else:
        raise SystemExit(f"unknown kind {args.kind}")


if __name__ == "__main__":
    main()
