"""Regenerate the corpus logs that come from really running programs of frameworks other than plain PyTorch.

    python tests/data/make_framework_logs.py            # every run
    python tests/data/make_framework_logs.py NAME...    # only these (names from RUNS)
    python tests/data/make_framework_logs.py --list     # the runs, one a line

The programs live in ``tests/data/framework_programs/<framework>/``: PyTorch Lightning, Hugging Face
transformers and accelerate, JAX, Flax/Optax, Keras 3, TensorFlow (CPU), scikit-learn, XGBoost,
DeepSpeed, Hydra/OmegaConf, and rich/loguru/structlog printing the tracebacks. Runs marked
``extra`` need packages beyond the project's own environment: they run with the Python named by
``PHOENIX_CORPUS_PYTHON`` (a venv made by
``python3 -m venv V && V/bin/pip install keras tensorflow-cpu scikit-learn xgboost hydra-core structlog
flax optax && DS_BUILD_OPS=0 V/bin/pip install deepspeed``; a ``.pth`` file in it may point at the
project's environment for torch and jax). The others run with this interpreter (torch 2.13 CPU,
lightning 2.6, transformers 5, accelerate 1.16, jax 0.10).

Each run copies one framework's folder into a fresh temporary workspace, runs a program there the
way a job runs (plain ``python``, ``accelerate launch --multi_gpu --num_processes 2`` on CPU
with gloo, ``torchrun``, ``deepspeed --num_gpus 2`` with its CPU accelerator, or through a prefixer
``pipe``), with stdout and stderr in one pipe as a supervisor captures them, and
writes ``tests/data/logs/<name>.log``. So that committed logs stay comparable between
regenerations and carry nothing of this machine, the temporary workspace is rewritten to the run's
``root`` (default ``/workspace``: other roots are the same job seen from elsewhere), installed
packages to ``site`` (``/usr/local/lib/python3.11/site-packages`` by default), the interpreter's
own library to ``/usr/local/lib/python3.11``, its directory to ``/usr/local/bin``, and the home
directory and host name to fixed ones.
Only the last ``TAIL`` lines are kept (what a log tail holds). Nothing else is edited. The exit
status of every run is checked against RUNS.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "framework_programs"
LOGS = HERE / "logs"
WORKSPACE = "/workspace"
SITE = "/usr/local/lib/python3.11/site-packages"
STDLIB = "/usr/local/lib/python3.11"
TAIL = 300


@dataclass(frozen=True)
class Run:
    name: str
    program: str                 # <framework>/<file>: the framework's folder becomes the workspace
    args: tuple[str, ...] = ()
    how: str = "python"          # python | bash (reports a signal) | accelerate | torchrun | deepspeed
    returncode: int = 1
    env: dict[str, str] = field(default_factory=dict)
    extra: bool = False          # needs PHOENIX_CORPUS_PYTHON (packages outside the project's venv)
    root: str = WORKSPACE
    site: str = SITE
    pipe: str = ""               # a shell filter every output line goes through (a launcher's prefixer)
    edit: tuple[str, str] | None = None  # (file, text): text inserted at the top of a program file first
    launcher: tuple[str, ...] = ("--mixed_precision", "no")  # accelerate launch's own options


HOST_PREFIX = "sed -u 's/^/{}: /'".format
# Kubernetes' CRI log format: an RFC 3339 timestamp, the stream and a "full line" tag on every line.
CRI = (f"{sys.executable} -u -c \"import sys, datetime; [sys.stdout.write(datetime.datetime.now("
       "datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ') + ' stderr F ' + ln) for ln in sys.stdin]\"")
CONDA = "/opt/conda/lib/python3.11/site-packages"
SRUN_LABEL = "sed -u 's/^/1: /'"  # srun --label: the task number before every line
DOCKER_TS = (f"{sys.executable} -u -c \"import sys, datetime; [sys.stdout.write(datetime.datetime.now("
             "datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ') + ' ' + ln) for ln in sys.stdin]\"")


RUNS: tuple[Run, ...] = (
    # ---- PyTorch Lightning 2.6 --------------------------------------------------------------
    Run("lightning_no_optimizer", "lightning/fit_fail.py", ("--kind", "no_optimizer")),
    Run("lightning_no_optimizer_conda", "lightning/fit_fail.py", ("--kind", "no_optimizer", "--epochs", "5"),
        root="/scratch/job-8812/src", site=CONDA),
    Run("lightning_dict_step", "lightning/fit_fail.py", ("--kind", "dict_step")),
    Run("lightning_callback_raise", "lightning/fit_fail.py", ("--kind", "callback")),
    Run("lightning_callback_raise_host", "lightning/fit_fail.py", ("--kind", "callback", "--epochs", "4"),
        pipe=HOST_PREFIX("gpu-node-17")),
    Run("lightning_monitor_missing", "lightning/fit_fail.py", ("--kind", "monitor")),
    Run("lightning_resume_missing", "lightning/fit_fail.py", ("--kind", "resume")),
    Run("lightning_resume_missing_nfs", "lightning/fit_fail.py",
        ("--kind", "resume", "--epochs", "6"), root="/mnt/nfs/code"),
    Run("lightning_datamodule_key", "lightning/fit_fail.py", ("--kind", "datamodule")),
    Run("lightning_datamodule_key_cri", "lightning/fit_fail.py", ("--kind", "datamodule", "--epochs", "3"), pipe=CRI),
    Run("lightning_both_loaders", "lightning/fit_fail.py", ("--kind", "both_loaders")),
    Run("lightning_shape", "lightning/step_fail.py", ("--kind", "shape")),
    Run("lightning_shape_b32", "lightning/step_fail.py", ("--kind", "shape", "--batch", "32", "--fail-step", "1"),
        root="/home/user/exp/lit-7"),
    Run("lightning_shape_rich", "lightning/step_fail.py", ("--kind", "shape", "--rich"),
        env={"FORCE_COLOR": "1", "TERM": "xterm-256color"}),
    Run("lightning_ddp_rank1_shape", "lightning/step_fail.py", ("--kind", "shape", "--devices", "2", "--fail-rank", "1")),
    Run("lightning_ddp_rank1_shape_b8", "lightning/step_fail.py",
        ("--kind", "shape", "--devices", "2", "--fail-rank", "1", "--batch", "8", "--fail-step", "3"),
        root="/scratch/u3/lit-ddp"),
    Run("lightning_nan_anomaly", "lightning/step_fail.py", ("--kind", "nan")),
    Run("lightning_nan_anomaly_rich", "lightning/step_fail.py", ("--kind", "nan", "--rich", "--batch", "8"),
        env={"FORCE_COLOR": "1", "TERM": "xterm-256color"}),
    # ---- Hugging Face transformers 5 ---------------------------------------------------------
    Run("hf_raw_columns", "hf/trainer_fail.py", ("--kind", "raw_columns")),
    Run("hf_raw_columns_n64", "hf/trainer_fail.py", ("--kind", "raw_columns", "--n", "64", "--seed", "3"),
        root="/data/jobs/ft-311", site=CONDA),
    Run("hf_labels_out_of_range", "hf/trainer_fail.py", ("--kind", "labels")),
    Run("hf_labels_out_of_range_3", "hf/trainer_fail.py", ("--kind", "labels", "--num-labels", "3", "--seed", "5"),
        pipe=HOST_PREFIX("worker-3")),
    Run("hf_tokenizer_no_pad", "hf/trainer_fail.py", ("--kind", "no_pad")),
    Run("hf_tokenizer_no_pad_n48", "hf/trainer_fail.py", ("--kind", "no_pad", "--n", "48"), root="/scratch/ft"),
    Run("hf_grad_nan", "hf/trainer_fail.py", ("--kind", "nan")),
    Run("hf_grad_nan_seed7", "hf/trainer_fail.py", ("--kind", "nan", "--seed", "7", "--n", "40"), pipe=CRI),
    Run("hf_args_scheduler", "hf/setup_fail.py", ("--kind", "args", "--scheduler", "cosine_warmup")),
    Run("hf_args_scheduler_again", "hf/setup_fail.py", ("--kind", "args", "--scheduler", "cosine_warmup"),
        root="/mnt/shared/alice/ft", site=CONDA),
    Run("hf_args_warmup", "hf/setup_fail.py", ("--kind", "args", "--warmup", "-5")),
    Run("hf_args_old_key", "hf/setup_fail.py", ("--kind", "args", "--old-keys")),
    Run("hf_size_mismatch", "hf/setup_fail.py", ("--kind", "size_mismatch", "--hidden", "64")),
    Run("hf_size_mismatch_vocab", "hf/setup_fail.py", ("--kind", "size_mismatch", "--vocab", "30")),
    Run("hf_size_mismatch_h48", "hf/setup_fail.py", ("--kind", "size_mismatch", "--hidden", "48"),
        root="/scratch/u9/ft-2"),
    Run("hf_hub_offline", "hf/setup_fail.py", ("--kind", "hub",)),
    Run("hf_hub_offline_again", "hf/setup_fail.py", ("--kind", "hub",), root="/srv/jobs/embed", site=CONDA),
    Run("hf_hub_refused", "hf/setup_fail.py", ("--kind", "hub", "--model", "org/encoder-small"),
        env={"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_ETAG_TIMEOUT": "2",
             "HF_HUB_DOWNLOAD_TIMEOUT": "2"}),
    # ---- Hugging Face accelerate 1.16: accelerate launch --multi_gpu --num_processes 2, on CPU ----
    Run("accelerate_rank_raise", "accelerate/train.py", ("--kind", "rank_raise"), how="accelerate"),
    Run("accelerate_rank_raise_b16", "accelerate/train.py", ("--kind", "rank_raise", "--batch", "16"),
        how="accelerate", root="/scratch/u2/acc-run"),
    Run("accelerate_rank0_raise", "accelerate/train.py", ("--kind", "rank_raise", "--bad-rank", "0"), how="accelerate",
        pipe=HOST_PREFIX("gpu-a-03")),
    Run("accelerate_missing_shard", "accelerate/train.py", ("--kind", "missing_shard"), how="accelerate"),
    Run("accelerate_missing_shard_nfs", "accelerate/train.py",
        ("--kind", "missing_shard", "--shard", "/mnt/nfs/datasets/v3/train-0003.csv"), how="accelerate",
        root="/mnt/nfs/code/acc", site=CONDA),
    Run("accelerate_rank_kill", "accelerate/train.py", ("--kind", "rank_kill"), how="accelerate"),
    Run("accelerate_nan", "accelerate/train.py", ("--kind", "nan"), how="accelerate"),
    Run("accelerate_nan_b4", "accelerate/train.py", ("--kind", "nan", "--batch", "4"), how="accelerate", pipe=CRI),
    Run("accelerate_stall_timeout", "accelerate/train.py", ("--kind", "stall"), how="accelerate"),
    Run("accelerate_bad_precision", "accelerate/train.py", ("--kind", "rank_raise"), how="accelerate",
        launcher=("--mixed_precision", "fp17"), returncode=2),
    Run("accelerate_fp8_cpu", "accelerate/train.py", ("--kind", "rank_raise", "--precision", "fp8"),
        how="accelerate"),
    # ---- JAX 0.10 on CPU ---------------------------------------------------------------------
    Run("jaxr_shape_matmul", "jax/train.py", ("--kind", "shape_matmul")),
    Run("jaxr_shape_matmul_w12", "jax/train.py", ("--kind", "shape_matmul", "--width", "12", "--batch", "64"),
        root="/scratch/jx/run-2", site=CONDA),
    Run("jaxr_shape_bias", "jax/train.py", ("--kind", "shape_bias")),
    Run("jaxr_tracer_leak", "jax/train.py", ("--kind", "tracer_leak")),
    Run("jaxr_tracer_leak_again", "jax/train.py", ("--kind", "tracer_leak", "--seed", "4"), pipe=HOST_PREFIX("tpu-vm-2")),
    Run("jaxr_concretization", "jax/train.py", ("--kind", "concretization")),
    Run("jaxr_concretization_h32", "jax/train.py", ("--kind", "concretization", "--hidden", "32"), root="/home/user/jx"),
    Run("jaxr_traced_shape", "jax/train.py", ("--kind", "traced_shape")),
    Run("jaxr_debug_nans", "jax/train.py", ("--kind", "debug_nans")),
    Run("jaxr_debug_nans_b128", "jax/train.py", ("--kind", "debug_nans", "--batch", "128", "--seed", "2"), pipe=CRI),
    Run("jaxr_host_oom", "jax/train.py", ("--kind", "host_oom")),
    Run("jaxr_host_oom_b64", "jax/train.py", ("--kind", "host_oom", "--batch", "64"), root="/mnt/jobs/jx-oom"),
    Run("jaxr_pytree_key", "jax/train.py", ("--kind", "pytree_key")),
    Run("jaxr_no_filter", "jax/train.py", ("--kind", "shape_matmul"), env={"JAX_TRACEBACK_FILTERING": "off"}),
    # ---- Flax linen + Optax ------------------------------------------------------------------
    Run("flax_apply_width", "flax/train.py", ("--kind", "apply_width"), extra=True),
    Run("flax_apply_width_h64", "flax/train.py", ("--kind", "apply_width", "--hidden", "64", "--width", "6"),
        extra=True, root="/scratch/fx"),
    Run("flax_opt_tree", "flax/train.py", ("--kind", "opt_tree"), extra=True),
    Run("flax_restore_missing", "flax/train.py", ("--kind", "restore"), extra=True),
    Run("flax_restore_missing_other", "flax/train.py", ("--kind", "restore", "--hidden", "32"),
        extra=True, root="/mnt/code/fx", site=CONDA),
    # ---- Keras 3 (jax and torch backends) ----------------------------------------------------
    Run("keras_input_width", "keras/fit.py", ("--kind", "width"), extra=True),
    Run("keras_input_width_torch", "keras/fit.py", ("--kind", "width", "--width", "14"), extra=True,
        env={"KERAS_BACKEND": "torch"}, root="/scratch/kt"),
    Run("keras_optimizer_name", "keras/fit.py", ("--kind", "optimizer", "--optimizer", "adamw8bit"), extra=True),
    Run("keras_weights_missing", "keras/fit.py", ("--kind", "weights"), extra=True),
    Run("keras_weights_missing_other", "keras/fit.py", ("--kind", "weights", "--width", "12"),
        extra=True, root="/mnt/code/k7", site=CONDA),
    Run("keras_labels_range", "keras/fit.py", ("--kind", "labels"), extra=True, env={"KERAS_BACKEND": "torch"}),
    Run("keras_nan_terminate", "keras/fit.py", ("--kind", "nan"), extra=True),
    Run("keras_nan_terminate_torch", "keras/fit.py", ("--kind", "nan", "--n", "48"), extra=True,
        env={"KERAS_BACKEND": "torch"}, pipe=HOST_PREFIX("node-k2")),
    # ---- TensorFlow 2.21 (CPU) ---------------------------------------------------------------
    Run("tf_host_oom", "tf/train.py", ("--kind", "oom"), extra=True),
    Run("tf_host_oom_wide", "tf/train.py", ("--kind", "oom", "--dim", str(1 << 19)), extra=True, root="/scratch/tfj"),
    Run("tf_matmul_shape", "tf/train.py", ("--kind", "shape"), extra=True),
    Run("tf_matmul_shape_b64", "tf/train.py", ("--kind", "shape", "--batch", "64"), extra=True, pipe=CRI),
    Run("tf_check_numerics", "tf/train.py", ("--kind", "nan"), extra=True),
    Run("tf_check_numerics_b8", "tf/train.py", ("--kind", "nan", "--batch", "8"), extra=True, root="/home/user/tf2",
        site=CONDA),
    Run("tf_restore_missing", "tf/train.py", ("--kind", "restore"), extra=True),
    # ---- scikit-learn 1.9 and XGBoost 3.2 ----------------------------------------------------
    Run("sklearn_not_installed", "sklearn/fit.py", ("--kind", "param")),  # this interpreter has no sklearn
    Run("sklearn_bad_param", "sklearn/fit.py", ("--kind", "param", "--C", "-1"), extra=True),
    Run("sklearn_bad_param_again", "sklearn/fit.py", ("--kind", "param", "--C", "-1", "--n", "300"), extra=True,
        root="/srv/ml/churn", site=CONDA),
    Run("sklearn_lengths", "sklearn/fit.py", ("--kind", "lengths"), extra=True),
    Run("sklearn_lengths_n500", "sklearn/fit.py", ("--kind", "lengths", "--n", "500", "--seed", "3"), extra=True,
        pipe=HOST_PREFIX("batch-07")),
    Run("sklearn_nan_features", "sklearn/fit.py", ("--kind", "nan_features"), extra=True),
    Run("xgboost_objective", "sklearn/fit.py", ("--kind", "objective", "--objective", "multi:softmaxx"), extra=True),
    Run("xgboost_objective_again", "sklearn/fit.py", ("--kind", "objective", "--objective", "multi:softmaxx",
                                                      "--n", "400"), extra=True, root="/scratch/xgb"),
    Run("xgboost_labels", "sklearn/fit.py", ("--kind", "labels"), extra=True),
    Run("xgboost_labels_w9", "sklearn/fit.py", ("--kind", "labels", "--width", "9", "--seed", "5"), extra=True,
        root="/data/xgb-2", site=CONDA),
    Run("xgboost_model_missing", "sklearn/fit.py", ("--kind", "model_file"), extra=True),
    # ---- Hydra 1.3 / OmegaConf 2.3 -----------------------------------------------------------
    Run("hydra_missing_key", "hydra/app.py", extra=True),
    Run("hydra_missing_key_full", "hydra/app.py", ("train.epochs=5",), extra=True, env={"HYDRA_FULL_ERROR": "1"},
        root="/scratch/hy/run-3"),
    Run("hydra_override_typo", "hydra/app.py", ("optim.lrr=0.01",), extra=True),
    Run("hydra_override_typo_again", "hydra/app.py", ("optim.lrr=0.5",), extra=True, root="/home/user/hy",
        site=CONDA),
    Run("hydra_group_option", "hydra/app.py", ("optim=sgd",), extra=True),
    Run("hydra_warmup_key", "hydra/app.py", ("+mode=warmup",), extra=True),
    Run("hydra_mandatory", "hydra/app.py", ("model.hidden=???",), extra=True),
    Run("hydra_task_bug", "hydra/app.py", ("+mode=layers",), extra=True),
    Run("hydra_task_bug_full", "hydra/app.py", ("+mode=layers", "model.layers=4"), extra=True,
        env={"HYDRA_FULL_ERROR": "1"}),
    # ---- DeepSpeed 0.19 (CPU accelerator, gloo) ----------------------------------------------
    Run("deepspeed_batch_assert", "deepspeed/train.py", ("--kind", "ok", "--train-batch", "48"), how="torchrun", extra=True),
    Run("deepspeed_batch_assert_64", "deepspeed/train.py", ("--kind", "ok", "--train-batch", "64", "--micro", "4"),
        how="torchrun", extra=True, root="/scratch/ds/run-9"),
    Run("deepspeed_zero_stage", "deepspeed/train.py", ("--kind", "ok", "--train-batch", "32", "--stage", "4"),
        how="torchrun", extra=True),
    Run("deepspeed_rank_shape", "deepspeed/train.py", ("--kind", "rank_shape", "--train-batch", "32"),
        how="torchrun", extra=True),
    Run("deepspeed_rank_shape_w12", "deepspeed/train.py", ("--kind", "rank_shape", "--train-batch", "32", "--width", "12"),
        how="torchrun", extra=True, pipe=HOST_PREFIX("ds-node-1")),
    Run("deepspeed_launcher_batch_assert", "deepspeed/train.py", ("--kind", "ok", "--train-batch", "40"),
        how="deepspeed", extra=True),
    Run("deepspeed_launcher_rank_shape", "deepspeed/train.py", ("--kind", "rank_shape", "--train-batch", "32"),
        how="deepspeed", extra=True, root="/scratch/ds/run-11"),
    Run("deepspeed_fp16_cpu", "deepspeed/train.py", ("--kind", "fp16"), how="deepspeed", extra=True),
    Run("deepspeed_fp16_cpu_torchrun", "deepspeed/train.py", ("--kind", "fp16", "--width", "16"), how="torchrun",
        extra=True, root="/scratch/ds/run-12"),
    Run("deepspeed_launcher_rank_kill", "deepspeed/train.py", ("--kind", "rank_kill"), how="deepspeed", extra=True,
        returncode=247),
    # ---- the same failures after a repair inserted lines above, or through other prefixers ----
    Run("jaxr_shape_matmul_edited", "jax/train.py", ("--kind", "shape_matmul"),
        edit=("train.py", "# jax.config.update('jax_enable_x64', True)\n\n")),
    Run("lightning_callback_raise_edited", "lightning/fit_fail.py", ("--kind", "callback"),
        edit=("fit_fail.py", "import os  # repaired: needed by the logger setup\n\n\n")),
    Run("hf_labels_out_of_range_srun", "hf/trainer_fail.py", ("--kind", "labels", "--seed", "2"), pipe=SRUN_LABEL),
    Run("xgboost_objective_docker", "sklearn/fit.py", ("--kind", "objective", "--objective", "multi:softmaxx"),
        extra=True, pipe=DOCKER_TS),
    Run("tf_check_numerics_srun", "tf/train.py", ("--kind", "nan", "--batch", "32"), extra=True, pipe=SRUN_LABEL),
    Run("hydra_missing_key_docker", "hydra/app.py", ("train.batch_size=64",), extra=True, pipe=DOCKER_TS),
    Run("hf_killed_mid_epoch", "hf/trainer_fail.py", ("--kind", "killed"), how="bash", returncode=137),
    Run("hf_killed_mid_epoch_n64", "hf/trainer_fail.py", ("--kind", "killed", "--n", "64"), how="bash",
        returncode=137, root="/scratch/ft-k"),
    Run("hf_local_dir_empty", "hf/setup_fail.py", ("--kind", "local_dir")),
    Run("hf_local_dir_empty_again", "hf/setup_fail.py", ("--kind", "local_dir"), root="/scratch/u4/ft-9", site=CONDA),
    Run("lightning_precision", "lightning/fit_fail.py", ("--kind", "precision")),
    Run("hf_labels_out_of_range_accelerate", "hf/trainer_fail.py", ("--kind", "labels", "--seed", "1"), how="accelerate"),
    Run("hf_raw_columns_accelerate", "hf/trainer_fail.py", ("--kind", "raw_columns"), how="accelerate",
        root="/scratch/ft-ddp"),
    Run("loguru_jax_shape_matmul", "jax/logged.py", ("--printer", "loguru", "--kind", "shape_matmul")),
    Run("rich_jax_shape_matmul", "jax/logged.py", ("--printer", "rich", "--kind", "shape_matmul", "--batch", "16")),
    Run("structlog_jax_tracer_leak", "jax/logged.py", ("--printer", "structlog", "--kind", "tracer_leak"), extra=True),
    # ---- the same failures once more, from elsewhere: a second of each kind ------------------
    Run("hydra_group_option_again", "hydra/app.py", ("optim=sgd", "train.epochs=9"), extra=True, root="/scratch/hy/r4"),
    Run("hydra_mandatory_again", "hydra/app.py", ("model.hidden=???",), extra=True, pipe=HOST_PREFIX("cpu-node-5")),
    Run("hydra_warmup_key_again", "hydra/app.py", ("+mode=warmup", "train.epochs=7"), extra=True, pipe=DOCKER_TS),
    Run("jaxr_shape_bias_h24", "jax/train.py", ("--kind", "shape_bias", "--hidden", "24", "--batch", "48"),
        root="/scratch/jx/run-5"),
    Run("jaxr_traced_shape_b20", "jax/train.py", ("--kind", "traced_shape", "--batch", "20"), pipe=SRUN_LABEL),
    Run("jaxr_pytree_key_again", "jax/train.py", ("--kind", "pytree_key", "--seed", "8"), root="/home/user/jx",
        site=CONDA),
    Run("xgboost_model_missing_again", "sklearn/fit.py", ("--kind", "model_file", "--n", "50"), extra=True,
        root="/srv/ml/churn"),
    Run("sklearn_nan_features_n300", "sklearn/fit.py", ("--kind", "nan_features", "--n", "300", "--seed", "4"),
        extra=True, pipe=CRI),
    Run("flax_opt_tree_h32", "flax/train.py", ("--kind", "opt_tree", "--hidden", "32"), extra=True, root="/scratch/fx"),
    Run("keras_optimizer_name_torch", "keras/fit.py", ("--kind", "optimizer", "--optimizer", "adamw8bit"), extra=True,
        env={"KERAS_BACKEND": "torch"}, root="/scratch/kt"),
    Run("tf_restore_missing_again", "tf/train.py", ("--kind", "restore", "--batch", "4"), extra=True,
        pipe=HOST_PREFIX("tf-worker-1")),
    Run("accelerate_stall_timeout_again", "accelerate/train.py", ("--kind", "stall", "--batch", "4"), how="accelerate",
        root="/mnt/nfs/code/acc"),
    # ---- the same fits reported through a logger: structlog, loguru, rich --------------------
    Run("structlog_sklearn_lengths", "sklearn/logged.py", ("--printer", "structlog"), extra=True),
    Run("structlog_plain_sklearn_lengths", "sklearn/logged.py", ("--printer", "structlog_plain", "--n", "200"),
        extra=True, root="/srv/ml/churn"),
    Run("loguru_sklearn_lengths", "sklearn/logged.py", ("--printer", "loguru"), extra=True),
    Run("rich_sklearn_lengths", "sklearn/logged.py", ("--printer", "rich", "--n", "90"), extra=True),
    Run("structlog_xgboost_labels", "sklearn/logged.py", ("--printer", "structlog", "--kind", "labels"), extra=True),
    Run("loguru_xgboost_labels", "sklearn/logged.py", ("--printer", "loguru", "--kind", "labels"), extra=True,
        pipe=HOST_PREFIX("batch-02")),
)


def extra_python() -> str:
    py = os.environ.get("PHOENIX_CORPUS_PYTHON")
    if not py:
        raise SystemExit("this run needs PHOENIX_CORPUS_PYTHON: a Python with keras, tensorflow-cpu, scikit-learn, "
                         "xgboost, hydra-core, structlog, flax, optax, deepspeed (see this module's docstring)")
    return py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(run: Run) -> list[str]:
    python = extra_python() if run.extra else sys.executable
    program = Path(run.program).name
    if run.how in ("python", "bash"):
        cmd = [python, program, *run.args]
    elif run.how == "accelerate":
        # `--cpu` would run one process (accelerate's simple launcher); `--multi_gpu` on a machine without
        # GPUs starts torchrun, and the program's Accelerator(cpu=True) joins a gloo group.
        cmd = [python, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--dynamo_backend", "no", "--main_process_port", str(free_port()), *run.launcher, program, *run.args]
    elif run.how == "deepspeed":  # DeepSpeed's own launcher, next to the interpreter
        cmd = [str(Path(python).parent / "deepspeed"), "--num_gpus", "2", "--master_port", str(free_port()),
               program, *run.args]
    elif run.how == "torchrun":
        cmd = [python, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
               "--master-port", str(free_port()), program, *run.args]
    else:
        raise ValueError(run.how)
    if run.pipe:
        return ["bash", "-o", "pipefail", "-c", " ".join(shlex.quote(w) for w in cmd) + " 2>&1 | " + run.pipe]
    if run.how == "bash":
        # `&& true` keeps bash from exec'ing python, so bash waits and reports the signal itself.
        return ["bash", "-c", " ".join(shlex.quote(w) for w in cmd) + " && true"]
    return cmd


def job_env(run: Run, home: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "SSL_CERT_FILE", "PIP_")
    env = {k: v for k, v in os.environ.items() if k.startswith(keep)}
    env.update({"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "HOME": str(home), "HF_HUB_OFFLINE": "1",
                "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false", "TF_CPP_MIN_LOG_LEVEL": "1",
                "XLA_FLAGS": "--xla_force_host_platform_device_count=1", "COLUMNS": "100", "TERM": "dumb",
                "JAX_PLATFORMS": "cpu", "KERAS_BACKEND": "jax", "CUDA_VISIBLE_DEVICES": "", **run.env})
    return env


def site_dirs(python: str) -> list[str]:
    out = subprocess.run([python, "-c", "import site, sys; print('\\n'.join(site.getsitepackages() + sys.path))"],
                         capture_output=True, text=True, check=True).stdout.split()
    return sorted({p for p in out if p.endswith("site-packages")}, key=len, reverse=True)


def relocate(text: str, run: Run, workspace: Path, home: Path) -> str:
    """This machine's paths and names replaced by fixed ones (see the module docstring)."""
    pairs = [(str(workspace.resolve()), run.root), (str(workspace), run.root)]
    for python in {sys.executable, *([extra_python()] if run.extra else [])}:
        pairs += [(d, run.site) for d in site_dirs(python)] + [(str(Path(python).parent), "/usr/local/bin")]
    pairs += [(sysconfig.get_paths()["stdlib"], STDLIB), (str(home), "/home/user"),
              (str(Path.home()), "/home/user"), (socket.gethostname(), "trainer-0")]
    for old, new in sorted(pairs, key=lambda p: len(p[0]), reverse=True):
        if old and len(old) > 2:
            text = text.replace(old, new)
    lines = text.splitlines(keepends=True)
    return "".join(lines[-TAIL:])


