"""A Hydra application whose configuration fails: an override of a key the config does not have,
a config group option that does not exist, a key the code reads that the config lacks, a missing
mandatory value, and a plain bug in the task function (all as Hydra prints them, short or with
HYDRA_FULL_ERROR=1)."""

import hydra
from omegaconf import DictConfig


def build_optimizer(cfg: DictConfig) -> dict:
    return {"name": cfg.optim.name, "lr": cfg.optim.lr, "momentum": cfg.optim.momentum}


def schedule(cfg: DictConfig) -> list[float]:
    steps = cfg.train.epochs * 10
    return [cfg.optim.lr * (1 - i / steps) for i in range(steps)] + [cfg.optim.lr / cfg.train.warmup_steps]


def layer_sizes(cfg: DictConfig) -> list[int]:
    sizes = [cfg.model.hidden] * cfg.model.layers
    return [sizes[i] // sizes[i + 1] for i in range(len(sizes))]


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    print(f"training {cfg.model.layers} layers of {cfg.model.hidden}, optimizer {cfg.optim.name}", flush=True)
    mode = cfg.get("mode", "momentum")
    if mode == "momentum":
        print(build_optimizer(cfg))
    elif mode == "warmup":
        print(len(schedule(cfg)))
    elif mode == "layers":
        print(layer_sizes(cfg))


if __name__ == "__main__":
    main()
