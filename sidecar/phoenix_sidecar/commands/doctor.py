"""`phoenix doctor`: check what a deployment needs, and say what to fix for each check that fails.

Checks: the Docker daemon answers (socket or proxy), the training container is found and has no
restart policy of its own, Slurm for a Slurm job (commands, SLURM_CONF, `scontrol ping`, slurmrestd,
the job, the rights to drain, whether flock holds on the workspace's file system), the workspace and the log volume are writable, the workspace lock (free,
or who holds it), the LLM clients' credentials, git in the workspace, the verification sandbox (bubblewrap), and the GPUs (NVML). Exit
code 1 when a check fails; warnings do not fail. ``--skip gpu`` (and so on) leaves a check out (a
CPU-only host: ``--skip gpu``). ``--llm`` asks each configured LLM client a tiny question, so a
placeholder key or a wrong URL shows here rather than at the first repair. ``--json`` prints the
results as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from phoenix_sidecar.config import loader as config
from phoenix_sidecar.commands.common import add_config_options, load_config
from phoenix_sidecar.commands.status import lock_status
from phoenix_sidecar.errors import ConfigError, ContainerGone, PhoenixError, RefusedAction
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.config.schema import Settings

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
CHECKS = ("docker", "container", "slurm", "volumes", "lock", "llm", "git", "sandbox", "gpu")


@dataclass(frozen=True)
class Result:
    check: str
    status: str
    detail: str
    fix: str = ""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("doctor", help="check a deployment (Docker, container, Slurm, volumes, lock, LLM, git, sandbox, GPUs)",
                              description=__doc__.split("\n\n")[0])
    add_config_options(p)
    p.add_argument("--skip", action="append", default=[], choices=CHECKS, metavar="CHECK",
                   help=f"leave a check out (repeatable): {', '.join(CHECKS)}; a CPU-only host: --skip gpu")
    p.add_argument("--llm", action="store_true",
                   help="ask each configured LLM client a tiny question (costs one small request each)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args)
    results = diagnose(loaded.settings, set(args.skip), ask_llm=args.llm)
    failed = [r.check for r in results if r.status == FAIL]
    if args.json:
        print(json.dumps({"ok": not failed, "failed": failed,
                          "checks": [{"check": r.check, "status": r.status.lower(), "detail": r.detail, "fix": r.fix}
                                     for r in results]}, indent=2))
        return 1 if failed else 0
    width = max(len(r.check) for r in results)
    for r in results:
        print(f"[{r.status:>4}] {r.check:<{width}}  {r.detail}")
        if r.fix and r.status in (FAIL, WARN):
            print(f"       {'':<{width}}  fix: {r.fix}")
    print(f"\n{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "\nall checks passed")
    return 1 if failed else 0


def diagnose(settings: Settings, skip: set[str], *, ask_llm: bool = False) -> list[Result]:
    """Every check's result, in order. A check that needs Docker is skipped when Docker does not answer."""
    checks: list[tuple[str, Callable[[Settings], Result | list[Result]]]] = [
        ("docker", check_docker), ("container", check_container), ("slurm", check_slurm), ("volumes", check_volumes),
        ("lock", check_lock), ("llm", ask_llms if ask_llm else check_llm), ("git", check_git), ("sandbox", check_sandbox),
        ("gpu", check_gpu)]
    results: list[Result] = []
    for name, check in checks:
        if name in skip:
            results.append(Result(name, SKIP, "skipped (--skip)"))
        elif name == "container" and results and results[0].check == "docker" and results[0].status != OK:
            results.append(Result(name, SKIP, "skipped: Docker does not answer"))
        else:
            try:
                found = check(settings)
                results.extend(found if isinstance(found, list) else [found])
            except Exception as exc:  # a check that breaks is a failed check, not a crashed doctor
                results.append(Result(name, FAIL, f"the check itself failed: {exc}"))
    return results


def _watches_a_container(settings: Settings) -> bool:
    return bool(settings.container or settings.container_label)


def check_docker(settings: Settings) -> Result:
    if not _watches_a_container(settings):
        return Result("docker", SKIP, "no container configured (phoenix run needs no Docker)")
    from phoenix_sidecar.runtime import docker

    address = docker.daemon_address()
    try:
        version = docker.daemon_version(settings)
        return Result("docker", OK, f"Docker {version.get('Version')} (API {version.get('ApiVersion')}) at {address}")
    except PhoenixError as exc:
        socket_path = address.removeprefix("unix://")
        if address.startswith("unix://") and os.path.exists(socket_path) and not os.access(socket_path, os.W_OK):
            gid = os.stat(socket_path).st_gid
            fix = (f"this user (uid {os.getuid()}) may not use {socket_path}: add its group "
                   f"(compose: group_add: [\"{gid}\"]), or use the socket proxy (DOCKER_HOST)")
        elif address.startswith("unix://") and not os.path.exists(socket_path):
            fix = (f"{socket_path} does not exist: mount the Docker socket (-v /var/run/docker.sock:/var/run/docker.sock) "
                   "or point DOCKER_HOST at the socket proxy")
        else:
            fix = "start the Docker daemon, or point DOCKER_HOST at the right daemon or socket proxy"
        return Result("docker", FAIL, f"no answer from {address}: {exc}", fix)


