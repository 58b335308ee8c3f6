"""`phoenix watch`: supervise a training container through the Docker API (the sidecar).

Finds the container by name (``container``) or label (``container_label``), follows its output
(the shared ``log_file``, or the Docker log stream), and restarts, repairs or stops it like
`phoenix run` does with a local job. The training container's own restart policy must be "no".
With ``--slurm-job`` it supervises a Slurm batch job through the scheduler instead (`runtime.slurm`).
Exit codes as `phoenix run`: 0 when the job finishes cleanly, 4 when Phoenix gives up.
"""

from __future__ import annotations

import argparse
import os

from phoenix_sidecar.commands.common import add_config_options, add_supervision_options, load_config, supervision_flags
from phoenix_sidecar.errors import UsageError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("watch", help="supervise a training container through the Docker API (sidecar), "
                                            "or a Slurm job (--slurm-job)",
                              description=__doc__.split("\n\n")[0])
    add_config_options(p)
    p.add_argument("--container", metavar="NAME", help="name or id of the training container")
    p.add_argument("--label", dest="container_label", metavar="KEY=VALUE",
                   help="label that finds the training container, e.g. phoenix.role=trainer")
    p.add_argument("--slurm-job", metavar="ID|NAME",
                   help="supervise a Slurm batch job (id, array task 123_4, or name) instead of a container")
    p.add_argument("--log-file", metavar="PATH", help="log file the job writes on the shared volume "
                                                       "(default: the Docker log stream)")
    add_supervision_options(p)
    p.add_argument("--no-echo", action="store_true",
                   help="do not copy the job's output to Phoenix's stdout (it is still in the run log)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: every `phoenix` command builds the parser, and only this one supervises.
    from phoenix_sidecar.supervise.session import supervise

    loaded = load_config(args, container=args.container, container_label=args.container_label,
                         log_file=args.log_file, slurm_job=args.slurm_job, **supervision_flags(args))
    settings = loaded.settings
    if settings.slurm_job:  # the runtime wing picks the Slurm runtime for it
        return supervise(loaded, mode="watch", reset_budgets=args.reset_budgets, echo=not args.no_echo,
                         description=f"phoenix watch --slurm-job {settings.slurm_job}")
    if not settings.container and not settings.container_label:
        raise UsageError("phoenix watch needs the training container: --container NAME or --label KEY=VALUE "
                         "(settings container / container_label), or a Slurm job: --slurm-job ID|NAME")
    log_dir = os.path.dirname(os.path.join(settings.workspace, settings.log_file)) if settings.log_file else None
    selector = f"--container {settings.container}" if settings.container else f"--label {settings.container_label}"
    return supervise(loaded, mode="watch", reset_budgets=args.reset_budgets, echo=not args.no_echo,
                     description=f"phoenix watch {selector}", log_dirs=(log_dir,) if log_dir else ())
