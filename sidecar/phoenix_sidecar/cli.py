"""The `phoenix` command line: parses arguments, dispatches, and maps errors to exit codes.

Exit codes (this table is the one place they are decided):

    0   success: the job finished cleanly, or the command did what it was asked
    1   the command failed (a patch rejected, a check failed, the job failed under `phoenix lock`)
    2   usage or configuration error: nothing was started
    3   the workspace lock is held by another Phoenix
    4   Phoenix gave up on the job: a budget ran out or the failure needs a human
    5   the job's runtime is unreachable (Docker daemon down, container missing, command not found)
    6   Phoenix refused an action outside its mandate
    7   Phoenix's own state could not be written (disk full, read-only volume)
    70  internal error (a bug in Phoenix: please report it)
    130 / 143  interrupted by SIGINT / SIGTERM
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import traceback

from phoenix_sidecar import __version__
from phoenix_sidecar import errors as E
from phoenix_watchdog.errors import WatchdogError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED, EXIT_GAVE_UP = 0, 1, 2, 3, 4
EXIT_RUNTIME, EXIT_REFUSED, EXIT_STATE, EXIT_INTERNAL = 5, 6, 7, 70

# Subcommand modules, in the order `phoenix --help` lists them.
COMMANDS = [
    "phoenix_sidecar.commands.run",
    "phoenix_sidecar.commands.watch",
    "phoenix_sidecar.commands.status",
    "phoenix_sidecar.commands.doctor",
    "phoenix_sidecar.commands.show_config",
    "phoenix_sidecar.commands.lock",
    "phoenix_sidecar.commands.diagnose",
    "phoenix_sidecar.commands.progress",
    "phoenix_sidecar.commands.patch",
    "phoenix_sidecar.commands.history",
    "phoenix_sidecar.commands.rollback",
]


class Interrupted(BaseException):
    """Raised from the SIGTERM handler so the command unwinds and cleans up."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phoenix",
        description="Self-healing supervisor for GPU training jobs.",
        epilog="Exit codes: 0 ok, 1 failed, 2 usage/config, 3 locked, 4 gave up, 5 runtime unreachable, "
               "6 refused, 7 state not writable, 70 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"phoenix {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        importlib.import_module(module).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one `phoenix` command and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from phoenix_sidecar.commands.common import setup_logging

    setup_logging(args.verbose)
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        return int(args.func(args))
    except (E.ConfigError, E.UsageError) as exc:
        return _fail(f"error: {exc}", EXIT_USAGE)
    except E.LockHeld as exc:
        return _fail(f"{exc}\nphoenix: refusing to start a second supervisor on this workspace", EXIT_LOCKED)
    except E.GaveUp as exc:
        print(exc.summary, file=sys.stderr)
        return EXIT_GAVE_UP
    except E.RuntimeUnavailable as exc:
        return _fail(f"error: {exc}", EXIT_RUNTIME)
    except E.RefusedAction as exc:
        return _fail(f"refused: {exc}", EXIT_REFUSED)
    except (E.StateError, E.LockUnavailable) as exc:
        return _fail(f"error: {exc}", EXIT_STATE)
    except (E.PhoenixError, WatchdogError) as exc:
        return _fail(f"error: {exc}", EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted", 128 + signal.SIGINT)
    except Interrupted as exc:
        return _fail("terminated", 128 + exc.signum)
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception:  # a bug: show it, but as a clear internal error
        traceback.print_exc()
        return _fail("internal error (this is a bug in Phoenix; the traceback above helps us fix it)",
                     EXIT_INTERNAL)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def _fail(message: str, code: int) -> int:
    print(f"phoenix: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
