"""The runtime wing: what runs the job, and how the supervisor sees it run.

The supervisor talks only to a `Runtime` (start, wait, dump the stack, stop) and reads how each run
ended as a `RunEnd` (and how one began, a `RunStart`, when the runtime knows: an attach). `create`
picks and builds the runtime for a supervision mode: a local process group for `phoenix run`
(``local/``), a Docker container (``docker/``) or a Slurm batch job (``slurm/``) for `phoenix watch`;
a local ``srun`` inside a Slurm allocation runs as job steps (``slurm.in_allocation``). Each
runtime is one folder whose face (its ``__init__``) has a ``create(settings, context)``; a new
runtime (Slurm, Kubernetes) is one more folder and one more entry in `RUNTIMES`. Output handling
shared by all runtimes (the bounded tail the diagnosis reads, the fan-out to listeners, the
heartbeat feed) is `runtime/output.py`.

May import: ``phoenix_sidecar.config.schema`` (Settings), ``phoenix_sidecar.errors`` and the
watchdog; never the supervisor, the repair engine, observability or the commands. Commands use
this face or a runtime folder's face (``phoenix_sidecar.runtime.docker``), never a runtime's
internals. The Docker SDK is imported only when the Docker runtime is used (CLI start-up stays fast).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from phoenix_sidecar.runtime.base import EngineJob, OutputListener, RunEnd, RunStart, Runtime, RuntimeContext, engine_job_of

if TYPE_CHECKING:
    from phoenix_sidecar.config.schema import Settings
    from phoenix_watchdog.heartbeat import Heartbeat

__all__ = ["RUNTIMES", "EngineJob", "OutputListener", "RunEnd", "RunStart", "Runtime", "RuntimeContext", "create",
           "engine_job_of", "runtime_for"]

# Supervision mode -> the runtime folders that serve it, each with the setting that selects it (None:
# the mode's default). Imported on use: the Docker runtime loads the Docker SDK, which `phoenix run`
# must not pay for.
RUNTIMES: dict[str, tuple[tuple[str, str | None], ...]] = {
    "run": (("local", None),),
    "watch": (("slurm", "slurm_job"), ("docker", None)),
}


def runtime_for(settings: Settings, mode: str) -> str:
    """The runtime folder that serves ``mode`` with these settings (``watch`` + ``slurm_job``: slurm)."""
    try:
        choices = RUNTIMES[mode]
    except KeyError:
        raise ValueError(f"no runtime for mode {mode!r}; modes: {', '.join(RUNTIMES)}") from None
    return next(folder for folder, key in choices if key is None or getattr(settings, key))


def create(settings: Settings, *, mode: str, heartbeat: Heartbeat, record: OutputListener | None = None,
           echo: bool = True, handled_until: float | None = None, keep_fds: tuple[int, ...] = (),
           on_start: Callable[[int], None] | None = None) -> Runtime:
    """Build the runtime for ``mode`` (``run``: local process group; ``watch``: a Slurm job when
    ``slurm_job`` is set, else a Docker container).

    Args:
        settings: the effective settings (the runtime reads its own keys).
        mode: the supervision mode, a key of `RUNTIMES`.
        heartbeat: fed by the job's output.
        record: receives every block of output (the run log).
        echo: pass the job's output on to Phoenix's stdout and stderr.
        handled_until: the state's last update (see `RuntimeContext`).
        keep_fds, on_start: the workspace lock's descriptor for the job, and who records its pid.

    Raises:
        ValueError: no runtime serves ``mode``.
    """
    face = importlib.import_module(f"{__name__}.{runtime_for(settings, mode)}")
    context = RuntimeContext(heartbeat=heartbeat, record=record, echo=echo, handled_until=handled_until,
                             keep_fds=keep_fds, on_start=on_start)
    runtime: Runtime = face.create(settings, context)
    if mode == "run":  # `phoenix run -- srun ...` inside a Slurm allocation: each run is a job step
        from phoenix_sidecar.runtime.slurm import in_allocation
        runtime = in_allocation(runtime)
    return runtime
