"""The JAX failures of train.py, run by a job that reports them through its logger before exiting 1:
loguru, rich's traceback, or structlog (plain traceback)."""

import argparse
import sys

import train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--printer", required=True)
    args, rest = ap.parse_known_args()  # the rest is train.py's own arguments
    sys.argv = ["train.py", *rest]
    if args.printer == "loguru":
        from loguru import logger
        logger.remove()
        logger.add(sys.stderr, backtrace=False, diagnose=False, colorize=False)
        with logger.catch(reraise=False, onerror=lambda _: sys.exit(1)):
            train.main()
    elif args.printer == "rich":
        from rich.console import Console
        try:
            train.main()
        except Exception:
            Console(width=110).print_exception(show_locals=False)
            sys.exit(1)
    elif args.printer == "structlog":
        import structlog
        structlog.configure(processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                                        structlog.dev.ConsoleRenderer(colors=False,
                                                                      exception_formatter=structlog.dev.plain_traceback)])
        try:
            train.main()
        except Exception:
            structlog.get_logger().exception("training failed")
            sys.exit(1)
    else:
        raise SystemExit(f"unknown printer {args.printer}")


if __name__ == "__main__":
    main()
