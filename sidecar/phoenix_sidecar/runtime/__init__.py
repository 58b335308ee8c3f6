"""The runtime wing: what runs the job, and how the supervisor sees it run.

The supervisor talks only to a `Runtime` (start, wait, dump the stack, stop) and reads how each run
ended as a `RunEnd` (and how one began, a `RunStart`, when the runtime knows: an attach). `create` picks and builds the runtime for a supervision mode: a local process
group for `phoenix run` (``local/``), a Docker container for `phoenix watch` (``docker/``). Each
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
from typing import TYPE_CHECKING

from phoenix_sidecar.runtime.base import OutputListener, RunEnd, RunStart, Runtime, RuntimeContext

if TYPE_CHECKING:
    from phoenix_sidecar.config.schema import Settings
    from phoenix_watchdog.heartbeat import Heartbeat

__all__ = ["RUNTIMES", "OutputListener", "RunEnd", "RunStart", "Runtime", "RuntimeContext", "create"]

# Supervision mode -> the runtime folder that serves it. Imported on use: the Docker runtime
# loads the Docker SDK, which `phoenix run` must not pay for.
RUNTIMES = {"run": "local", "watch": "docker"}


def create(settings: Settings, *, mode: str, heartbeat: Heartbeat, record: OutputListener | None = None,
           echo: bool = True, handled_until: float | None = None) -> Runtime:
    """Build the runtime for ``mode`` (``run``: local process group, ``watch``: Docker container).

    Args:
        settings: the effective settings (the runtime reads its own keys).
        mode: the supervision mode, a key of `RUNTIMES`.
        heartbeat: fed by the job's output.
        record: receives every block of output (the run log).
        echo: pass the job's output on to Phoenix's stdout and stderr.
        handled_until: the state's last update (see `RuntimeContext`).

    Raises:
        ValueError: no runtime serves ``mode``.
    """
    try:
        folder = RUNTIMES[mode]
    except KeyError:
        raise ValueError(f"no runtime for mode {mode!r}; modes: {', '.join(RUNTIMES)}") from None
    face = importlib.import_module(f"{__name__}.{folder}")
    context = RuntimeContext(heartbeat=heartbeat, record=record, echo=echo, handled_until=handled_until)
    return face.create(settings, context)  # type: ignore[no-any-return]
