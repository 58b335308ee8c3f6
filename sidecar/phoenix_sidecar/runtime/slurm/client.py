"""`SlurmClient`: every Slurm command Phoenix runs, and what their answers mean, in one place.

Phoenix acts through the scheduler, never around it: it reads a job with ``scontrol -o show job``
(one line of ``Key=Value``; this Slurm's ``scontrol`` has no ``--json``), finds a job by name with
``squeue --json`` (whose filters the 22.05 JSON output ignores, so the match is made here), and
acts with ``scontrol requeuehold``/``release``/``update`` and ``scancel``. Each call is one
subprocess with a timeout; a failure becomes `RuntimeUnavailable` with Slurm's own words. The
``runner`` seam lets a unit test answer for Slurm.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from phoenix_sidecar.errors import RuntimeUnavailable

log = logging.getLogger(__name__)

Runner = Callable[[Sequence[str], float], "subprocess.CompletedProcess[str]"]
# States in which a job (this run of it) is over. REQUEUED and friends are passing states.
FINISHED = frozenset({"COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "CANCELLED",
                      "BOOT_FAIL", "DEADLINE"})
SETTLING = frozenset({"REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "COMPLETING", "STOPPED", "SIGNALING",
                      "RESIZING", "CONFIGURING"})
# Every state word a job may show (the label values of ``phoenix_slurm_job_info``); anything else is OTHER.
JOB_STATES = frozenset({"PENDING", "RUNNING", "SUSPENDED", *FINISHED, *SETTLING})
_FIELD = re.compile(r"(?:^|\s)([A-Za-z][\w/:]*)=")


@dataclass(frozen=True)
class JobInfo:
    """One reading of a job, as ``scontrol -o show job`` reports it."""

    job_id: str
    name: str
    state: str
    reason: str
    restarts: int
    exit_code: int | None
    exit_signal: int | None
    nodes: str  # the hostlist expression of the run's nodes, "" while pending
    excluded: str
    start_time: float | None
    end_time: float | None
    preempt_time: float | None
    num_tasks: int
    stdout: str
    stderr: str
    workdir: str
    batch_host: str

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def running(self) -> bool:
        return self.state in ("RUNNING", "COMPLETING") and self.start_time is not None

    @property
    def held(self) -> bool:
        return self.state == "PENDING" and "held" in self.reason.lower()  # JobHeldUser, job_requeued_in_held_state

    @property
    def settling(self) -> bool:
        """Between two settled states (a requeue or a stop in progress): read again before acting."""
        return self.state in SETTLING

    @property
    def run_key(self) -> tuple[int, float]:
        """What tells one run of the job from the next: a requeue bumps ``Restarts``."""
        return (self.restarts, self.start_time or 0.0)


def parse_fields(line: str) -> dict[str, str]:
    """``Key=Value Key2=Value with spaces`` -> dict (a value runs to the next `` Key=``)."""
    marks = list(_FIELD.finditer(line))
    out: dict[str, str] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(line)
        out.setdefault(m.group(1), line[m.end():end].strip())
    return out


def _time(value: str | None) -> float | None:
    if not value or value in ("None", "Unknown", "N/A", "(null)"):
        return None
    try:
        return time.mktime(time.strptime(value, "%Y-%m-%dT%H:%M:%S"))  # Slurm prints local time
    except ValueError:
        return None


def job_from_fields(f: dict[str, str]) -> JobInfo:
    code, _, sig = f.get("ExitCode", "").partition(":")
    null = ("", "(null)")
    return JobInfo(
        job_id=f.get("JobId", ""), name=f.get("JobName", ""), state=f.get("JobState", "UNKNOWN"),
        reason=f.get("Reason", ""), restarts=int(f.get("Restarts", "0") or 0),
        exit_code=int(code) if code.isdigit() else None,
        exit_signal=int(sig) if sig.isdigit() and int(sig) else None,
        nodes="" if f.get("NodeList", "") in null else f["NodeList"],
        excluded="" if f.get("ExcNodeList", "") in null else f["ExcNodeList"],
        start_time=_time(f.get("StartTime")), end_time=_time(f.get("EndTime")),
        preempt_time=_time(f.get("PreemptTime")), num_tasks=int(f.get("NumTasks", "1") or 1),
        stdout="" if f.get("StdOut", "") in null else f["StdOut"],
        stderr="" if f.get("StdErr", "") in null else f["StdErr"],
        workdir=f.get("WorkDir", ""), batch_host=f.get("BatchHost", ""))


def _run(args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)


class SlurmClient:
    """Runs Slurm commands with ``timeout`` seconds each (the environment carries ``SLURM_CONF``)."""

    def __init__(self, *, timeout: float = 30.0, runner: Runner = _run) -> None:
        self.timeout = timeout
        self._runner = runner

    def _call(self, *args: str) -> str:
        try:
            result = self._runner(args, self.timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeUnavailable(f"{' '.join(args[:3])}: {exc}") from exc
        if result.returncode != 0:
            raise RuntimeUnavailable(f"{' '.join(args)}: {(result.stderr or result.stdout).strip()}")
        return result.stdout

    # -- reading -------------------------------------------------------------------------------
    def find(self, ident: str) -> str:
        """The job id of ``ident``: a job id, an array task ``123_4``, or a job name (the newest)."""
        if re.fullmatch(r"\d+(_\d+)?", ident):
            return ident
        data = json.loads(self._call("squeue", "--json") or "{}")
        ids = [int(j["job_id"]) for j in data.get("jobs", []) if j.get("name") == ident]
        if not ids:
            raise RuntimeUnavailable(f"no Slurm job named {ident!r} (squeue knows none)")
        return str(max(ids))

    def job(self, job_id: str) -> JobInfo:
        out = self._call("scontrol", "-o", "show", "job", job_id).strip().splitlines()
        if not out:
            raise RuntimeUnavailable(f"Slurm knows no job {job_id}")
        return job_from_fields(parse_fields(out[0]))

    def ping(self) -> str:
        """``scontrol ping``'s answer (``Slurmctld(primary) at host is UP``), or `RuntimeUnavailable`."""
        out = self._call("scontrol", "ping").strip()
        if "DOWN" in out:
            raise RuntimeUnavailable(f"scontrol ping: {out.splitlines()[0]}")
        return out.splitlines()[0] if out else "no answer"

    def config(self) -> dict[str, str]:
        """``scontrol show config`` as ``{"SlurmUser": "slurm(64030)", ...}``."""
        out = {}
        for line in self._call("scontrol", "show", "config").splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() and " " not in key.strip():
                out[key.strip()] = value.strip()
        return out

    def hostnames(self, hostlist: str) -> list[str]:
        """``n[1-2]`` -> ``["n1", "n2"]``."""
        if not hostlist:
            return []
        return self._call("scontrol", "show", "hostnames", hostlist).split()

    def node_states(self, nodes: Sequence[str]) -> dict[str, str]:
        """Each node's state word (``IDLE``, ``DOWN+NOT_RESPONDING``, ``DRAIN``...)."""
        states = {}
        for node in nodes:
            try:
                fields = parse_fields(self._call("scontrol", "-o", "show", "node", node).strip())
            except RuntimeUnavailable:
                continue
            states[node] = fields.get("State", "UNKNOWN")
        return states

    # -- acting --------------------------------------------------------------------------------
    def requeue_hold(self, job_id: str) -> None:
        """Stop the job's run (SIGTERM, KillWait, SIGKILL) or take the finished job back, held."""
        self._call("scontrol", "requeuehold", job_id)

    def hold(self, job_id: str) -> None:
        self._call("scontrol", "hold", job_id)

    def exclude(self, job_id: str, nodes: Sequence[str]) -> None:
        self._call("scontrol", "update", f"jobid={job_id}", f"ExcNodeList={','.join(nodes)}")

    def release(self, job_id: str) -> None:
        self._call("scontrol", "release", job_id)

    def start_now(self, job_id: str) -> None:
        """A requeued job otherwise waits out its credential's lifetime (125 s by default)."""
        self._call("scontrol", "update", f"jobid={job_id}", "StartTime=now")

    def signal_steps(self, job_id: str, signal: str) -> None:
        """``signal`` to every step of the job (the ranks), not to the batch script."""
        self._call("scancel", f"--signal={signal.removeprefix('SIG')}", job_id)

    def drain(self, node: str, reason: str) -> None:
        self._call("scontrol", "update", f"nodename={node}", "state=drain", f"reason={reason[:120]}")
