"""The same scikit-learn / XGBoost fits as fit.py, run by a job that reports the failure through
its logger before exiting 1: structlog (rich or plain tracebacks), loguru, or rich's traceback."""

import argparse
import sys

import fit


def run(kind: str, n: int) -> None:
    x, y = fit.load_features(n, 6, 0)
    if kind == "lengths":
        fit.fit_logreg(x, y[: n - 7], fit.RUN_CONFIG)
    elif kind == "labels":
        fit.fit_booster(x, y + 2, fit.RUN_CONFIG)
    else:
        raise SystemExit(f"unknown kind {kind}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--printer", required=True)
    ap.add_argument("--kind", default="lengths")
    ap.add_argument("--n", type=int, default=120)
    args = ap.parse_args()
    if args.printer.startswith("structlog"):
        import structlog
        fmt = structlog.dev.plain_traceback if args.printer == "structlog_plain" else structlog.dev.RichTracebackFormatter(
            show_locals=False, width=100)
        structlog.configure(processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                                        structlog.dev.ConsoleRenderer(colors=False, exception_formatter=fmt)])
        log = structlog.get_logger()
        log.info("fit starting", kind=args.kind, rows=args.n)
        try:
            run(args.kind, args.n)
        except Exception:
            log.exception("fit failed", kind=args.kind)
            sys.exit(1)
    elif args.printer == "loguru":
        from loguru import logger
        logger.remove()
        logger.add(sys.stderr, backtrace=False, diagnose=False, colorize=False)
        logger.info("fit starting: {} rows", args.n)
        with logger.catch(reraise=False, onerror=lambda _: sys.exit(1)):
            run(args.kind, args.n)
    elif args.printer == "rich":
        from rich.console import Console
        console = Console(width=100, force_terminal=False)
        console.log(f"fit starting: {args.n} rows")
        try:
            run(args.kind, args.n)
        except Exception:
            console.print_exception(show_locals=False)
            sys.exit(1)
    else:
        raise SystemExit(f"unknown printer {args.printer}")


if __name__ == "__main__":
    main()
