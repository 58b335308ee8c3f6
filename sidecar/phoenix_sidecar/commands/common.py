"""Options shared by the subcommands that read the configuration, and the loader they call."""

from __future__ import annotations

import argparse
import logging
import sys

from phoenix_sidecar.config import loader as config
from phoenix_sidecar.config.loader import LoadedConfig
from phoenix_sidecar.errors import UsageError


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--workspace``, ``--config`` and ``--set KEY=VALUE``: the command-line layer of the config."""
    group = parser.add_argument_group("configuration")
    group.add_argument("--workspace", "-w", metavar="DIR", help="the job's workspace (default: current directory)")
    group.add_argument("--config", "-c", metavar="FILE", help="config file (default: <workspace>/phoenix.yaml)")
    group.add_argument("--set", "-s", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                       help="set any setting, e.g. --set heartbeat_min=0.5 (repeatable)")


def add_supervision_options(parser: argparse.ArgumentParser) -> None:
    """The flags `phoenix run` and `phoenix watch` share; `supervision_flags` turns them into settings."""
    parser.add_argument("--heartbeat-min", metavar="MIN", help="minutes of silence that count as a hang (0: off)")
    parser.add_argument("--max-retries", metavar="N", help="attempts per error signature")
    parser.add_argument("--test-cmd", metavar="CMD", help="test command run after a patch")
    parser.add_argument("--dry-run", action="store_const", const=True, help="never overwrite workspace files")
    parser.add_argument("--no-repair", dest="repair", action="store_const", const=False,
                        help="never ask an LLM for a patch: code failures give up with a summary")
    parser.add_argument("--reset-budgets", action="store_true",
                        help="forget the attempts spent so far (after fixing the cause); the history stays")


def supervision_flags(args: argparse.Namespace) -> dict[str, object]:
    """The settings given by `add_supervision_options`' flags (None: not given)."""
    return {"heartbeat_min": args.heartbeat_min, "max_retries": args.max_retries, "test_cmd": args.test_cmd,
            "dry_run": args.dry_run, "repair": args.repair}


def flag_values(args: argparse.Namespace, **extra: object) -> tuple[dict[str, object], dict[str, str]]:
    """The settings given on the command line, and how each was given.

    ``--set`` pairs come first; dedicated flags (``extra``, by setting name) override them.
    """
    flags: dict[str, object] = {}
    sources: dict[str, str] = {}
    for item in args.settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        name = key.strip().replace("-", "_")
        flags[name] = value
        sources[name] = f"flag --set {name}"
    if args.workspace is not None:
        flags["workspace"] = args.workspace
    for name, value in extra.items():
        if value is not None:
            flags[name] = value
            sources[name] = f"flag --{name.replace('_', '-')}"
    return flags, sources


def load_config(args: argparse.Namespace, **extra: object) -> LoadedConfig:
    """Load the configuration for a command and print its warnings to stderr."""
    flags, sources = flag_values(args, **extra)
    loaded = config.load(flags=flags, flag_sources=sources, config_file=args.config)
    from phoenix_sidecar.observe.console import line

    for warning in loaded.warnings:
        print(line(f"warning: {warning}"), file=sys.stderr)
    return loaded


def setup_logging(verbose: bool) -> None:
    """Phoenix's log records in the console's format (`observe.console`): its own at INFO (what it
    is doing, in plain lines), everyone else's at WARNING; all at DEBUG with ``--verbose``."""
    from phoenix_sidecar.observe.console import ConsoleFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ConsoleFormatter())
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
    for name in ("phoenix_sidecar", "phoenix_watchdog"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)
