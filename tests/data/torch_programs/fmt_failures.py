"""One code bug reported in the formats real jobs use; --fmt says which:

plain: the traceback Python prints; logging: a logging.exception record with a
``%(asctime)s - %(name)s - %(levelname)s - %(message)s`` prefix, then exit 1; json: a JSON-lines
logger whose record carries the traceback in its "exception" field; reversed: an excepthook that
prints frames most recent first; teardown: the real error followed by an ``Exception ignored in``
traceback from a writer's __del__ at interpreter exit; warnings: deprecation warnings first;
rich: rich's traceback handler draws it in a box; loguru: logger.exception with loguru's backtrace
and variable annotations, then exit 1; thread: the step runs in a worker thread ("Exception in
thread"), and the main thread then fails on the missing result.
--bug picks the bug (a missing key in a batch, a division by an empty count); --step when.
"""

import argparse
import json
import logging
import sys
import threading
import traceback
import warnings

import torch

log = logging.getLogger("trainer")


def collate_labels(batch: dict) -> torch.Tensor:
    return torch.tensor(batch["label"])


def accuracy(correct: int, seen: int) -> float:
    return correct / seen


def run_step(bug: str, step: int) -> None:
    if bug == "keyerror":
        collate_labels({"labels": [step, step + 1], "input_ids": [[1, 2], [3, 4]]})
    else:
        accuracy(step, 0)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
               "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)


class MetricsWriter:
    def __init__(self) -> None:
        self.handle = None

    def __del__(self) -> None:
        self.handle.flush()


def innermost_first(exc_type, exc, tb) -> None:
    frames = traceback.extract_tb(tb)
    print("Traceback (most recent call first):", file=sys.stderr)
    for line in reversed(traceback.format_list(frames)):
        print(line, end="", file=sys.stderr)
    print("".join(traceback.format_exception_only(exc_type, exc)), end="", file=sys.stderr)


def main(a: argparse.Namespace) -> None:
    if a.fmt == "json":
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=logging.INFO, handlers=[handler])
    elif a.fmt == "logging":
        logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                            format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")
    if a.fmt == "reversed":
        sys.excepthook = innermost_first
    if a.fmt == "rich":
        import rich.traceback
        rich.traceback.install(width=100)
    if a.fmt == "loguru":
        from loguru import logger
        logger.remove()
        logger.add(sys.stderr, backtrace=True, diagnose=True)
    if a.fmt == "warnings":
        warnings.warn("`torch.cuda.amp.autocast(args...)` is deprecated. Please use "
                      "`torch.amp.autocast('cuda', args...)` instead.", FutureWarning)
        warnings.warn("This DataLoader will create 8 worker processes in total. Our suggested max number of "
                      "worker in current system is 2, which is smaller than what this DataLoader is going to "
                      "create.", UserWarning)
    writer = MetricsWriter() if a.fmt == "teardown" else None
    for step in range(1, a.step + 1):
        if a.fmt in ("json", "logging"):
            log.info("step %d loss %.4f", step, 1.0 / step)
        else:
            print(f"step {step} loss {1.0 / step:.4f}", flush=True)
        if step == a.step:
            if a.fmt == "loguru":
                try:
                    run_step(a.bug, step)
                except Exception:
                    logger.exception("training step {} failed", step)
                    sys.exit(1)
            if a.fmt == "thread":
                results: list = []
                worker = threading.Thread(target=lambda: results.append(run_step(a.bug, step)), name="step-runner")
                worker.start()
                worker.join()
                print(f"step {step} result {results[0]}")
            if a.fmt in ("json", "logging"):
                try:
                    run_step(a.bug, step)
                except Exception:
                    log.exception("training step %d failed", step)
                    sys.exit(1)
            run_step(a.bug, step)
    del writer


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--fmt", default="plain")
    p.add_argument("--bug", default="keyerror")
    p.add_argument("--step", type=int, default=3)
    main(p.parse_args())