def check_container(settings: Settings) -> Result:
    if not _watches_a_container(settings):
        return Result("container", SKIP, "no container configured (set container or container_label for watch)")
    from phoenix_sidecar.runtime import docker

    selector = settings.container or f"label {settings.container_label}"
    try:
        now = docker.look(settings)
    except ContainerGone:
        return Result("container", FAIL, f"no container matches {selector}",
                      "start the training container first (docker compose up -d trainer), or fix container/"
                      "container_label")
    except (ConfigError, RefusedAction) as exc:
        return Result("container", FAIL, str(exc), "make the selector name exactly one container "
                      "(and let the socket proxy allow it)")
    except PhoenixError as exc:
        return Result("container", FAIL, str(exc), "see the docker check")
    detail = f"{now.name} ({now.id}): {now.status}"
    if now.restart_policy not in ("", "no"):
        return Result("container", FAIL, f"{detail}, with the Docker restart policy {now.restart_policy!r}",
                      "set its restart policy to \"no\" (compose: restart: \"no\"; or docker update --restart=no): "
                      "Docker and Phoenix would both restart it and fight")
    if not now.mounts_workspace:
        return Result("container", WARN, f"{detail}; it does not mount the workspace at {settings.workspace}",
                      "mount the workspace at the same path in the trainer and the sidecar, so the paths in its "
                      "tracebacks are files Phoenix can repair")
    return Result("container", OK, detail)


def check_slurm(settings: Settings) -> Result | list[Result]:
    """Slurm, when Phoenix watches a Slurm job (or reads Slurm through slurmrestd): see `runtime.slurm.checks`."""
    if not settings.slurm_job and not settings.slurm_rest_url:
        return Result("slurm", SKIP, "no Slurm job configured (--slurm-job)")
    from phoenix_sidecar.runtime import slurm

    words = {"ok": OK, "warn": WARN, "fail": FAIL}
    return [Result(name, words[status], detail, fix) for name, status, detail, fix in slurm.doctor_checks(settings)]


def check_volumes(settings: Settings) -> Result:
    workspace = Path(settings.workspace)
    problems, fixes = [], []
    state_dir = StatePaths(workspace).root
    target = state_dir if state_dir.exists() else workspace
    if not _writable_dir(target):
        problems.append(f"{target} is not writable by uid {os.getuid()}")
        fixes.append(f"run Phoenix as the owner of the workspace (uid {_owner(workspace)}; compose: "
                     "WORKSPACE_UID/WORKSPACE_GID) or make it writable")
    if settings.log_file:
        log_path = Path(settings.log_file if os.path.isabs(settings.log_file) else workspace / settings.log_file)
        if not log_path.parent.is_dir():
            problems.append(f"the log volume {log_path.parent} is not mounted here")
            fixes.append("mount the job's log volume at the same path in both containers")
        elif log_path.exists() and not os.access(log_path, os.R_OK):
            problems.append(f"{log_path} is not readable")
            fixes.append("let the sidecar's user read the job's log file")
        elif not log_path.exists():
            return Result("volumes", WARN if not problems else FAIL,
                          "; ".join([*problems, f"{log_path} does not exist yet (the job creates it)"]),
                          "; ".join(fixes) or "start the job, or check log_file points where the job writes")
    if problems:
        return Result("volumes", FAIL, "; ".join(problems), "; ".join(fixes))
    return Result("volumes", OK, f"{workspace} writable" + (f"; log file {settings.log_file} readable"
                                                             if settings.log_file else ""))


def _writable_dir(path: Path) -> bool:
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".phoenix-doctor-"):
            return True
    except OSError:
        return False


def _owner(path: Path) -> str:
    try:
        return str(path.stat().st_uid)
    except OSError:
        return "?"


def check_lock(settings: Settings) -> Result:
    status = lock_status(StatePaths(Path(settings.workspace)).lock)
    holder = status.get("holder") or {}
    if status["held"] or (status["held"] is None and holder):
        who = ", ".join(f"{k} {holder[k]}" for k in ("pid", "host", "started", "command") if holder.get(k))
        return Result("lock", OK, f"held by {who or 'an unknown holder'}")
    return Result("lock", OK, "free: no Phoenix supervises this workspace now")


def check_llm(settings: Settings) -> Result:
    if not settings.repair:
        return Result("llm", SKIP, "repair is off (repair: false)")
    clients = [settings.primary, *[c for c in settings.fallback if c != settings.primary]]
    missing, ready = [], []
    for client in clients:
        problem = _llm_problem(settings, client)
        (missing if problem else ready).append(f"{client}: {problem}" if problem else client)
    if not ready:
        return Result("llm", FAIL, "no LLM client can run: " + "; ".join(missing),
                      "give the sidecar the credentials (e.g. GEMINI_API_KEY in the environment), or set "
                      "primary/fallback to a client you have, or repair: false")
    if missing:
        return Result("llm", WARN, f"ready: {', '.join(ready)}; not ready: {'; '.join(missing)}",
                      "fix or remove the clients that are not ready")
    return Result("llm", OK, f"ready: {', '.join(ready)}")


