"""Regenerate the corpus logs that come from really running PyTorch (CPU) programs.

    python tests/data/make_torch_logs.py            # every run
    python tests/data/make_torch_logs.py NAME...    # only these (names from RUNS)

Needs ``torch`` (``pip install torch==2.13.0``), pyyaml, and py-spy for the hang dumps. Each run
copies ``tests/data/torch_programs/`` into a fresh temporary workspace, runs one program there the
way a job runs (plain ``python``, under ``bash`` so the shell reports the signal, or under
``torchrun`` with two gloo ranks), captures stdout and stderr through one pipe as a supervisor
does, and writes ``tests/data/logs/<name>.log``. The temporary workspace path is rewritten to
``/workspace`` (or the run's ``root``: the same job seen from another directory or mount) so that
the committed logs read like a container job and stay comparable between regenerations; nothing
else is edited. A run may first insert lines at the top of a program file (``edit``: what a repair
does) or pipe its output through a launcher-style prefixer (``pipe``). The exit status of every run is checked against RUNS.

Hang runs (``hang=True``) wait for the program to stall, take ``py-spy dump`` of it
(``<name>.pyspy.stack``), then send SIGUSR1 so the program's faulthandler prints every thread
(``<name>.faulthandler.stack``), and kill it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "torch_programs"
LOGS = HERE / "logs"
WORKSPACE = "/workspace"


@dataclass(frozen=True)
class Run:
    name: str
    program: str
    args: tuple[str, ...] = ()
    how: str = "python"          # python | bash | torchrun
    returncode: int = 1          # what the run must end with (negative: killed by that signal)
    env: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    root: str = WORKSPACE        # the path the temporary workspace is rewritten to in the log
    edit: tuple[str, str] | None = None  # (file, text): text inserted at the top of a program file first
    pipe: str = ""               # a shell filter every output line goes through (a launcher's prefixer)


# Kubernetes' CRI log format: an RFC 3339 timestamp, the stream and a "full line" tag on every line.
CRI_PREFIXER = (f"{sys.executable} -u -c \"import sys, datetime; [sys.stdout.write(datetime.datetime.now("
                "datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ') + ' stderr F ' + ln) for ln in sys.stdin]\"")

RUNS: tuple[Run, ...] = (
    Run("torch_shape_mismatch_b32", "shape_mismatch.py", ("--batch", "32")),
    Run("torch_shape_mismatch_b17", "shape_mismatch.py", ("--batch", "17", "--hidden", "128", "--fail-step", "12")),
    Run("torch_shape_mismatch_b64", "shape_mismatch.py", ("--batch", "64", "--hidden", "512", "--fail-step", "3", "--seed", "9")),
    Run("torch_nan_anomaly", "nan_anomaly.py"),
    Run("torch_nan_anomaly_b4", "nan_anomaly.py", ("--batch", "4", "--bad-step", "9")),
    Run("torch_nan_check_raise", "nan_check.py"),
    Run("torch_nan_check_exit", "nan_check.py", ("--mode", "exit", "--lr", "8")),
    Run("torch_dataloader_worker_raise", "dataloader_worker_raise.py"),
    Run("torch_dataloader_worker_raise_b", "dataloader_worker_raise.py", ("--corrupt", "141")),
    Run("torch_dataloader_worker_killed", "dataloader_worker_killed.py"),
    Run("torch_config_keyerror", "config_keyerror.py"),
    Run("torch_config_keyerror_again", "config_keyerror.py"),
    Run("torch_config_keyerror_momentum", "config_keyerror.py", ("--key", "momentum")),
    Run("torch_batch_keyerror", "batch_keyerror.py"),
    Run("torch_missing_checkpoint", "missing_checkpoint.py"),
    Run("torch_missing_checkpoint_tmp", "missing_checkpoint.py", ("--resume", "/tmp/run_8f3kq/ckpt/step_12000.pt")),
    Run("torch_missing_checkpoint_tmp2", "missing_checkpoint.py", ("--resume", "/tmp/run_q02mz/ckpt/step_15500.pt")),
    Run("torch_missing_package", "missing_package.py"),
    Run("torch_import_name_error", "import_name_error.py"),
    Run("torch_dataset_index_error", "dataset_index_error.py"),
    Run("torch_ddp_rank_fail", "ddp_rank_fail.py", how="torchrun"),
    Run("torch_ddp_rank_fail_again", "ddp_rank_fail.py", how="torchrun"),
    Run("torch_ddp_rank_fail_record", "ddp_rank_fail.py", ("--record",), how="torchrun"),
    Run("torch_ddp_rank_segv", "ddp_rank_fail.py", ("--mode", "segv"), how="torchrun"),
    Run("torch_segfault_faulthandler", "segfault.py", returncode=-signal.SIGSEGV, env={"PYTHONFAULTHANDLER": "1"}),
    Run("torch_segfault_shell", "segfault.py", how="bash", returncode=128 + signal.SIGSEGV),
    Run("torch_sigkill", "sigkill.py", returncode=-signal.SIGKILL),
    Run("torch_sigkill_shell", "sigkill.py", how="bash", returncode=128 + signal.SIGKILL),
    Run("torch_disk_full_checkpoint", "disk_full_save.py"),
    Run("torch_disk_full_metrics", "disk_full_save.py", ("--what", "metrics")),
    Run("torch_host_oom_alloc", "host_oom_alloc.py"),
    Run("torch_argparse_error", "argparse_error.py", ("--lr", "1e-4", "--batch_size", "64"), returncode=2),
    Run("torch_tqdm_glued", "tqdm_glued.py"),
    Run("torch_chained_cause", "chained_config.py", ("--mode", "cause")),
    Run("torch_chained_context", "chained_config.py", ("--mode", "context")),
    Run("torch_hang_queue", "hang_queue.py", returncode=-signal.SIGKILL, hang=True),
    Run("torch_hang_spin", "hang_spin.py", returncode=-signal.SIGKILL, hang=True),
    # ---- issue #10: formats, launchers, frameworks, and the same failure elsewhere ----
    Run("torch_shape_mismatch_elsewhere", "shape_mismatch.py", root="/scratch/u7/job-4471/src"),
    Run("torch_shape_mismatch_edited", "shape_mismatch.py", edit=("models/mlp.py", "# repaired import order\n\n")),
    Run("torch_gloo_timeout", "gloo_timeout.py", how="torchrun"),
    Run("torch_gloo_timeout_again", "gloo_timeout.py", ("--timeout", "2", "--stall", "6"), how="torchrun",
        root="/mnt/nfs/runs/exp12"),
    Run("torch_ddp_rank_sigkill", "ddp_rank_fail.py", ("--mode", "kill"), how="torchrun"),
    Run("torch_mp_spawn_kill", "mp_spawn_kill.py"),
    Run("torch_child_segfault", "child_segfault.py"),
    Run("torch_rich_traceback", "rich_traceback.py"),
    Run("torch_loguru_exception", "loguru_exception.py"),
    Run("torch_logging_prefixed", "logging_prefixed.py"),
    Run("torch_teardown_ignored", "teardown_ignored.py"),
    Run("torch_bare_error", "bare_error.py"),
    Run("torch_bare_error_other", "bare_error.py", ("wordpiece-x",)),
    Run("torch_loss_blowup", "loss_blowup.py", returncode=3),
    Run("torch_config_typo_method", "config_typo_method.py"),
    Run("lightning_misconfig", "lightning_misconfig.py"),
    Run("lightning_typo", "lightning_typo.py"),
    Run("torch_ddp_rank_fail_hostprefix", "ddp_rank_fail.py", how="torchrun",
        pipe="sed -u 's/^/trn-node-04: /'"),
    Run("torch_shape_mismatch_cri", "shape_mismatch.py", pipe=CRI_PREFIXER),
    Run("jax_host_oom", "jax_host_oom.py"),
    Run("jax_shape_error", "jax_shape_error.py"),
    Run("jax_debug_nans", "jax_debug_nans.py"),
    Run("hf_trainer_args", "hf_setup.py"),
    Run("hf_trainer_typo", "hf_trainer_typo.py"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(run: Run) -> list[str]:
    py = [sys.executable, run.program, *run.args]
    if run.how == "torchrun":
        py = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
              "--master-addr", "127.0.0.1", "--master-port", str(free_port()), run.program, *run.args]
    if run.pipe:
        return ["bash", "-o", "pipefail", "-c", " ".join(shlex.quote(w) for w in py) + " 2>&1 | " + run.pipe]
    if run.how in ("python", "torchrun"):
        return py
    if run.how == "bash":
        # `&& true` keeps bash from exec'ing python, so bash waits and reports the signal itself.
        return ["bash", "-c", " ".join(py) + " && true"]
    raise ValueError(run.how)


def job_env(run: Run) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TORCH", "OMP_"))}
    env.update({"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **run.env})
    return env


def prepare_workspace(root: Path) -> Path:
    """A fresh copy of the programs: the job's workspace."""
    ws = root / "ws"
    shutil.copytree(PROGRAMS, ws, ignore=shutil.ignore_patterns("__pycache__"))
    return ws


