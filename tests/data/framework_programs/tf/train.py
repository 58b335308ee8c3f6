"""TensorFlow (CPU) jobs that fail in TensorFlow's own ways: a tensor larger than host memory
(`OOM when allocating tensor ... by allocator cpu`), an op fed mismatched shapes
(InvalidArgumentError), NaNs caught by tf.debugging.check_numerics, a checkpoint not on disk."""

import argparse

import tensorflow as tf


def embed_table(rows: int, dim: int) -> tf.Tensor:
    return tf.random.normal((rows, dim))


@tf.function
def project(x: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
    return tf.matmul(x, w)


def train_step(w: tf.Variable, x: tf.Tensor, lr: float) -> tf.Tensor:
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.math.log(tf.matmul(x, w) - lr))
    tf.debugging.check_numerics(loss, "loss")
    grad = tape.gradient(loss, w)
    w.assign_sub(lr * grad)
    return loss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", required=True)
    ap.add_argument("--rows", type=int, default=1 << 22)
    ap.add_argument("--dim", type=int, default=1 << 18)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ckpt", default="ckpt/model-120")
    args = ap.parse_args()
    print(f"tensorflow {tf.__version__}: {args.kind}", flush=True)
    x = tf.random.normal((args.batch, 8))
    if args.kind == "oom":
        table = embed_table(args.rows, args.dim)
        print(float(tf.reduce_sum(table)))
    elif args.kind == "shape":
        print(project(x, tf.random.normal((6, 4))))
    elif args.kind == "nan":
        w = tf.Variable(tf.random.normal((8, 1)))
        for step in range(10):
            print(f"step {step} loss {float(train_step(w, x, 0.5)):.4f}", flush=True)
    elif args.kind == "restore":
        ckpt = tf.train.Checkpoint(w=tf.Variable(tf.zeros((8, 1))))
        ckpt.read(args.ckpt).assert_consumed()
    else:
        raise SystemExit(f"unknown kind {args.kind}")


if __name__ == "__main__":
    main()
