"""A launcher-style script that catches the error and prints only its last line before exiting 1."""

import sys


def build_tokenizer(kind: str) -> None:
    if kind not in ("bpe", "unigram"):
        raise ValueError(f"unsupported tokenizer {kind!r}")


if __name__ == "__main__":
    print("building tokenizer", flush=True)
    try:
        build_tokenizer(sys.argv[1] if len(sys.argv) > 1 else "bpe2")
    except ValueError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
