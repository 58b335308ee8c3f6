"""`phoenix status [--json] [--check]`: what Phoenix supervises, how it is doing, and what is left of
its budgets.

It reads ``.phoenix_cli/state.json`` (written by the supervisor) and the workspace lock, and, for a
container, asks Docker for a live look when Docker answers. It never takes the lock and never
changes anything. ``--check`` is the container's health check: exit 0 while a Phoenix holds the
workspace, has not given up and, where it serves metrics, answers ``/healthz`` (which fails when
its loop is wedged); 1 otherwise, with one line saying why. What it shows passes the redactor
(what Phoenix keeps is scrubbed already; this also covers a state written by an older Phoenix).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from phoenix_sidecar.commands.common import add_config_options, load_config
from phoenix_sidecar.errors import PhoenixError, describe_holder
from phoenix_sidecar.supervise.lock import holder_is_dead, lock_openers, orphaned, read_holder
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.redact import Redactor
from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.supervise.state import SupervisorState, read_state


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("status", help="show the supervised job, its state, the current incident and budgets",
                              description=__doc__.split("\n\n")[0])
    add_config_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--check", action="store_true",
                   help="health check: exit 0 while a Phoenix supervises this workspace, 1 otherwise")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args)
    report = collect(loaded.settings, StatePaths(loaded.workspace))
    redactor = Redactor.for_command(os.environ, loaded.settings.train_cmd or ())
    report = redactor.data(report)  # type: ignore[assignment]
    if args.check:
        healthy, why = health(report)
        print(("ok: " if healthy else "unhealthy: ") + why)
        return 0 if healthy else 1
    print(json.dumps(report, indent=1, default=str) if args.json else render(report))
    return 0


def collect(settings: Settings, paths: StatePaths) -> dict[str, Any]:
    """Everything `phoenix status` shows, as plain data (the ``--json`` object)."""
    state = read_state(paths.state)
    report: dict[str, Any] = {"workspace": str(paths.workspace), "lock": lock_status(paths.lock)}
    if state is None:
        report.update(supervisor=None, job=None, incident=None, budgets=None, progress=None)
    else:
        report.update(supervisor=state.supervisor or None, job=_job(state), incident=_incident(state),
                      budgets=_budgets(state, settings), progress=_progress(state, settings))
    if settings.container or settings.container_label:
        report["container"] = live_container(settings)
    return report


def lock_status(path: Path) -> dict[str, Any]:
    """Whether the workspace lock is held, and by whom (from the kernel's lock table, without
    touching the lock; from the holder's record where the table cannot tell)."""
    holder = read_holder(path)
    held: bool | None = None
    try:
        inode = os.stat(path).st_ino
        with open("/proc/locks") as fh:
            held = any(_locks_inode(line) == inode for line in fh)
    except FileNotFoundError:
        held = False if not path.exists() else None
    except OSError:
        held = None
    if holder and holder_is_dead(holder):
        # The Phoenix that took the lock is gone, yet the lock is held or its job's process group
        # lives on (a child started with close_fds): the job outlived it, and the workspace is
        # still taken (a new `phoenix run` is refused the same way).
        left = orphaned(holder, lock_openers(path) if held is not False else ())
        if left["orphaned_job"]["pids"]:
            return {"path": str(path), "held": True, "holder": left}
    return {"path": str(path), "held": held, "holder": holder or None}


def _locks_inode(line: str) -> int | None:
    # "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF" (the device:inode field is the 6th)
    fields = line.split()
    if len(fields) < 6 or fields[1] != "FLOCK":
        return None
    try:
        return int(fields[5].rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


def live_container(settings: Settings) -> dict[str, Any]:
    """A live look at the supervised container, or why there is none."""
    from phoenix_sidecar.runtime import docker

    try:
        now = docker.look(settings)
    except PhoenixError as exc:
        return {"error": str(exc)}
    return {"name": now.name, "id": now.id, "status": now.status, "started_at": now.started_at,
            "exit_code": None if now.running else now.exit_code, "oom_killed": now.oom_killed,
            "restart_policy": now.restart_policy, "docker_restart_count": now.restart_count, "image": now.image}


def _job(state: SupervisorState) -> dict[str, Any]:
    job = state.job
    return {"target": job.target, "state": job.state, "run": job.run, "started_at": job.started_at,
            "last_output": job.last_output, "updated_at": job.updated_at, "engine": job.engine}


def _incident(state: SupervisorState) -> dict[str, Any] | None:
    incident = state.current_incident
    if incident is None:
        return None
    return {"id": incident.id, "kind": incident.kind, "category": incident.category,
            "signature": incident.signature, "summary": incident.summary, "exit": incident.exit,
            "action": incident.action, "reason": incident.reason, "details": incident.details,
            "category_source": incident.category_source, "triage": incident.triage}


def _progress(state: SupervisorState, settings: Settings) -> dict[str, Any] | None:
    """The steps Phoenix read from the job's output (None for a job that reports none)."""
    p = state.progress
    if p.best_step is None and p.step is None:
        return None
    return {"step": p.step, "total": p.total, "best_step": p.best_step, "loss": p.loss,
            "steps_per_second": p.steps_per_second, "last_progress": p.last_progress,
            "timeout_seconds": p.timeout_seconds, "slowdown": p.slowdown, "format": p.format,
            "no_progress_runs": state.budgets.no_progress_runs,
            "max_no_progress_restarts": settings.max_no_progress_restarts}


def _budgets(state: SupervisorState, settings: Settings) -> dict[str, Any]:
    b = state.budgets
    return {"restarts": b.total_restarts, "max_total_restarts": settings.max_total_restarts,
            "failures_in_a_row": b.failures_in_a_row, "max_retries": settings.max_retries,
            "signatures": {sig: {"category": e.category, "attempts": e.attempts, "summary": e.summary}
                           for sig, e in b.signatures.items()}}


def health(report: dict[str, Any]) -> tuple[bool, str]:
    """The verdict of ``--check``."""
    job, lock = report.get("job"), report["lock"]
    holder = lock.get("holder") or {}
    if lock["held"] is False or (lock["held"] is None and not holder):
        return False, "no Phoenix holds this workspace"
    if holder.get("orphaned_job"):
        return False, f"no Phoenix supervises this workspace: {describe_holder(holder)}"
    if job is None:
        return True, f"phoenix starting (pid {holder.get('pid', '?')})"
    if job["state"] == "gave_up":
        incident = report.get("incident") or {}
        return False, f"phoenix gave up on {job['target']}: {incident.get('reason', 'see phoenix status')}"
    address = (report.get("supervisor") or {}).get("metrics")
    if address:
        alive, why = healthz(address)
        if not alive:
            return False, why
    return True, f"{job['target']} {job['state']} (phoenix pid {holder.get('pid', '?')})"


def healthz(address: str, timeout: float = 5.0) -> tuple[bool, str]:
    """Ask the metrics server's ``/healthz`` (it fails while the supervisor loop is wedged)."""
    host, _, port = address.rpartition(":")
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "[::]": "[::1]", "::": "[::1]"}.get(host, host)
    url = f"http://{host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return True, response.read(200).decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code} {exc.read(200).decode('utf-8', 'replace').strip()}"
    except OSError as exc:
        return False, f"{url} does not answer: {exc}"


def render(report: dict[str, Any]) -> str:
    lines = [f"workspace:  {report['workspace']}"]
    lock, sup = report["lock"], report.get("supervisor") or {}
    holder = lock.get("holder") or {}
    if holder.get("orphaned_job"):
        lines.append(f"phoenix:    NOT running: {describe_holder(holder)}")
    elif lock["held"] or (lock["held"] is None and holder):
        lines.append(f"phoenix:    {sup.get('mode', 'phoenix')} running (pid {holder.get('pid', '?')} on "
                     f"{holder.get('host', '?')}, since {holder.get('started', '?')})"
                     + (f", metrics on {sup['metrics']}" if sup.get("metrics") else ""))
    else:
        lines.append("phoenix:    not running (the workspace lock is free)")
    job = report.get("job")
    if job is None:
        lines.append("job:        no state yet (Phoenix has not supervised this workspace)")
    else:
        lines.append(f"job:        {job['target'] or '?'}: {job['state']}, run {job['run']}"
                     + (f", started {_ago(job['started_at'])}" if job.get("started_at") else ""))
        lines.append(f"heartbeat:  last output {_ago(job['last_output'])}" if job.get("last_output")
                     else "heartbeat:  no output seen yet")
        if job.get("engine"):
            lines.append(_render_engine(job["engine"]))
    progress = report.get("progress")
    if progress:
        lines.append(_render_progress(progress))
    container = report.get("container")
    if container is not None:
        if "error" in container:
            lines.append(f"container:  (no live look: {container['error']})")
        else:
            ended = "" if container["exit_code"] is None else f", exit code {container['exit_code']}"
            lines.append(f"container:  {container['name']} ({container['id']}): {container['status']}{ended}"
                         + (", OOM-killed" if container["oom_killed"] else "")
                         + f"; restart policy {container['restart_policy']}")
    incident = report.get("incident")
    if incident:
        lines.append(f"incident:   #{incident['id']} {incident['kind']}, {incident['category']}: {incident['summary']}")
        triage = incident.get("triage") or {}
        if incident.get("category_source") == "llm":
            lines.append(f"            category named by the LLM triage ({triage.get('client')}): {triage.get('reason')}")
        elif triage:
            lines.append(f"            LLM triage: {triage.get('result')}: {triage.get('reason')}")
        if incident.get("action"):
            lines.append(f"            decision: {incident['action']}: {incident['reason']}")
        if incident.get("details"):
            lines.append(f"            output: {incident['details']}")
    budgets = report.get("budgets")
    if budgets:
        lines.append(f"budgets:    {budgets['restarts']} of {budgets['max_total_restarts']} restarts used; "
                     f"{budgets['failures_in_a_row']} failure(s) in a row")
        for sig, entry in budgets["signatures"].items():
            lines.append(f"            {sig}: {entry['attempts']} of {budgets['max_retries']} attempts "
                         f"({entry['category']}: {entry['summary']})")
    return "\n".join(lines)


def _render_engine(e: dict[str, Any]) -> str:
    """``slurm:      job 42 RUNNING on n1,n2; 1 requeue by Phoenix, 2 restart(s) in all; excluded n3``."""
    nodes = ",".join(e.get("nodes") or []) or "no nodes"
    requeues = e.get("requeues", 0)
    line = (f"{e.get('engine', 'engine') + ':':<12}job {e.get('job_id', '?')} {e.get('state', '?')} on {nodes}; "
            f"{requeues} requeue{'' if requeues == 1 else 's'} by Phoenix, {e.get('restarts', 0)} restart(s) in all")
    return line + (f"; excluded {','.join(e['excluded'])}" if e.get("excluded") else "")


def _render_progress(p: dict[str, Any]) -> str:
    step = f"step {p['step']}" + (f"/{p['total']}" if p.get("total") else "") if p.get("step") is not None \
        else "no step in this run yet"
    parts = [step, f"best {p['best_step']}"]
    if p.get("loss") is not None:
        parts.append(f"loss {p['loss']:.4g}")
    if p.get("steps_per_second"):
        parts.append(f"{p['steps_per_second']:.3g} steps/s" + (" (SLOWDOWN)" if p.get("slowdown") else ""))
    if p.get("last_progress"):
        parts.append(f"last new step {_ago(p['last_progress'])}")
    parts.append(f"no-progress timeout {p['timeout_seconds']:.0f}s" if p.get("timeout_seconds")
                 else "no-progress timeout not learned yet")
    if p.get("no_progress_runs"):
        parts.append(f"{p['no_progress_runs']} of {p['max_no_progress_restarts']} runs without progress")
    return f"progress:   {', '.join(parts)} [{p.get('format') or '?'}]"


def _ago(stamp: float | None) -> str:
    if not stamp:
        return "never"
    seconds = max(0.0, time.time() - stamp)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))
    if seconds < 120:
        return f"{seconds:.0f}s ago ({when})"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago ({when})"
    return f"{seconds / 3600:.1f} h ago ({when})"
