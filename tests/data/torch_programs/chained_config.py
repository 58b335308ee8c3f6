"""Configuration errors surfacing through exception chains.

--mode cause:   a YAML syntax error re-raised as ConfigError ("The above exception was the direct
                cause of the following exception").
--mode context: a missing key, and a bug in the except block that tried to report it ("During
                handling of the above exception, another exception occurred").
"""

import argparse
import logging
import os
import tempfile

import yaml

BROKEN = "model:\n  hidden: 128\n  layers: [4, 4\noptimizer:\n  lr: 0.001\n"
GOOD = "model:\n  hidden: 128\noptimizer:\n  learning_rate: 0.001\n"
log = logging.getLogger("train")


class ConfigError(Exception):
    pass


def load_config(path: str) -> dict:
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse {path}") from exc


def learning_rate(cfg: dict) -> float:
    try:
        return cfg["optimizer"]["lr"]
    except KeyError:
        log.error("no lr in optimizer section %s", cfg["optimizer"].keys())
        return cfg["optimiser"]["lr"]  # the fallback has a typo too


def main(args: argparse.Namespace) -> None:
    path = os.path.join(tempfile.mkdtemp(prefix="cfg_"), "train.yaml")
    with open(path, "w") as f:
        f.write(BROKEN if args.mode == "cause" else GOOD)
    cfg = load_config(path)
    print(f"lr = {learning_rate(cfg)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("cause", "context"), default="cause")
    main(parser.parse_args())