LLM_QUESTION = ("phoenix doctor: a connectivity check, nothing is broken. Answer with an empty list of patches "
                "and the explanation 'ok'.")
LLM_DOCTOR_TIMEOUT = 60.0  # a check, not a repair: no need to wait the whole llm_timeout_seconds


def ask_llms(settings: Settings) -> Result:
    """Ask each configured client the tiny `LLM_QUESTION`; any answer at all proves key, URL and model."""
    first = check_llm(settings)
    if first.status in (SKIP, FAIL):
        return first
    from dataclasses import replace

    from phoenix_sidecar.repair.llm import build_clients
    from phoenix_sidecar.errors import LlmError

    quick = replace(settings, llm_timeout_seconds=min(settings.llm_timeout_seconds, LLM_DOCTOR_TIMEOUT))
    answered, failed = [], []
    for client in build_clients(quick, os.environ, Path(settings.workspace)):
        started = time.monotonic()
        try:
            answer = client.complete(LLM_QUESTION)
        except LlmError as exc:
            failed.append(f"{client.name}: {exc}")
            continue
        answered.append(f"{client.name} answered in {time.monotonic() - started:.1f} s ({len(answer)} characters)")
    if not answered:
        return Result("llm", FAIL, "no LLM client answered: " + "; ".join(failed),
                      "check the API key (a placeholder is not a key), the URL and the model name; "
                      "phoenix config shows which are in effect")
    if failed:
        return Result("llm", WARN, "; ".join(answered) + "; failed: " + "; ".join(failed),
                      "fix or remove the clients that failed")
    return Result("llm", OK, "; ".join(answered))


def _llm_problem(settings: Settings, client: str) -> str:
    if client == "gemini_api":
        return "" if config.secret(settings, "gemini_api_key") else f"${settings.gemini_api_key_env} is not set"
    if client == "gemini_cli":
        return "" if shutil.which(settings.gemini_cli_bin) else f"{settings.gemini_cli_bin!r} is not on PATH"
    if client == "openai":
        if not settings.openai_url or not settings.openai_model:
            return "openai_url and openai_model must be set"
        return ""
    if client == "command":
        if not settings.llm_cmd:
            return "llm_cmd is not set"
        return "" if shutil.which(settings.llm_cmd[0]) or os.path.exists(settings.llm_cmd[0]) \
            else f"{settings.llm_cmd[0]!r} is not found"
    return "unknown client"


def check_git(settings: Settings) -> Result:
    if not shutil.which("git"):
        return Result("git", FAIL, "git is not installed", "install git (the sidecar image has it)")
    try:
        result = subprocess.run(["git", "-C", settings.workspace, "rev-parse", "--show-toplevel"],
                                capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Result("git", FAIL, f"git does not run: {exc}", "check the git installation")
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "not a git repository"
        return Result("git", WARN, f"{settings.workspace} is not in a git repository ({reason}); repairs are "
                      "verified in a plain copy", "git init && git add -A && git commit -m baseline, for cheap "
                      "isolated worktrees and a history of what Phoenix changed")
    return Result("git", OK, f"repository {result.stdout.strip()}")


def check_sandbox(settings: Settings) -> Result:
    from phoenix_sidecar.repair import sandbox

    box = sandbox.probe(settings.sandbox)
    detail = box.line().removeprefix("sandbox: ")
    if box.works:
        return Result("sandbox", OK, detail)
    fix = "install bubblewrap (apt-get install bubblewrap) and allow user namespaces (e.g. docker run " \
          "--security-opt seccomp=unconfined, or sysctl kernel.unprivileged_userns_clone=1)"
    return Result("sandbox", FAIL if settings.sandbox == "bubblewrap" else WARN, detail, fix)


def check_gpu(settings: Settings) -> Result:
    try:
        import pynvml
    except ImportError:
        return Result("gpu", FAIL, "the NVML bindings (nvidia-ml-py) are not installed", "pip install nvidia-ml-py")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return Result("gpu", FAIL, f"no GPU visible: NVML says {exc}",
                      "on a GPU host give this container the GPUs (compose: deploy.resources.reservations.devices "
                      "with capabilities [utility]; docker run --gpus all) and the NVIDIA Container Toolkit; "
                      "on a CPU-only host: phoenix doctor --skip gpu")
    try:
        count = pynvml.nvmlDeviceGetCount()
        names = [_text(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))) for i in range(count)]
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
    finally:
        pynvml.nvmlShutdown()
    if not count:
        return Result("gpu", FAIL, "NVML works but sees no GPU", "give this container the GPUs (--gpus all)")
    return Result("gpu", OK, f"{count} GPU(s), driver {driver}: {', '.join(names)}")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
