"""`phoenix config`: print the effective configuration, the source of each value, secrets masked."""

from __future__ import annotations

import argparse

from phoenix_sidecar import config
from phoenix_sidecar.commands.common import add_config_options, load_config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("config", help="print the effective configuration and where each value comes from")
    add_config_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args)
    print(config.render(loaded, as_json=args.json))
    return 0
