"""`SrunStep`: `phoenix run -- srun ...` inside an allocation, each run one job step. The thin seam.

The step is a local process (``srun``) run by the local runtime this wraps; what this layer adds
is Slurm's meaning of its end, read by `srun.judge_step`: the ranks' nodes for the incident
(`RunEnd.ranks`), and an ``engine:`` cause for an end that is the machine's doing (a node failure,
a GPU hardware failure, a step Slurm could not create), which the supervisor restarts without
spending a failure budget. A node to blame is left out of every later step (``--exclude``, merged
with the user's) while the allocation keeps enough nodes for the step. A restart is a new srun in
the same allocation: seconds, no trip through the queue.

The allocation's nodes are read once (``scontrol show hostnames $SLURM_JOB_NODELIST``) through the
`SlurmClient`. A stack dump asks srun itself (SIGUSR1, which it passes on to the ranks). Launch
failures in a row are retried `MAX_LAUNCH_FAILURES` times, after a short pause that grows, then
count as failures. The excluded nodes show in `target` (the state's ``job.target`` and the run
log's start events) and in the incident's log.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from phoenix_sidecar.errors import RuntimeUnavailable
from phoenix_sidecar.runtime.base import EngineCause, EngineJob, RunEnd, RunStart, engine_cause
from phoenix_sidecar.runtime.slurm.client import SlurmClient
from phoenix_sidecar.runtime.slurm.srun import SrunArgs, judge_step, node_failed, with_exclude
from phoenix_watchdog.diagnosis.failure import ExitStatus, HangInfo

log = logging.getLogger(__name__)
MAX_LAUNCH_FAILURES = 3  # steps in a row that Slurm could not start, before one counts as a failure
LAUNCH_RETRY_PAUSE = 1.0  # seconds, times the failures in a row (a step still ending frees its CPUs)


class CommandRuntime(Protocol):
    """The wrapped runtime: a `Runtime` whose command (``cmd``) the next `start` runs."""

    cmd: list[str]
    request_dumps: Callable[[Sequence[int]], list[int]]  # asks the job's processes for a faulthandler dump

    @property
    def target(self) -> str: ...
    @property
    def pid(self) -> int | None: ...
    def start(self) -> RunStart | None: ...
    def wait(self, timeout: float | None) -> RunEnd | None: ...
    def dump_stack(self) -> str | None: ...
    def stop(self, *, hang: HangInfo | None = None, reason: str | None = None) -> RunEnd: ...
    def wakeup(self) -> None: ...
    def close(self) -> None: ...


def allocation_nodes(env: Mapping[str, str], client: SlurmClient) -> list[str]:
    """The allocation's nodes (``n1``, ``n2``), or [] when Slurm cannot say (no exclusion is then made)."""
    hostlist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST") or ""
    try:
        return client.hostnames(hostlist)
    except RuntimeUnavailable as exc:
        log.warning("cannot expand the allocation's nodes %r (%s); no node will be excluded", hostlist, exc)
        return []


def user_excluded(srun: SrunArgs, client: SlurmClient) -> list[str]:
    """The nodes the user's own ``--exclude`` leaves out (not usable when Phoenix counts spare nodes)."""
    if not srun.exclude or "/" in srun.exclude:  # a file of node names: Phoenix does not read it
        return []
    try:
        return client.hostnames(srun.exclude)
    except RuntimeUnavailable:
        return []


