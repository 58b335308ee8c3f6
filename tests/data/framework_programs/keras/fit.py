"""A Keras 3 model (backend from KERAS_BACKEND: jax or torch) whose fit fails: inputs of another
width, an optimizer name from the run config Keras does not know, weights that are not on disk,
labels outside the softmax's range, a loss that goes NaN with TerminateOnNaN."""

import argparse
import sys

import keras
import numpy as np

RUN_CONFIG = {"optimizer": "adam", "lr": 1e-3, "epochs": 2}


def build(width: int, classes: int) -> keras.Model:
    inputs = keras.Input(shape=(width,))
    h = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(classes, activation="softmax", name="head")(h)
    return keras.Model(inputs, outputs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", required=True)
    ap.add_argument("--width", type=int, default=10)
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--optimizer", default="adam")
    ap.add_argument("--weights", default="weights/best.weights.h5")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, args.width)).astype("float32")
    y = rng.integers(0, args.classes, size=(args.n,))
    cfg = dict(RUN_CONFIG, optimizer=args.optimizer)
    model = build(args.width, args.classes)
    print(f"keras {keras.__version__} ({keras.backend.backend()}): {args.kind}", flush=True)
    if args.kind == "width":
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x[:, :-2], y, epochs=1, batch_size=16, verbose=2)
    elif args.kind == "optimizer":
        model.compile(optimizer=cfg["optimizer"], loss="sparse_categorical_crossentropy")
    elif args.kind == "weights":
        model.load_weights(args.weights)
    elif args.kind == "labels":
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y + args.classes, epochs=1, batch_size=16, verbose=2)
    elif args.kind == "nan":
        model = keras.Sequential([keras.Input(shape=(args.width,)), keras.layers.Dense(32, activation="relu"),
                                  keras.layers.Dense(args.classes)])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e6), loss="mse")
        hist = model.fit(x, rng.normal(size=(args.n, args.classes)) * 1e6, epochs=5, batch_size=8, verbose=2,
                         callbacks=[keras.callbacks.TerminateOnNaN()])
        if not np.isfinite(hist.history["loss"][-1]):
            sys.exit(f"training diverged: loss is {hist.history['loss'][-1]}, stopping the job")
    else:
        raise SystemExit(f"unknown kind {args.kind}")


if __name__ == "__main__":
    main()
