"""The local runtime: `phoenix run` starts the job itself, as a supervised process group.

Face: `create` (the runtime for the settings) and `LocalRuntime`. ``procgroup`` stops a whole job
(group, escaped descendants, adopted orphans); the signals go through the watchdog's one
process-group killer. `die_with_parent` ties a child's life to Phoenix's (also used by `phoenix lock`).

May import: the runtime wing's shared modules (``base``, ``output``), the settings schema, the
redactor (``phoenix_sidecar.redact``: the target label names no argument) and the watchdog (process table, stack dumps, group killer); never another runtime folder.
"""

from __future__ import annotations

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.runtime.base import RuntimeContext
from phoenix_sidecar.runtime.local.procgroup import die_with_parent
from phoenix_sidecar.runtime.local.runtime import LocalRuntime

__all__ = ["LocalRuntime", "create", "die_with_parent"]


def create(settings: Settings, context: RuntimeContext) -> LocalRuntime:
    """The runtime of `phoenix run`: ``train_cmd`` in the workspace, orphans adopted (Phoenix owns
    nothing else in that process)."""
    return LocalRuntime(settings.train_cmd, cwd=settings.workspace, heartbeat=context.heartbeat,
                        listeners=[context.record] if context.record else [], passthrough=context.echo,
                        kill_grace=settings.kill_grace_seconds, stack_dump=settings.stack_dump,
                        dump_timeout=settings.stack_dump_timeout_seconds, adopt_orphans=True,
                        keep_fds=context.keep_fds, on_start=context.on_start)