def run_program(run: Run, workspace: Path, timeout: float = 120) -> tuple[str, int]:
    """Run one (non-hang) program in ``workspace``; its combined output and return code."""
    proc = subprocess.run(command(run), cwd=workspace, env=job_env(run), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)
    return proc.stdout.decode("utf-8", "replace"), proc.returncode


def run_hang(run: Run, workspace: Path, settle: float = 2.0) -> tuple[str, str, str, int]:
    """Start a program that stalls; return (log before the dump, py-spy dump, faulthandler dump, rc)."""
    out_path = workspace / "job.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(command(run), cwd=workspace, env=job_env(run), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and b"step 3" not in out_path.read_bytes():
            time.sleep(0.2)
        time.sleep(settle)
        pyspy = subprocess.run(["py-spy", "dump", "--pid", str(proc.pid)], capture_output=True, timeout=30)
        before = len(out_path.read_bytes())
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    data = out_path.read_bytes()
    return (data[:before].decode("utf-8", "replace"), pyspy.stdout.decode("utf-8", "replace"),
            data[before:].decode("utf-8", "replace"), proc.returncode)


def relocate(text: str, workspace: Path, root: str = WORKSPACE) -> str:
    return text.replace(str(workspace.resolve()), root).replace(str(workspace), root)


def generate(run: Run) -> None:
    with tempfile.TemporaryDirectory(prefix="phoenix-corpus-") as tmp:
        ws = prepare_workspace(Path(tmp))
        if run.edit:
            target = ws / run.edit[0]
            target.write_text(run.edit[1] + target.read_text())
        if run.hang:
            log, pyspy, fh, rc = run_hang(run, ws)
            (LOGS / f"{run.name}.pyspy.stack").write_text(relocate(pyspy, ws))
            (LOGS / f"{run.name}.faulthandler.stack").write_text(relocate(fh, ws))
        else:
            log, rc = run_program(run, ws)
        if rc != run.returncode:
            raise SystemExit(f"{run.name}: exited {rc}, expected {run.returncode}:\n{log[-2000:]}")
        (LOGS / f"{run.name}.log").write_text(relocate(log, ws, run.root))
    print(f"{run.name}: ok (exit {rc})")


def main(names: list[str]) -> None:
    unknown = set(names) - {r.name for r in RUNS}
    if unknown:
        raise SystemExit(f"unknown runs: {', '.join(sorted(unknown))}")
    LOGS.mkdir(parents=True, exist_ok=True)
    for run in RUNS:
        if not names or run.name in names:
            generate(run)


if __name__ == "__main__":
    main(sys.argv[1:])
