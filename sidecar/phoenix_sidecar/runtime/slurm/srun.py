"""What `phoenix run -- srun ...` runs, and how a step ended, from srun's own words. Pure.

Inside an allocation Phoenix runs ``srun`` as a local process; srun starts the ranks on the
allocation's nodes and reports on them in its own lines (``srun: error: n2: task 1: Exited with
exit code 1``, ``srun: error: Node failure on n2``, ``srun: error: Unable to create step for job
7: ...``, ``slurmstepd: error: Detected 1 oom-kill event(s)``). This module finds the srun in a
command line (`find_srun`, past ``env``, ``nice`` and the like), reads the options Phoenix needs
(`SrunArgs`: how many nodes the step needs, the nodes the user excluded), writes the command of
the next step with more nodes excluded (`with_exclude`), and judges a step's end (`judge_step`):
where each rank ran (`ends.rank_nodes`), and whether the end was the machine's doing (a node that
failed, a GPU that fell off the bus, a step Slurm could not create) rather than the code's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from phoenix_sidecar.runtime.base import EngineCause, engine_end
from phoenix_sidecar.runtime.slurm import ends

# Programs that run the rest of their command line, and their options that take a separate value.
WRAPPERS: dict[str, frozenset[str]] = {
    "env": frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "--class", "-n", "--classdata", "-p", "-P", "-u"}),
    "nohup": frozenset(),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "time": frozenset({"-f", "--format", "-o", "--output"}),
}
# srun's options that take no value (the others do: ``-N 2``, ``--nodes 2``); optional values are
# only ever attached (``-K1``, ``--kill-on-bad-exit=1``), so these never take the next word.
_SRUN_FLAGS_SHORT = frozenset("lKQvhsuXZEHIOkV")
_SRUN_FLAGS_LONG = frozenset({
    "label", "unbuffered", "overlap", "exclusive", "kill-on-bad-exit", "quiet", "verbose", "no-kill",
    "overcommit", "oversubscribe", "preserve-env", "pty", "test-only", "disable-status", "multi-prog",
    "contiguous", "hold", "immediate", "no-allocate", "spread-job", "usage", "help", "version",
    "use-min-nodes", "whole", "exact", "x11", "het-group", "send-libs", "reboot", "nice", "requeue",
    "no-requeue"})

_TASK = re.compile(r"^srun: error: (?P<node>[\w.-]+): tasks? (?P<tasks>[\d,-]+): (?P<what>.+)$", re.M)
_NODE_FAILURE = re.compile(r"srun: error: Node failure on (?P<node>[\w.-]+)"
                           r"|\*\*\* (?:STEP|JOB) [\d.]+ ON (?P<on>[\w.-]+) CANCELLED AT \S+ DUE TO NODE FAILURE")
_LAUNCH = re.compile(r"srun: error: (?:Unable to create step for job \d+: (?P<why>.+)"
                     r"|Task launch for \S+ failed on node (?P<node>[\w.-]+): (?P<why2>.+))")
_OOM = re.compile(r"oom-kill event|: tasks? [\d,-]+: Out Of Memory")


@dataclass(frozen=True)
class SrunArgs:
    """The srun in a command line, and what Phoenix reads of its options.

    Attributes:
        index: where ``srun`` is in the command line.
        options: the range of srun's own options (``argv[index + 1:end]``); the program follows.
        nodes: the fewest nodes the step runs on (``-N 2``, ``--nodes=1-2``), None when not given.
        ntasks: ``-n``/``--ntasks``, None when not given.
        exclude: the user's own ``-x``/``--exclude`` value, "" when none.
        label: ``--label``: each rank's lines start ``N: ``.
    """

    index: int
    end: int
    nodes: int | None = None
    ntasks: int | None = None
    exclude: str = ""
    label: bool = False

    def needs(self, allocation: int) -> int:
        """How many nodes the step needs in an allocation of ``allocation`` nodes (srun's own default:
        as many tasks as it runs when ``-n`` is fewer than the nodes, else every node)."""
        if self.nodes is not None:
            return self.nodes
        if self.ntasks is not None:
            return min(self.ntasks, allocation)
        return allocation


def find_srun(argv: Sequence[str]) -> SrunArgs | None:
    """The `SrunArgs` of ``argv`` when it runs ``srun`` (directly, or through `WRAPPERS`), else None."""
    i = 0
    while i < len(argv):
        name = os.path.basename(argv[i])
        if name == "srun":
            return _parse(argv, i)
        takes = WRAPPERS.get(name)
        if takes is None:
            return None
        i += 1
        while i < len(argv) and (argv[i].startswith("-") or (name == "env" and "=" in argv[i])):
            i += 2 if argv[i] in takes else 1
    return None


def _parse(argv: Sequence[str], index: int) -> SrunArgs:
    values: dict[str, str] = {}
    label = False
    i = index + 1
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        word = argv[i]
        if word.startswith("--"):
            key, eq, value = word[2:].partition("=")
            if not eq and key not in _SRUN_FLAGS_LONG and i + 1 < len(argv):
                value, i = argv[i + 1], i + 1
        else:
            flags = word[1:]
            while len(flags) > 1 and flags[0] in _SRUN_FLAGS_SHORT and flags[1].isalpha():  # -lN2: -l -N2
                label = label or flags[0] == "l"
                flags = flags[1:]
            key, value = flags[0], flags[1:]
            if key not in _SRUN_FLAGS_SHORT and not value and i + 1 < len(argv):
                value, i = argv[i + 1], i + 1
        key = {"N": "nodes", "n": "ntasks", "x": "exclude", "l": "label"}.get(key, key)
        label = label or key == "label"
        values[key] = value
        i += 1
    return SrunArgs(index=index, end=i, nodes=_least(values.get("nodes")), ntasks=_least(values.get("ntasks")),
                    exclude=values.get("exclude", ""), label=label)


def _least(value: str | None) -> int | None:
    """``2`` -> 2, ``1-2`` -> 1; None for none or a form Phoenix does not read."""
    m = re.match(r"(\d+)", value or "")
    return int(m.group(1)) if m else None


def with_exclude(argv: Sequence[str], srun: SrunArgs, nodes: Sequence[str]) -> list[str]:
    """``argv`` with ``nodes`` excluded from the step, merged with the user's own ``--exclude``."""
    if not nodes:
        return list(argv)
    kept: list[str] = []
    i = srun.index + 1
    while i < srun.end:
        word = argv[i]
        if word in ("-x", "--exclude"):
            i += 2
            continue
        if not (word.startswith("--exclude=") or (word.startswith("-x") and not word.startswith("--"))):
            kept.append(word)
        i += 1
    merged = ",".join(([srun.exclude] if srun.exclude else []) + list(nodes))
    return [*argv[:srun.index + 1], f"--exclude={merged}", *kept, *argv[srun.end:]]