def generate(run: Run) -> bool:
    framework = Path(run.program).parent.name
    with tempfile.TemporaryDirectory(prefix="phoenix-corpus-") as tmp:
        ws, home = Path(tmp) / "ws", Path(tmp) / "home"
        shutil.copytree(PROGRAMS / framework, ws, ignore=shutil.ignore_patterns("__pycache__", "outputs"))
        home.mkdir()
        if run.edit:
            target = ws / run.edit[0]
            target.write_text(run.edit[1] + target.read_text())
        proc = subprocess.run(command(run), cwd=ws, env=job_env(run, home), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=300)
        log = proc.stdout.decode("utf-8", "replace")
        if proc.returncode != run.returncode:
            print(f"{run.name}: FAILED: exited {proc.returncode}, expected {run.returncode}:\n{log[-3000:]}", flush=True)
            return False
        (LOGS / f"{run.name}.log").write_text(relocate(log, run, ws, home))
    print(f"{run.name}: ok (exit {proc.returncode})", flush=True)
    return True


def main(argv: list[str]) -> None:
    if argv == ["--list"]:
        print("\n".join(r.name for r in RUNS))
        return
    unknown = set(argv) - {r.name for r in RUNS}
    if unknown:
        raise SystemExit(f"unknown runs: {', '.join(sorted(unknown))}")
    failed = [run.name for run in RUNS if (not argv or run.name in argv) and not generate(run)]
    if failed:
        raise SystemExit(f"{len(failed)} runs did not end as RUNS says: {' '.join(failed)}")


if __name__ == "__main__":
    main(sys.argv[1:])
