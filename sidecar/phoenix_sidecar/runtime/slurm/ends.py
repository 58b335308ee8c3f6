"""What a Slurm job's end means for Phoenix: the job's failure, or the scheduler's doing. Pure.

`judge_end` turns the last reading of a run (state, exit code, preemption time, the state of its
nodes) into an `ExitStatus` and, when the end was not the code's fault, a ``stopped_for`` cause
beginning ``engine:`` (preempted, node failure, scheduler requeue, time limit). The supervisor
restarts such an end without spending a failure budget.

`rank_nodes` says which node ran each rank, from srun's own error lines (``srun: error: n2: task
1: Exited with exit code 1``) and else from srun's default block distribution over the job's
nodes; the keys are the diagnosis's stream names (``rank1``). `hardware_nodes` reads the output
for a hardware failure (Xid, ECC, fallen off the bus) and names the nodes whose ranks reported it.
"""

from __future__ import annotations

import re

from phoenix_sidecar.runtime.base import EngineCause, engine_end
from phoenix_sidecar.runtime.slurm.client import JobInfo
from phoenix_watchdog.diagnosis.failure import ExitStatus
from phoenix_watchdog.diagnosis.logtext import split_log
from phoenix_watchdog.diagnosis.markers import scan_markers

_SRUN_TASK = re.compile(r"srun: error: (?P<node>[\w.-]+): tasks? (?P<first>\d+)(?:-(?P<last>\d+))?:")
_DOWN_WORDS = ("DOWN", "FAIL", "NOT_RESPONDING")


def judge_end(info: JobInfo, node_states: dict[str, str], *, timeout_is_failure: bool = False,
              phoenix_stopped: bool = False) -> tuple[ExitStatus, str | None]:
    """How the run described by ``info`` ended, and the ``engine:`` cause when it is not the code's fault.

    Args:
        info: the job read after its run ended (finished, or requeued by the scheduler).
        node_states: the state of the run's nodes, read at the same time.
        timeout_is_failure: a TIMEOUT counts as a failure (the job does not checkpoint on a signal).
        phoenix_stopped: Phoenix ended the run itself (a hang): the end is the hang, not the engine's.
    """
    status = ExitStatus(code=info.exit_code, signal=info.exit_signal, oom_killed=info.state == "OUT_OF_MEMORY")
    if info.state == "COMPLETED" or phoenix_stopped:
        return status, None
    down = sorted(n for n, s in node_states.items() if any(w in s for w in _DOWN_WORDS))
    if info.state == "NODE_FAIL" or (down and not info.finished):
        return _failed(status), engine_end(EngineCause.NODE_FAIL, ','.join(down) or info.nodes)
    if info.state == "PREEMPTED" or _preempted_this_run(info):
        return _failed(status), engine_end(EngineCause.PREEMPTED)
    if info.state == "TIMEOUT" and not timeout_is_failure:
        return _failed(status), engine_end(EngineCause.TIME_LIMIT)
    if not info.finished:  # back in the queue, put there by the scheduler (or an operator's requeue)
        return _failed(status), engine_end(EngineCause.REQUEUED)
    return _failed(status), None


def _failed(status: ExitStatus) -> ExitStatus:
    # An end that Slurm reports with exit code 0 (a requeue, a preemption) is still no success.
    return status if not status.succeeded else ExitStatus(code=None, signal=status.signal)


def _preempted_this_run(info: JobInfo) -> bool:
    # A job that exits by itself within the preemption grace time ends FAILED, not PREEMPTED; the
    # preemption time set during this run tells it apart from a failure of its own.
    return info.preempt_time is not None and info.start_time is not None and info.preempt_time >= info.start_time


def rank_nodes(tail: str, nodes: list[str], num_tasks: int) -> dict[str, str]:
    """``{"rank0": "n1", "rank1": "n2"}``: srun's error lines first, the block distribution else."""
    out: dict[str, str] = {}
    if nodes and num_tasks > 0:
        per, extra = divmod(num_tasks, len(nodes))
        rank = 0
        for i, node in enumerate(nodes):
            for _ in range(per + (1 if i < extra else 0)):
                out[f"rank{rank}"] = node
                rank += 1
    for m in _SRUN_TASK.finditer(tail):
        first = int(m["first"])
        for rank in range(first, int(m["last"] or first) + 1):
            out[f"rank{rank}"] = m["node"]
    return out


def hardware_nodes(tail: str, ranks: dict[str, str]) -> list[str]:
    """The nodes whose ranks reported a GPU hardware failure, in the order they reported it."""
    found: list[str] = []
    for finding in scan_markers(split_log(tail), set()):
        node = ranks.get(finding.stream or "")
        if finding.category == "gpu_hardware" and node and node not in found:
            found.append(node)
    return found


def where(stream: str | None, ranks: dict[str, str]) -> str | None:
    """``rank 1 on node n2`` for the diagnosis's stream, when known."""
    if not stream or not stream.startswith("rank"):
        return None
    node = ranks.get(stream)
    return f"rank {stream[4:]}" + (f" on node {node}" if node else "")