@dataclass(frozen=True)
class StepEnd:
    """How srun says a step ended.

    Attributes:
        ranks: where each rank ran, by the diagnosis's stream name (``{"rank1": "n2"}``).
        failed: the nodes of the ranks that failed, in the order srun reported them (the first is
            where the failure began; the others usually die of it).
        cause: the ``engine:`` cause when the end is not the code's fault, else None.
        exclude: nodes to leave out of the next step.
        note: one line for the incident's log, when Phoenix decided something about nodes.
        oom: srun or slurmstepd reported an out-of-memory kill.
    """

    ranks: dict[str, str] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    cause: str | None = None
    exclude: list[str] = field(default_factory=list)
    note: str = ""
    oom: bool = False


def node_failed(tail: str) -> bool:
    """Did srun report a node failure? (It then exits 0, as if the step had succeeded.)"""
    return _NODE_FAILURE.search(tail) is not None


def judge_step(tail: str, srun: SrunArgs, allocation: Sequence[str], excluded: Sequence[str]) -> StepEnd:
    """Read a failed step's output: where the ranks ran, and whether a node or Slurm is to blame.

    A node failure or a GPU hardware failure is the machine's doing: its nodes are excluded from
    the next step when the allocation keeps enough nodes for it (``srun.needs``). A node failure
    is an engine end either way (restarting costs no budget; a node still down fails the next
    step's launch, which is bounded). A hardware failure with no node to spare is left to the
    policy as a failure (by default it stops: the GPU would fail again). A step Slurm could not
    create, before any rank wrote a line, is a launch failure (the caller bounds its retries).
    """
    ranks = ends.rank_nodes(tail, [], 0)
    failed: list[str] = []
    for m in _TASK.finditer(tail):
        if m["node"] not in failed:
            failed.append(m["node"])
    oom = bool(_OOM.search(tail))
    down = [n for m in _NODE_FAILURE.finditer(tail) if (n := m["node"] or m["on"])]
    if down:
        return _engine(EngineCause.NODE_FAIL, sorted(set(down)), ranks, failed, srun, allocation, excluded, oom,
                       always=True)
    # An unlabelled line (one task, or no --label) is the first failed task's: its node is srun's.
    hardware = ends.hardware_nodes(tail, {**ranks, "": failed[0]} if failed else ranks)
    if hardware:
        return _engine(EngineCause.HARDWARE, hardware, ranks, failed, srun, allocation, excluded, oom, always=False)
    launch = _LAUNCH.search(tail)
    if launch and not _task_output(tail):
        node = launch["node"]
        if node:
            return _engine(EngineCause.LAUNCH_FAILED, [node], ranks, failed, srun, allocation, excluded, oom,
                           always=True)
        return StepEnd(ranks, failed, engine_end(EngineCause.LAUNCH_FAILED, (launch["why"] or "").strip()), oom=oom)
    return StepEnd(ranks, failed, oom=oom)


def _engine(cause: EngineCause, nodes: list[str], ranks: dict[str, str], failed: list[str], srun: SrunArgs,
            allocation: Sequence[str], excluded: Sequence[str], oom: bool, *, always: bool) -> StepEnd:
    """An end caused by ``nodes``: excluded from the next step when the allocation can spare them."""
    new = [n for n in nodes if n not in excluded]
    left = [n for n in allocation if n not in excluded and n not in new]
    need = srun.needs(len(allocation))
    if new and allocation and len(left) >= need:
        note = f"excluding {','.join(new)} from the next step ({len(left)} of {len(allocation)} nodes left, " \
               f"the step needs {need})"
        return StepEnd(ranks, failed, engine_end(cause, ",".join(nodes)), new, note, oom)
    why = ("the allocation's nodes are unknown" if not allocation else
           f"the allocation has {len(allocation) - len(excluded)} usable nodes and the step needs {need}")
    note = f"cannot exclude {','.join(new or nodes)}: {why}" if new else ""
    return StepEnd(ranks, failed, engine_end(cause, ",".join(nodes)) if always else None, [], note, oom)


def _task_output(tail: str) -> bool:
    """Did any rank write a line (anything but srun's and slurmstepd's own)?"""
    return any(line.strip() and not line.lstrip().startswith(("srun:", "slurmstepd")) for line in tail.splitlines())