class SrunStep:
    """A `Runtime` running ``srun`` steps in the allocation ``job_id`` through ``inner``.

    Args:
        inner: the local runtime that runs the command.
        srun: the srun in the command (`srun.find_srun`).
        job_id: the allocation's job id (``SLURM_JOB_ID``).
        allocation: the allocation's nodes.
        unusable: nodes the step may not use anyway (the user's own ``--exclude``).
        sleep: the pause before a launch retry (a test passes its own).
    """

    def __init__(self, inner: CommandRuntime, srun: SrunArgs, *, job_id: str, allocation: Sequence[str],
                 unusable: Sequence[str] = (), sleep: Callable[[float], None] = time.sleep) -> None:
        self._inner = inner
        self._argv = list(inner.cmd)
        self._srun = srun
        self.job_id = job_id
        self.allocation = list(allocation)
        self._unusable = list(unusable)
        self.excluded: list[str] = []  # nodes Phoenix left out of the steps, in the order it did
        self.steps = 0
        self._launch_failures = 0
        self._sleep = sleep
        inner.request_dumps = self._forward_dump

    @property
    def target(self) -> str:
        """The inner runtime's target; once a step started, with the job and the excluded nodes."""
        inner = self._inner.target
        if not self.steps:
            return inner  # what metrics and alerts name, read before the first start: stays the same
        excluding = f", excluding {','.join(self.excluded)}" if self.excluded else ""
        return f"{inner} (srun step in slurm job {self.job_id}{excluding})"

    def engine_job(self) -> EngineJob:
        """The allocation as `phoenix status` and the metrics show a Slurm job: its id, its nodes and
        the nodes Phoenix left out of the steps. Steps are restarted, never the job: no requeues."""
        return EngineJob("slurm", self.job_id, "RUNNING", nodes=tuple(self.allocation), excluded=tuple(self.excluded))

    def start(self) -> RunStart | None:
        self._inner.cmd = with_exclude(self._argv, self._srun, self.excluded)
        if self.excluded:
            log.warning("srun step in slurm job %s: excluding %s", self.job_id, ",".join(self.excluded))
        began = self._inner.start()
        self.steps += 1
        return began

    def wait(self, timeout: float | None) -> RunEnd | None:
        end = self._inner.wait(timeout)
        return None if end is None else self._judge(end)

    def stop(self, *, hang: HangInfo | None = None, reason: str | None = None) -> RunEnd:
        return self._judge(self._inner.stop(hang=hang, reason=reason))

    def dump_stack(self) -> str | None:
        return self._inner.dump_stack()  # through `_forward_dump` when it asks for a faulthandler dump

    def wakeup(self) -> None:
        self._inner.wakeup()

    def close(self) -> None:
        self._inner.close()

    def _forward_dump(self, pids: Sequence[int]) -> list[int]:
        """SIGUSR1 to srun, which passes it on to every rank (the ranks print their stacks if they
        registered faulthandler on it). srun handles signals in a thread of its own, so it does not
        show as catching the signal, and its ranks are not Phoenix's processes."""
        pid = self._inner.pid
        if pid is None:
            return []
        try:
            os.kill(pid, signal.SIGUSR1)
        except OSError:
            return []
        return [pid]

    # -- judging -------------------------------------------------------------------------------
    def _judge(self, end: RunEnd) -> RunEnd:
        """The inner end with the ranks' nodes, and Slurm's cause when the machine is to blame."""
        status = end.exit
        if end.exit.succeeded and end.hang is None:
            if not node_failed(end.tail):
                self._launch_failures = 0
                return end
            status = ExitStatus(code=None)  # srun exits 0 when a node of the step failed: no success
        step = judge_step(end.tail, self._srun, self.allocation, [*self._unusable, *self.excluded])
        if step.oom:
            status = dataclasses.replace(status, oom_killed=True)
        cause = None if end.hang is not None or end.stopped_for else step.cause
        judged = engine_cause(cause)
        if judged is not None and judged[0] is EngineCause.LAUNCH_FAILED:
            cause = self._launch_retry(cause)
        else:
            self._launch_failures = 0
        if cause is not None:
            self.excluded += [n for n in step.exclude if n not in self.excluded]
        note = [f"[slurm] step {self.steps} of job {self.job_id}: {step.note}"] if step.note else []
        if cause:
            log.warning("srun step in slurm job %s ended (%s): not the job's fault", self.job_id, cause)
        for line in note:
            log.warning("%s", line)
        tail = end.tail + "".join(f"\n{line}\n" for line in note)
        return RunEnd(status, end.started_at, end.ended_at, tail, hang=end.hang,
                      stopped_for=end.stopped_for or cause, ranks={**end.ranks, **step.ranks})

    def _launch_retry(self, cause: str | None) -> str | None:
        """A step Slurm could not create: retried a few times in a row, then a failure like any other."""
        if self._launch_failures >= MAX_LAUNCH_FAILURES:
            log.warning("srun could not start a step %d times in a row; counting it as a failure",
                        self._launch_failures + 1)
            return None
        self._launch_failures += 1
        self._sleep(LAUNCH_RETRY_PAUSE * self._launch_failures)
        return cause
