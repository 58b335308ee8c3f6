"""A script that logs its crash with loguru (backtrace and variable annotations) and exits 1."""

import sys

from loguru import logger


def load_vocab(path: str) -> dict[str, int]:
    rows = [line.split("\t") for line in ["the\t0", "a\t1", "broken-row"]]
    return {word: int(idx) for word, idx in rows}


def main() -> int:
    logger.info("loading vocabulary")
    try:
        load_vocab("vocab.tsv")
    except Exception:
        logger.exception("training aborted")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
