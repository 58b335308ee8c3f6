"""slurm: the runtime of `phoenix watch --slurm-job`, supervising a batch job through the Slurm scheduler.

It reads the job through ``slurmrestd`` when ``slurm_rest_url`` is set, else with the Slurm
commands (`api.connect`), follows its output files on the shared file system, and acts through the
scheduler (requeue, exclude or drain a node, signal the steps). Inside an allocation,
`in_allocation` wraps the runtime of `phoenix run -- srun ...` so that each run is a job step
Phoenix understands (``step``, ``srun``: ranks' nodes, node exclusion, launch retries).
It may import `phoenix_sidecar.runtime.base` and `output`, the settings schema, `errors` and the
watchdog (file tails, the diagnosis's marker scan), never another runtime folder (the step layer
wraps whatever runtime it is given); nothing imports it but the runtime face's `create`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from phoenix_sidecar.runtime.base import Runtime, RuntimeContext
from phoenix_sidecar.runtime.output import echo

if TYPE_CHECKING:
    from phoenix_sidecar.config.schema import Settings
    from phoenix_sidecar.runtime.slurm.runtime import SlurmRuntime

__all__ = ["create", "doctor_checks", "in_allocation"]


def doctor_checks(settings: Settings) -> list[tuple[str, str, str, str]]:
    """`phoenix doctor`'s Slurm checks: (name, ok/warn/fail, what was found, how to fix it) each."""
    from phoenix_sidecar.runtime.slurm import checks as slurm_checks
    from phoenix_sidecar.runtime.slurm.api import connect

    found = slurm_checks.checks(settings, os.environ, connect(settings, os.environ))
    return [(c.name, c.status, c.detail, c.fix) for c in found]


def create(settings: Settings, context: RuntimeContext) -> SlurmRuntime:
    """The runtime of `phoenix watch --slurm-job`: the job named by ``slurm_job``, its output from its
    output files on the shared file system to the run log (and Phoenix's own stdout with ``echo``)."""
    from phoenix_sidecar.runtime.slurm.api import connect
    from phoenix_sidecar.runtime.slurm.runtime import SlurmRuntime

    listeners = [context.record] if context.record else []
    if context.echo:
        listeners.append(echo)
    return SlurmRuntime(settings, context.heartbeat, listeners=listeners, handled_until=context.handled_until,
                        client=connect(settings, os.environ))


def in_allocation(runtime: Runtime, env: Mapping[str, str] = os.environ) -> Runtime:
    """``runtime`` as srun steps in this allocation when its command runs ``srun`` and Phoenix runs in a
    Slurm allocation (``SLURM_JOB_ID`` set); else ``runtime`` itself. The check costs no import."""
    cmd = getattr(runtime, "cmd", None)
    if not env.get("SLURM_JOB_ID") or not cmd or not any(os.path.basename(a) == "srun" for a in cmd):
        return runtime
    from phoenix_sidecar.runtime.slurm.client import SlurmClient
    from phoenix_sidecar.runtime.slurm.srun import find_srun
    from phoenix_sidecar.runtime.slurm.step import SrunStep, allocation_nodes, user_excluded

    srun = find_srun(cmd)
    if srun is None:
        return runtime
    client = SlurmClient()
    return SrunStep(runtime, srun, job_id=env["SLURM_JOB_ID"],  # type: ignore[arg-type]
                    allocation=allocation_nodes(env, client), unusable=user_excluded(srun, client))
