"""Regenerate the second batch of real PyTorch / NumPy / plain-Python corpus logs (issue #10).

    python tests/data/make_torch_logs2.py            # every run
    python tests/data/make_torch_logs2.py NAME...    # only these (names from RUNS)
    PHOENIX_CORPUS_PYTHON=/path/to/python ...        # the interpreter the programs run with

The expectations are in ``logs/expected_torch2.yaml``. Works like ``make_torch_logs.py`` (whose
workspace, environment and relocation helpers it uses): every run copies ``torch_programs/`` into
a fresh temporary workspace, runs one program there as a job runs and captures stdout and stderr
through one pipe. What this one adds:

- launchers: plain ``python``; ``bash -c`` and ``sh -c`` (dash), so the shell reports a kill or a
  crash in its own words; ``torchrun`` with 1-4 gloo ranks and its options (``--tee``,
  ``--redirects``, ``--log-dir``, ``--role``: ``targs``), on a port another process holds
  (``busy_port``); the deprecated ``python -m torch.distributed.launch``;
- prefixers (``pipe``): a host prefix as pdsh/mpirun print it, srun ``--label``'s ``0: ``,
  Docker's RFC 3339 timestamps, Kubernetes' CRI format, a wrapper that logs every line through
  Python logging, moreutils' ``ts``;
- signals from outside (``signal_at``): once the output shows a line, the job's first process
  (python or the torchrun agent) gets SIGTERM or SIGINT, as a scheduler's preemption or a Ctrl-C;
- the workspace path is rewritten to ``/workspace`` or the run's ``root``, the virtualenv's prefix
  to ``/opt/venv`` and the host name to ``trn-node-01``; a log keeps its last 300 lines (a tail).

The exit status of every run is checked against RUNS.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_torch_logs import CRI_PREFIXER, LOGS, WORKSPACE, free_port, prepare_workspace, relocate  # noqa: E402

PYTHON = os.environ.get("PHOENIX_CORPUS_PYTHON", sys.executable)
TAIL_LINES = 300
SIGKILL, SIGSEGV, SIGTERM, SIGINT = signal.SIGKILL, signal.SIGSEGV, signal.SIGTERM, signal.SIGINT

HOST = "sed -u 's/^/trn-node-07: /'"
SRUN = "sed -u 's/^/0: /'"
DOCKER = (f"{PYTHON} -u -c \"import sys, datetime; [sys.stdout.write(datetime.datetime.now("
          "datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f000Z ') + ln) for ln in sys.stdin]\"")
CRI = CRI_PREFIXER.replace(sys.executable, PYTHON, 1)
# A wrapper that sends the job's output through Python logging, one record per line.
LOGGER = (f"{PYTHON} -u -c \"import logging, sys; logging.basicConfig(stream=sys.stdout, level=logging.INFO, "
          "format='%(asctime)s - %(name)s - %(levelname)s - %(message)s'); log = logging.getLogger('job'); "
          "[log.info(ln.rstrip(chr(10))) for ln in sys.stdin]\"")
# moreutils' ts: a syslog-style timestamp on every line.
TS = (f"{PYTHON} -u -c \"import sys, time; [sys.stdout.write(time.strftime('%b %d %H:%M:%S ') + ln) "
      "for ln in sys.stdin]\"")


@dataclass(frozen=True)
class Run:
    name: str
    program: str
    args: tuple[str, ...] = ()
    how: str = "python"          # python | bash | sh | torchrun | launch
    returncode: int = 1          # what the run must end with (negative: killed by that signal)
    env: dict[str, str] = field(default_factory=dict)
    root: str = WORKSPACE        # the path the temporary workspace is rewritten to in the log
    pipe: str = ""               # a shell filter every output line goes through (a launcher's prefixer)
    nproc: int = 2               # torchrun ranks
    targs: tuple[str, ...] = ()  # more torchrun options
    signal_at: tuple[str, int] | None = None  # (output text, signal): signal the job once it prints that
    edit: tuple[str, str] | None = None       # (file, text) inserted at the top of a program file first
    busy_port: bool = False      # torchrun's master port is already taken by another process
    omp: bool = True             # set OMP_NUM_THREADS=1 (without it torchrun prints its banner about it)


def bugs(name: str, bug: str, *args: str, **kw) -> Run:
    return Run(name, "train_bugs.py", ("--bug", bug, *args), **kw)


def ddp(name: str, mode: str, nproc: int, *args: str, how_: str = "torchrun", **kw) -> Run:
    return Run(name, "ddp_fail.py", ("--mode", mode, *args), how=how_, nproc=nproc, **kw)


def fmt(name: str, fmt_: str, *args: str, **kw) -> Run:
    return Run(name, "fmt_failures.py", ("--fmt", fmt_, *args), **kw)


RUNS: tuple[Run, ...] = (
    # ---- ordinary code bugs, each at its own place; some seen again through another launcher ----
    bugs("torch2_attr_cfg", "attr_cfg"),
    bugs("torch2_attr_cfg_b16", "attr_cfg", "--batch", "16", "--lr", "0.01", root="/scratch/alice/run3"),
    bugs("torch2_attr_args", "attr_args"),
    bugs("torch2_attr_args_host", "attr_args", "--epochs", "5", how="bash", pipe=HOST),
    bugs("torch2_argcount", "argcount"),
    bugs("torch2_argcount_warn", "argcount", "--warn", "--seed", "3"),
    bugs("torch2_dtype", "dtype"),
    bugs("torch2_dtype_cri", "dtype", "--hidden", "64", pipe=CRI),
    bugs("torch2_dtype_torchrun_tee", "dtype", how="torchrun", targs=("--tee", "3")),
    bugs("torch2_device", "device"),
    bugs("torch2_inplace", "inplace"),
    bugs("torch2_inplace_docker", "inplace", "--batch", "4", pipe=DOCKER),
    bugs("torch2_nograd", "nograd"),
    bugs("torch2_backward_twice", "twice"),
    bugs("torch2_view", "view"),
    bugs("torch2_view_srun", "view", "--hidden", "48", pipe=SRUN),
    bugs("torch2_einsum", "einsum"),
    bugs("torch2_matmul", "matmul"),
    bugs("torch2_matmul_h128", "matmul", "--hidden", "128", "--batch", "4"),
    bugs("torch2_matmul_torchrun", "matmul", how="torchrun"),
    bugs("torch2_recursion", "recursion"),
    bugs("torch2_assert", "assert"),
    bugs("torch2_assert_b32", "assert", "--batch", "32", "--fail-step", "5"),
    bugs("torch2_state_dict", "state_dict"),
    bugs("torch2_state_dict_h64", "state_dict", "--hidden", "64", root="/mnt/nfs/team/exp7"),
    bugs("torch2_weights_only", "weights_only"),
    bugs("torch2_weights_only_edited", "weights_only", edit=("train_bugs.py", "# resume support\n\n\n")),
    bugs("torch2_missing_tracker", "tracker"),
    bugs("torch2_missing_tracker_warn", "tracker", "--warn", root="/home/user/proj"),
    # ---- NumPy preprocessing ----
    Run("numpy_cast", "np_errors.py", ("--error", "cast")),
    Run("numpy_cast_rows64", "np_errors.py", ("--error", "cast", "--rows", "64", "--seed", "4"), root="/data/jobs/17"),
    Run("numpy_singular", "np_errors.py", ("--error", "singular")),
    Run("numpy_singular_b", "np_errors.py", ("--error", "singular", "--rows", "100", "--seed", "2"), how="bash"),
    Run("numpy_broadcast", "np_errors.py", ("--error", "broadcast")),
    Run("numpy_broadcast_rows8", "np_errors.py", ("--error", "broadcast", "--rows", "8"), pipe=SRUN),
    Run("numpy_alloc", "np_errors.py", ("--error", "alloc")),
    Run("numpy_alloc_rows3", "np_errors.py", ("--error", "alloc", "--rows", "3"), pipe=DOCKER),
    Run("numpy_missing", "np_errors.py", ("--error", "missing")),
    Run("numpy_missing_shard5", "np_errors.py", ("--error", "missing", "--shards", "5"), root="/scratch/bob/feat"),
    # ---- kills, crashes, children, signals ----
    Run("torch2_oom_kill_bash", "proc_failures.py", ("--mode", "oom_kill"), how="bash", returncode=137),
    Run("torch2_oom_kill_tqdm", "proc_failures.py", ("--mode", "oom_kill", "--tqdm"), how="bash", returncode=137),
    Run("torch2_oom_kill_python", "proc_failures.py", ("--mode", "oom_kill", "--seed", "5"), returncode=-SIGKILL),
    Run("torch2_segv_bash", "proc_failures.py", ("--mode", "segv"), how="bash", returncode=139),
    Run("torch2_segv_sh", "proc_failures.py", ("--mode", "segv", "--size", "64"), how="sh", returncode=139),
    Run("torch2_segv_faulthandler", "proc_failures.py", ("--mode", "segv"), returncode=-SIGSEGV,
        env={"PYTHONFAULTHANDLER": "1"}),
    Run("torch2_segv_torchrun", "proc_failures.py", ("--mode", "segv"), how="torchrun", nproc=1),
    Run("torch2_spawn_raise", "proc_failures.py", ("--mode", "spawn_raise")),
    Run("torch2_spawn_raise_4", "proc_failures.py", ("--mode", "spawn_raise", "--nprocs", "4", "--size", "16")),
    Run("torch2_spawn_segv", "proc_failures.py", ("--mode", "spawn_segv")),
    Run("torch2_subprocess_kill", "proc_failures.py", ("--mode", "sub_kill")),
    Run("torch2_pool_kill", "proc_failures.py", ("--mode", "pool_kill")),
    Run("torch2_sigterm", "proc_failures.py", ("--mode", "forever",), returncode=-SIGTERM,
        signal_at=("step 4", SIGTERM)),
    Run("torch2_sigint", "proc_failures.py", ("--mode", "forever",), returncode=-SIGINT, signal_at=("step 4", SIGINT)),
    Run("torch2_sigint_tqdm", "proc_failures.py", ("--mode", "forever", "--tqdm"), returncode=-SIGINT,
        signal_at=("train:", SIGINT)),
    Run("torch2_sigterm_torchrun", "proc_failures.py", ("--mode", "forever",), how="torchrun", returncode=1,
        signal_at=("step 4", SIGTERM)),
    # ---- torchrun, 2-4 gloo ranks: one rank fails, the others follow ----
    ddp("ddp_raise_3ranks", "raise", 3, "--fail-rank", "2"),
    ddp("ddp_raise_4ranks_tee", "raise", 4, targs=("--tee", "3")),
    ddp("ddp_raise_logdir_tee", "raise", 2, targs=("--log-dir", "logs", "--tee", "3")),
    ddp("ddp_raise_redirects", "raise", 2, targs=("--log-dir", "logs", "--redirects", "3")),
    ddp("ddp_raise_role", "raise", 2, "--rows", "16", targs=("--role", "trainer"), root="/mnt/nfs/runs/exp31"),
    ddp("ddp_raise_host", "raise", 3, "--fail-rank", "0", pipe=HOST),
    ddp("ddp_linger", "linger", 2, "--timeout", "2", "--linger", "6"),
    ddp("ddp_linger_3ranks", "linger", 3, "--fail-rank", "0", "--timeout", "2", "--linger", "6"),
    ddp("ddp_stall_3ranks", "stall", 3, "--timeout", "2", "--stall", "6"),
    ddp("ddp_stall_4ranks_tee", "stall", 4, "--fail-rank", "2", "--timeout", "2", "--stall", "6", targs=("--tee", "3")),
    ddp("ddp_kill_3ranks", "kill", 3),
    ddp("ddp_segv_3ranks", "segv", 3),
    ddp("ddp_segv_role", "segv", 2, "--fail-rank", "0", targs=("--role", "worker"), pipe=SRUN),
    ddp("ddp_host_oom", "oom", 2),
    ddp("ddp_host_oom_3ranks_tee", "oom", 3, "--fail-rank", "2", targs=("--tee", "3")),
    ddp("ddp_nan", "nan", 2),
    ddp("ddp_nan_4ranks", "nan", 4, "--fail-rank", "3", "--fail-step", "2"),
    # ---- DataLoader ----
    Run("loader_bus", "loader_fail.py", ("--mode", "bus")),
    Run("loader_bus_4w", "loader_fail.py", ("--mode", "bus", "--workers", "4", "--batch", "8", "--bad", "300")),
    Run("loader_segv", "loader_fail.py", ("--mode", "segv")),
    Run("loader_collate", "loader_fail.py", ("--mode", "collate")),
    Run("loader_collate_b8", "loader_fail.py", ("--mode", "collate", "--batch", "8", "--workers", "1"), pipe=CRI),
    Run("loader_missing", "loader_fail.py", ("--mode", "missing")),
    Run("loader_missing_w1", "loader_fail.py", ("--mode", "missing", "--workers", "1", "--bad", "300")),
    # ---- storage that fails under the write ----
    Run("save_enospc_np", "save_fail.py", ("--mode", "enospc_np")),
    Run("save_enospc_json", "save_fail.py", ("--mode", "enospc_json")),
    Run("save_eio", "save_fail.py", ("--mode", "eio")),
    Run("save_eio_other", "save_fail.py", ("--mode", "eio", "--hidden", "512"), root="/lustre/proj/ckpt-run"),
    Run("save_quota", "save_fail.py", ("--mode", "quota")),
    # ---- one bug, many formats ----
    fmt("fmt_plain", "plain"),
    fmt("fmt_logging", "logging"),
    fmt("fmt_json", "json"),
    fmt("fmt_reversed", "reversed"),
    fmt("fmt_teardown", "teardown"),
    fmt("fmt_warnings", "warnings", "--step", "5"),
    fmt("fmt_plain_docker", "plain", pipe=DOCKER),
    fmt("fmt_logging_cri", "logging", "--step", "7", pipe=CRI),
    fmt("fmt_plain_srun", "plain", pipe=SRUN),
    fmt("fmt_json_zerodiv", "json", "--bug", "zerodiv"),
    fmt("fmt_plain_zerodiv", "plain", "--bug", "zerodiv"),
    fmt("fmt_reversed_zerodiv", "reversed", "--bug", "zerodiv", "--step", "4"),
    fmt("fmt_teardown_zerodiv", "teardown", "--bug", "zerodiv", how="bash"),
    # ---- second batch: configuration, numerics, more launchers and prefixers ----
    Run("config_yaml", "launch_job.py", ("--mode", "yaml")),
    Run("config_yaml_logger", "launch_job.py", ("--mode", "yaml"), pipe=LOGGER),
    Run("config_missing_key", "launch_job.py", ("--mode", "missing_key")),
    Run("config_missing_key_ts", "launch_job.py", ("--mode", "missing_key"), pipe=TS, root="/home/user/exp"),
    Run("config_validate", "launch_job.py", ("--mode", "validate")),
    Run("config_validate_b", "launch_job.py", ("--mode", "validate", "--accum", "4", "--micro", "16"), how="bash"),
    Run("config_env", "launch_job.py", ("--mode", "env")),
    Run("config_env_srun", "launch_job.py", ("--mode", "env"), pipe=SRUN),
    Run("config_no_launcher", "launch_job.py", ("--mode", "no_launcher")),
    Run("config_no_launcher_ddp", "ddp_fail.py", ("--mode", "raise")),
    Run("config_missing_file", "launch_job.py", ("--mode", "missing_config")),
    Run("config_missing_file_b", "launch_job.py", ("--mode", "missing_config", "--exp", "exp_small"), pipe=LOGGER),
    Run("ddp_port_in_use", "ddp_fail.py", ("--mode", "raise"), how="torchrun", busy_port=True),
    Run("ddp_port_in_use_tee", "ddp_fail.py", ("--mode", "raise"), how="torchrun", nproc=3, targs=("--tee", "3"),
        busy_port=True),
    Run("nan_anomaly2", "numerics.py", ("--mode", "anomaly")),
    Run("nan_anomaly2_seed", "numerics.py", ("--mode", "anomaly", "--seed", "7", "--steps", "6"), pipe=TS),
    Run("nan_clip", "numerics.py", ("--mode", "clip")),
    Run("nan_clip_lr", "numerics.py", ("--mode", "clip", "--lr", "0.5", "--steps", "3"), how="torchrun", nproc=1),
    Run("nan_assert", "numerics.py", ("--mode", "assert")),
    Run("nan_assert_logger", "numerics.py", ("--mode", "assert", "--seed", "3"), pipe=LOGGER),
    Run("numpy_warnings_then_bug", "numerics.py", ("--mode", "noise")),
    Run("numpy_warnings_then_bug_b", "numerics.py", ("--mode", "noise", "--steps", "7"), pipe=DOCKER),
    bugs("torch2_matmul_launch", "matmul", how="launch", targs=("--use-env",)),
    # the old launcher passes --local-rank, which these scripts' argparse does not accept
    bugs("launch_local_rank_arg", "matmul", how="launch"),
    ddp("launch_local_rank_arg_ddp", "raise", 2, how_="launch"),
    bugs("torch2_view_logger", "view", pipe=LOGGER),
    bugs("torch2_einsum_ts", "einsum", pipe=TS),
    ddp("ddp_raise_launch", "raise", 2, how_="launch", targs=("--use-env",)),
    ddp("ddp_stall_logger", "stall", 2, "--timeout", "2", "--stall", "6", pipe=LOGGER),
    Run("loader_missing_logger", "loader_fail.py", ("--mode", "missing"), pipe=LOGGER),
    Run("loader_bus_ts", "loader_fail.py", ("--mode", "bus", "--workers", "3"), pipe=TS),
    Run("numpy_cast_logger", "np_errors.py", ("--error", "cast", "--shards", "9"), pipe=LOGGER),
    Run("save_eio_srun", "save_fail.py", ("--mode", "eio"), pipe=SRUN),
    Run("torch2_spawn_raise_logger", "proc_failures.py", ("--mode", "spawn_raise"), pipe=LOGGER),
    fmt("fmt_rich", "rich"),
    fmt("fmt_rich_zerodiv", "rich", "--bug", "zerodiv", "--step", "6"),
    fmt("fmt_loguru", "loguru"),
    fmt("fmt_loguru_zerodiv", "loguru", "--bug", "zerodiv", pipe=DOCKER),
    fmt("fmt_thread", "thread"),
    fmt("fmt_thread_zerodiv", "thread", "--bug", "zerodiv", "--step", "2"),
    Run("torch2_pool_raise", "proc_failures.py", ("--mode", "pool_raise")),
    Run("torch2_pool_raise_big", "proc_failures.py", ("--mode", "pool_raise", "--size", "400"), pipe=HOST),
    Run("torch2_futures_raise", "proc_failures.py", ("--mode", "futures_raise")),
    Run("torch2_abort", "proc_failures.py", ("--mode", "abort"), returncode=-signal.SIGABRT),
    Run("torch2_abort_bash", "proc_failures.py", ("--mode", "abort"), how="bash", returncode=128 + signal.SIGABRT),
    Run("loader_timeout", "loader_fail.py", ("--mode", "slow", "--timeout", "2")),
    Run("loader_timeout_b", "loader_fail.py", ("--mode", "slow", "--timeout", "3", "--workers", "3", "--bad", "40"),
        pipe=CRI),
    bugs("torch2_cuda_on_cpu", "cuda"),
    bugs("torch2_cuda_on_cpu_torchrun", "cuda", how="torchrun", omp=False),
    ddp("ddp_raise_omp_banner", "raise", 2, omp=False),
    ddp("ddp_raise_max_restarts", "raise", 2, targs=("--max-restarts", "1"), omp=False),
    ddp("ddp_stall_max_restarts", "stall", 2, "--timeout", "2", "--stall", "5", targs=("--max-restarts", "1")),
    ddp("ddp_raise_rank0_only", "raise", 2, targs=("--local-ranks-filter", "0")),
    ddp("ddp_barrier_timeout", "barrier", 2, "--timeout", "2", "--stall", "6"),
    ddp("ddp_barrier_timeout_3ranks", "barrier", 3, "--timeout", "2", "--stall", "6", targs=("--tee", "3")),
    ddp("ddp_late_join", "late", 2, "--timeout", "3", "--stall", "8"),
    ddp("ddp_late_join_host", "late", 2, "--timeout", "3", "--stall", "8", pipe=HOST),
    Run("nan_policy", "numerics.py", ("--mode", "policy")),
    Run("nan_policy_seed", "numerics.py", ("--mode", "policy", "--seed", "4", "--steps", "5"), pipe=CRI),
    Run("nan_sample", "numerics.py", ("--mode", "sample")),
    Run("nan_sample_torchrun", "numerics.py", ("--mode", "sample", "--seed", "2"), how="torchrun", nproc=2),
    Run("blowup_exit", "blowup.py", ("--end", "exit", "--lr", "0.8"), returncode=2),
    Run("blowup_exit_dict", "blowup.py", ("--end", "exit", "--lr", "0.9", "--style", "dict"), returncode=2),
    Run("blowup_exit_kv", "blowup.py", ("--end", "exit", "--lr", "0.8", "--style", "kv", "--seed", "1"), returncode=2,
        pipe=DOCKER),
    Run("blowup_raise", "blowup.py", ("--end", "raise", "--lr", "0.8")),
    Run("blowup_raise_kv", "blowup.py", ("--end", "raise", "--lr", "1.0", "--style", "kv"), pipe=HOST),
    Run("blowup_overflow", "blowup.py", ("--end", "overflow", "--lr", "0.8")),
    Run("blowup_overflow_dict", "blowup.py", ("--end", "overflow", "--lr", "1.0", "--style", "dict", "--seed", "2")),
)


def command(run: Run, port: int | None = None) -> list[str]:
    py = [PYTHON, run.program, *run.args]
    if run.how in ("torchrun", "launch"):
        # torch.distributed.launch: the deprecated launcher many scripts still use.
        module = "torch.distributed.run" if run.how == "torchrun" else "torch.distributed.launch"
        py = [PYTHON, "-m", module, "--nproc-per-node", str(run.nproc), "--master-addr",
              "127.0.0.1", "--master-port", str(port or free_port()), *run.targs, run.program, *run.args]
    line = " ".join(shlex.quote(w) for w in py)
    if run.pipe:
        shell = "bash -c " + shlex.quote(line + " && true") if run.how == "bash" else line
        return ["bash", "-o", "pipefail", "-c", shell + " 2>&1 | " + run.pipe]
    if run.how in ("python", "torchrun", "launch"):
        return py
    if run.how in ("bash", "sh"):
        # `&& true` keeps the shell from exec'ing python, so it waits and reports the signal itself.
        return [run.how, "-c", line + " && true"]
    raise ValueError(run.how)


def job_env(run: Run) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TORCH", "OMP_"))}
    env.update({"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "100", **run.env})
    if not run.omp:
        del env["OMP_NUM_THREADS"]
    return env


def _default_signals() -> None:
    """A job gets the default SIGINT disposition even when this script runs in the background
    (where the shell sets it to ignored, and Python would then never raise KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_job(run: Run, workspace: Path, timeout: float = 180) -> tuple[str, int]:
    """Run one program in ``workspace`` (signalling it when the run says so); output and return code."""
    out_path = workspace.parent / "job.out"
    squatter = socket.socket()  # holds the port when the run needs it taken
    if run.busy_port:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
    port = squatter.getsockname()[1] if run.busy_port else None
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(command(run, port), cwd=workspace, env=job_env(run), stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=_default_signals)
    try:
        if run.signal_at:
            text, sig = run.signal_at
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and text.encode() not in out_path.read_bytes() and proc.poll() is None:
                time.sleep(0.2)
            time.sleep(0.5)
            proc.send_signal(sig)
        proc.wait(timeout=timeout)
    finally:
        squatter.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out_path.read_bytes().decode("utf-8", "replace"), proc.returncode


def clean(text: str, workspace: Path, root: str) -> str:
    # The venv first, then the interpreter it was made from (its standard library: threading.py).
    text = relocate(text, workspace, root).replace(sys.prefix, "/opt/venv").replace(sys.base_prefix, "/usr/local")
    if PYTHON != sys.executable:
        text = text.replace(str(Path(PYTHON).parent.parent), "/opt/venv")
    host = socket.gethostname()
    if len(host) > 2:
        text = text.replace(host, "trn-node-01")
    lines = text.splitlines(keepends=True)
    return "".join(lines[-TAIL_LINES:])


def generate(run: Run) -> None:
    with tempfile.TemporaryDirectory(prefix="phoenix-corpus-") as tmp:
        ws = prepare_workspace(Path(tmp))
        if run.edit:
            target = ws / run.edit[0]
            target.write_text(run.edit[1] + target.read_text())
        log, rc = run_job(run, ws)
        if rc != run.returncode:
            raise SystemExit(f"{run.name}: exited {rc}, expected {run.returncode}:\n{log[-3000:]}")
        (LOGS / f"{run.name}.log").write_text(clean(log, ws, run.root))
    print(f"{run.name}: ok (exit {rc})", flush=True)


def main(names: list[str]) -> None:
    unknown = set(names) - {r.name for r in RUNS}
    if unknown:
        raise SystemExit(f"unknown runs: {', '.join(sorted(unknown))}")
    failed = []
    for run in RUNS:
        if not names or run.name in names:
            try:
                generate(run)
            except (SystemExit, subprocess.TimeoutExpired) as exc:
                print(exc, file=sys.stderr, flush=True)
                failed.append(run.name)
    if failed:
        raise SystemExit(f"failed: {' '.join(failed)}")


if __name__ == "__main__":
    main(sys.argv[1:])
