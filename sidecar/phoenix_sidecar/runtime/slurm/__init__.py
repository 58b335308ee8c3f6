"""slurm: the runtime of `phoenix watch --slurm-job`, supervising a batch job through the Slurm scheduler.

It reads the job with the Slurm commands, follows its output files on the shared file system,
and acts through the scheduler (requeue, exclude or drain a node, signal the steps). It may import
`phoenix_sidecar.runtime.base`, `config`, `errors` and the watchdog; nothing imports it but the
runtime factory and `phoenix watch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from phoenix_sidecar.config.schema import Settings
    from phoenix_sidecar.observe.runlog import RunLog
    from phoenix_sidecar.runtime.slurm.output import OutputListener
    from phoenix_sidecar.runtime.slurm.runtime import SlurmRuntime
    from phoenix_watchdog.heartbeat import Heartbeat


def build(settings: Settings, heartbeat: Heartbeat, runlog: RunLog, *, listeners: Sequence[OutputListener] = (),
          handled_until: float | None = None) -> SlurmRuntime:
    """The Slurm runtime for ``settings.slurm_job``; the job's output goes to the run log and ``listeners``."""
    from phoenix_sidecar.runtime.slurm.runtime import SlurmRuntime

    return SlurmRuntime(settings, heartbeat, listeners=[runlog.output, *listeners], handled_until=handled_until)
