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
import sys
from dataclasses import replace

from phoenix_sidecar.commands.common import add_config_options, add_supervision_options, load_config, supervision_flags
from phoenix_sidecar.errors import UsageError
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.supervise.state import read_state


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
    # Imported here: every `phoenix` command builds the parser, and only this one needs them.
    from phoenix_sidecar.runtime.docker.runtime import DockerRuntime
    from phoenix_sidecar.supervise.session import supervise

    loaded = load_config(args, container=args.container, container_label=args.container_label,
                         log_file=args.log_file, slurm_job=args.slurm_job, **supervision_flags(args))
    settings = loaded.settings
    if settings.slurm_job:
        return _watch_slurm(loaded, echo=not args.no_echo, reset_budgets=args.reset_budgets)
    if not settings.container and not settings.container_label:
        raise UsageError("phoenix watch needs the training container: --container NAME or --label KEY=VALUE "
                         "(settings container / container_label), or a Slurm job: --slurm-job ID|NAME")
    log_file = settings.log_file
    if log_file and not os.path.isabs(log_file):
        log_file = os.path.join(settings.workspace, log_file)
    echo = not args.no_echo
    # A failed exit after Phoenix's last word on this workspace was never handled (watch.start).
    previous = read_state(StatePaths(loaded.workspace).state)
    handled_until = previous.job.updated_at if previous is not None else None

    def make_runtime(heartbeat, runlog):  # type: ignore[no-untyped-def]
        listeners = [runlog.output, *([_echo] if echo else [])]
        return DockerRuntime(replace(settings, log_file=log_file), heartbeat, listeners=listeners,
                             handled_until=handled_until)

    selector = f"--container {settings.container}" if settings.container else f"--label {settings.container_label}"
    return supervise(loaded, make_runtime, mode="watch", reset_budgets=args.reset_budgets,
                     description=f"phoenix watch {selector}",
                     log_dirs=(os.path.dirname(log_file),) if log_file else ())


def _watch_slurm(loaded, *, echo: bool, reset_budgets: bool) -> int:  # type: ignore[no-untyped-def]
    """`phoenix watch --slurm-job`: the same supervision, through the Slurm scheduler."""
    from phoenix_sidecar.runtime import slurm
    from phoenix_sidecar.supervise.session import supervise

    settings = loaded.settings
    previous = read_state(StatePaths(loaded.workspace).state)
    handled_until = previous.job.updated_at if previous is not None else None

    def make_runtime(heartbeat, runlog):  # type: ignore[no-untyped-def]
        return slurm.build(settings, heartbeat, runlog, listeners=[_echo] if echo else [],
                           handled_until=handled_until)

    return supervise(loaded, make_runtime, mode="watch", reset_budgets=reset_budgets,
                     description=f"phoenix watch --slurm-job {settings.slurm_job}")


def _echo(stream: str, data: bytes) -> None:
    """The job's output on Phoenix's own, as `phoenix run` passes a local job's through: its stderr
    to stderr, its stdout (or the shared log file) to stdout."""
    out = sys.stderr if stream == "stderr" else sys.stdout
    try:
        out.buffer.write(data)
        out.buffer.flush()
    except (OSError, ValueError):
        pass  # our stdout is gone; the run log still has it
