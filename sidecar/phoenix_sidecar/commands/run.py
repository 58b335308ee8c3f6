"""`phoenix run [-- CMD...]`: start the training command and keep it alive, without Docker.

The job runs in its own process group in the workspace; its output passes through unchanged and
is recorded in `.phoenix_cli/run.log`. Hangs are killed, crashes diagnosed, and the policy restarts,
repairs or stops. Exit code: 0 when the job finishes cleanly, 4 when Phoenix gives up.
"""

from __future__ import annotations

import argparse
from phoenix_sidecar.redact import command_label

from phoenix_sidecar.commands.common import add_config_options, add_supervision_options, load_config, supervision_flags


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="start the training command and keep it alive (no Docker)",
                              description=__doc__.split("\n\n")[0])
    add_config_options(p)
    add_supervision_options(p)
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD",
                   help="the training command (default: train_cmd, 'python train.py')")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: every `phoenix` command builds the parser, and only this one supervises.
    from phoenix_sidecar.supervise.session import supervise

    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    loaded = load_config(args, train_cmd=cmd or None, **supervision_flags(args))
    return supervise(loaded, mode="run", reset_budgets=args.reset_budgets,
                     description=f"phoenix run -- {command_label(loaded.settings.train_cmd)}")
