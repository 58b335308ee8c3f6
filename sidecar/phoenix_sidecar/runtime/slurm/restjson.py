"""What slurmrestd's answers mean: its JSON turned into the same `JobInfo` and node states as the commands give.

Pure functions over the answers of the REST API version Phoenix knows (``v0.0.38``, Slurm 22.05;
recorded answers under ``tests/data/slurmrest/`` pin every field used here). The differences from
``scontrol`` that matter, each handled here:

- times are epoch seconds, 0 for none; a running or pending job carries a projected end time
  (a year ahead without a limit), which ``scontrol`` shows as ``Unknown``: it is only an end once
  the job finished;
- ``exit_code`` is the wait status (``768`` is exit code 3, ``9`` is signal 9);
- ``standard_output`` is the pattern given to ``sbatch`` (``%x-%j.out``, relative to the working
  directory, empty for the default ``slurm-%j.out``), where ``scontrol`` prints the file;
- a node's state is a lower-case word plus ``state_flags``, where ``scontrol`` prints ``IDLE+DRAIN``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from phoenix_sidecar.runtime.slurm.client import FINISHED, JobInfo

API_VERSIONS = ("v0.0.38",)  # the versions whose field names are verified against a real daemon
_PATTERN = re.compile(r"%(\d*)([%AaJjNnstux])")
_NO_VAL = 0xFFFFFFFE  # Slurm's "no value" for 32-bit numbers (an array task id outside an array)


def job_from_rest(job: dict[str, Any]) -> JobInfo:
    """One entry of ``jobs`` in ``GET /slurm/v0.0.38/job/{id}`` as a `JobInfo`."""
    state = str(job.get("job_state") or "UNKNOWN")
    status = int(job.get("exit_code") or 0)
    signal = status & 0x7F
    stdout = expand_output(job, str(job.get("standard_output") or ""), default=True)
    stderr = expand_output(job, str(job.get("standard_error") or ""), default=False) or stdout
    return JobInfo(
        job_id=str(job.get("job_id", "")), name=str(job.get("name") or ""), state=state,
        reason=str(job.get("state_reason") or ""), restarts=int(job.get("restart_cnt") or 0),
        exit_code=(status >> 8) & 0xFF, exit_signal=signal or None,
        nodes=str(job.get("nodes") or ""), excluded=str(job.get("excluded_nodes") or ""),
        start_time=_epoch(job.get("start_time")),
        end_time=_epoch(job.get("end_time")) if state in FINISHED else None,
        preempt_time=_epoch(job.get("preempt_time")), num_tasks=int(job.get("tasks") or 1),
        stdout=stdout, stderr=stderr, workdir=str(job.get("current_working_directory") or ""),
        batch_host=str(job.get("batch_host") or ""))


def _epoch(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def expand_output(job: dict[str, Any], pattern: str, *, default: bool) -> str:
    """The output file of a batch job from its ``sbatch`` pattern, as ``scontrol`` prints it.

    ``%j`` job id, ``%A``/``%a`` array job and task, ``%x`` name, ``%u`` user, ``%N`` the first
    node, ``%n``/``%t``/``%s`` 0 (the batch step's node, task and step), ``%%``; a width pads with
    zeros (``%5j``). An empty pattern is Slurm's default (``slurm-%j.out``, ``slurm-%A_%a.out`` for an
    array task) when ``default``, else "" (standard error goes with standard output).
    """
    array_task = job.get("array_task_id")
    in_array = isinstance(array_task, int) and array_task != _NO_VAL and bool(job.get("array_job_id"))
    if not pattern:
        if not default:
            return ""
        pattern = "slurm-%A_%a.out" if in_array else "slurm-%j.out"
    job_id = str(job.get("job_id", ""))
    values = {"%": "%", "j": job_id, "J": job_id, "x": str(job.get("name") or ""),
              "u": str(job.get("user_name") or ""), "N": str(job.get("batch_host") or ""),
              "n": "0", "t": "0", "s": "batch",
              "A": str(job.get("array_job_id") or job_id) if in_array else job_id,
              "a": str(array_task) if in_array else "4294967294"}

    def one(m: re.Match[str]) -> str:
        value = values[m.group(2)]
        return value.zfill(int(m.group(1))) if m.group(1) and value.isdigit() else value

    path = _PATTERN.sub(one, pattern)
    if path and not os.path.isabs(path) and job.get("current_working_directory"):
        path = os.path.join(str(job["current_working_directory"]), path)
    return path


def node_state(node: dict[str, Any]) -> str:
    """``{"state": "idle", "state_flags": ["DRAIN"]}`` -> ``IDLE+DRAIN`` (how ``scontrol`` words it)."""
    words = [str(node.get("state") or "unknown").upper(), *(str(f).upper() for f in node.get("state_flags") or [])]
    return "+".join(words)


def errors(answer: dict[str, Any]) -> list[str]:
    """The ``errors`` of an answer as sentences (``Unable to find JobId=7 (Invalid job id specified)``)."""
    out = []
    for err in answer.get("errors") or []:
        if isinstance(err, dict):
            text = str(err.get("description") or err.get("error") or err)
            if err.get("error") and err.get("error") != text:
                text += f" ({err['error']})"
            out.append(text)
    return out


def served_versions(openapi: dict[str, Any]) -> list[str]:
    """The ``/slurm/vX`` API versions an ``/openapi`` document lists, oldest first."""
    found = {m.group(1) for p in openapi.get("paths", {}) for m in [re.match(r"/slurm/(v[\d.]+)/", p)] if m}
    return sorted(found, key=lambda v: [int(x) for x in v[1:].split(".")])
