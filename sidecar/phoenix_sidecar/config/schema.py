"""The configuration schema: every setting, its type, default, environment variable and meaning.

`Settings` is the frozen, typed result that the rest of Phoenix reads. `loader` fills it from
defaults, the YAML file, the environment and the command line. This module is plain data (plus
`secret`, which reads a mapping it is given): any wing may import it. The environment variables of the
original ``phoenix_cli_manager.py`` keep their names, meanings and defaults.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from phoenix_watchdog.diagnosis.categories import Category

# Kinds understood by config.parse_value.
INT, FLOAT, BOOL, STR, WORDS, OPT_WORDS, LIST, CHOICE, MAPPING, ADDR = (
    "int", "float", "bool", "str", "words", "optional words", "list", "choice", "mapping", "address",
)

LLM_CLIENTS = ("gemini_cli", "gemini_api", "openai", "command")
RULES = "rules"  # a list of diagnosis rules, validated by phoenix_watchdog.diagnosis.user_rules


class Action(enum.StrEnum):
    """What the policy does about a failure category (the values of the ``actions`` setting)."""

    REPAIR = "repair"
    RESTART = "restart"
    STOP = "stop"


ACTIONS = tuple(a.value for a in Action)
CATEGORIES = tuple(c.value for c in Category)  # the watchdog owns them; here for messages and choices
# The one table of default actions; ``settings.actions`` overrides entries (see `action_table`).
DEFAULT_ACTIONS: Mapping[Category, Action] = MappingProxyType({
    Category.CODE_BUG: Action.REPAIR, Category.CONFIG_ERROR: Action.REPAIR, Category.MISSING_FILE: Action.REPAIR,
    Category.NAN_DIVERGENCE: Action.REPAIR, Category.CUDA_OOM: Action.REPAIR,
    Category.NCCL_TIMEOUT: Action.RESTART, Category.NCCL_ERROR: Action.RESTART, Category.DATALOADER: Action.RESTART,
    Category.SEGFAULT: Action.RESTART, Category.HANG: Action.RESTART, Category.UNKNOWN: Action.RESTART,
    Category.GPU_HARDWARE: Action.STOP, Category.CUDA_ILLEGAL_ACCESS: Action.STOP, Category.HOST_OOM: Action.STOP,
    Category.DISK_FULL: Action.STOP, Category.MISSING_DEPENDENCY: Action.STOP,
})
FALLBACK_ACTION = Action.RESTART  # for a category the table does not know


def action_table(overrides: Mapping[str, str]) -> dict[str, Action]:
    """Every category's action: the defaults, with the configured ``actions`` over them."""
    return {**DEFAULT_ACTIONS, **{Category(k): Action(v) for k, v in overrides.items()}}


DEFAULT_METRICS_PORT = 9479


def setting(default: Any, kind: str, help: str, *, env: str | None = None, minimum: float | None = None,
            choices: tuple[str, ...] | None = None, sep: str = ",", secret: bool = False,
            group: str = "general", maximum: float | None = None) -> Any:
    """Declare one setting. ``env=None`` means ``PHOENIX_<NAME>``; ``env=""`` means no variable.
    Every number has a ``maximum`` that makes sense (a test checks): an absurd value is refused,
    never slept on (``gpu_poll_seconds: 1e308`` would silently end the NVML thread)."""
    meta = {"kind": kind, "help": help, "env": env, "minimum": minimum, "choices": choices,
            "sep": sep, "secret": secret, "group": group, "maximum": maximum}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """Everything Phoenix can be configured with. Field order is the order `phoenix config` prints."""

    # -- the job -------------------------------------------------------------------------------
    workspace: str = setting(".", STR, "directory the job runs in; holds .phoenix_cli/ and phoenix.yaml")
    train_cmd: list = setting(["python", "train.py"], WORDS, "training command (shell words)")
    heartbeat_min: float = setting(15.0, FLOAT, "minutes of stdout and stderr silence that count as a hang; 0 turns it off", minimum=0, maximum=10080)
    heartbeat_initial_min: float | None = setting(None, FLOAT, "silence allowed before the job's first output (minutes); unset: heartbeat_min", minimum=0, maximum=10080)
    kill_grace_seconds: float = setting(10.0, FLOAT, "seconds between SIGTERM and SIGKILL when stopping the job", minimum=0, maximum=3600)
    stack_dump: str = setting("auto", CHOICE, "how to take a hung job's stack before killing it", choices=("auto", "py-spy", "signal", "off"))
    stack_dump_timeout_seconds: float = setting(5.0, FLOAT, "time allowed for the stack dump of a hung job", minimum=0, maximum=600)
    log_max_bytes: int = setting(5242880, INT, "run log size before rotation (bytes); 0 never rotates", minimum=0, maximum=1 << 40)
    log_backups: int = setting(5, INT, "rotated run logs kept", minimum=0, maximum=1000)
    lock_stale: float = setting(3600.0, FLOAT, "seconds after which a pid-file lock whose holder is dead may be taken over; 0 never", minimum=0, maximum=31536000)

    # -- policy --------------------------------------------------------------------------------
    max_retries: int = setting(3, INT, "attempts (repairs or restarts) per error signature", minimum=0, maximum=1000, group="policy")
    max_total_restarts: int = setting(20, INT, "restarts of the job in all, whatever the signature", minimum=0, maximum=100000, group="policy")
    backoff_initial_seconds: float = setting(5.0, FLOAT, "first delay before a restart; doubles on each failure", minimum=0, maximum=86400, group="policy")
    backoff_max_seconds: float = setting(300.0, FLOAT, "cap on the restart delay", minimum=0, maximum=86400, group="policy")
    stable_run_seconds: float = setting(600.0, FLOAT, "a run this long resets the backoff and the per-signature attempts", minimum=0, maximum=31536000, group="policy")
    cooldown_seconds: float = setting(0.0, FLOAT, "wait before stopping when a failure cannot be repaired", minimum=0, maximum=86400, group="policy")
    actions: dict = setting({}, MAPPING, "category -> repair|restart|stop, over the defaults", group="policy")
    rules: list = setting([], RULES, "extra diagnosis rules, tried first: a list of {pattern: regex, category, "
                          "action (optional), examples (optional)}; see docs/diagnosis.md", group="policy")

    # -- repair --------------------------------------------------------------------------------
    repair: bool = setting(True, BOOL, "ask an LLM to repair code failures; off: such failures give up", group="repair")
    primary: str = setting("gemini_cli", CHOICE, "LLM client tried first", choices=LLM_CLIENTS, group="repair")
    fallback: list = setting([], LIST, "further LLM clients, tried in order when the primary fails", group="repair")
    dry_run: bool = setting(False, BOOL, "run every repair step but never overwrite workspace files", group="repair")
    gemini_api_key_env: str = setting("GEMINI_API_KEY", STR, "name of the variable that holds the Gemini API key", env="GEMINI_API_KEY_ENV", group="repair")
    gemini_model: str = setting("gemini-2.0-flash", STR, "Gemini model", env="GEMINI_MODEL", group="repair")
    gemini_cli_bin: str = setting("gemini", STR, "the Gemini CLI program", env="GEMINI_CLI_BIN", group="repair")
    gemini_api_base_url: str = setting("https://generativelanguage.googleapis.com", STR, "Gemini API base URL (proxies, tests)", env="GEMINI_API_BASE_URL", group="repair")
    openai_url: str = setting("", STR, "base URL of an OpenAI-compatible server, e.g. http://localhost:8000/v1", group="repair")
    openai_model: str = setting("", STR, "model name for the OpenAI-compatible server", group="repair")
    openai_api_key_env: str = setting("OPENAI_API_KEY", STR, "name of the variable that holds the OpenAI-compatible key (optional)", group="repair")
    llm_cmd: list = setting([], WORDS, "command that reads the prompt on stdin and prints the answer", group="repair")
    llm_timeout_seconds: float = setting(180.0, FLOAT, "time allowed for one LLM call", minimum=1, maximum=86400, group="repair")
    llm_max_tokens: int = setting(2048, INT, "longest answer asked of an OpenAI-compatible server, in tokens (lowered to a third of a known context window)", minimum=64, maximum=1_000_000, group="repair")
    tail: int = setting(200, INT, "log lines given to the LLM", minimum=1, maximum=100000, group="repair")
    max_file_chars: int = setting(120000, INT, "source characters per file in the prompt", minimum=1000, maximum=10_000_000, group="repair")
    max_prompt_chars: int = setting(180000, INT, "characters in the whole prompt", minimum=2000, maximum=10_000_000, group="repair")
    test_cmd: list | None = setting(None, OPT_WORDS, "test command run in the repair worktree after a patch", group="repair")
    test_timeout_seconds: float = setting(600.0, FLOAT, "time allowed for the test command", minimum=1, maximum=86400, group="repair")
    sandbox: str = setting("auto", CHOICE, "how the test command is confined: auto (bubblewrap where it works, else write detection), bubblewrap (required), detect (write detection only)", choices=("auto", "bubblewrap", "detect"), group="repair")
    allow_capabilities: bool = setting(False, BOOL, "let a patch add process, network, dynamic-code or file-system calls the file did not have", group="repair")
    allowlist: list = setting(["*.py"], LIST, "files a repair may change (glob patterns)", sep=";", group="repair")
    max_patch_files: int = setting(5, INT, "files one answer may change", minimum=1, maximum=1000, group="repair")
    max_patch_lines: int = setting(200, INT, "lines one answer may change", minimum=1, maximum=100000, group="repair")
    max_backups: int = setting(20, INT, "backup generations kept per file", minimum=1, maximum=1000, group="repair")
    auto_rollback: bool = setting(True, BOOL, "roll a repair back when the repaired job fails sooner than before", group="repair")
    llm_triage: bool = setting(False, BOOL, "when no rule names a failure (unknown), ask the LLM clients above to pick its category from the fixed list, with a one-line reason; the action still comes from the actions table", group="repair")
    llm_triage_timeout_seconds: float = setting(30.0, FLOAT, "time allowed for one triage, every client together; past it the failure stays unknown", minimum=1, maximum=600, group="repair")

    # -- docker sidecar ------------------------------------------------------------------------
    container: str = setting("", STR, "name or id of the training container to watch", group="docker")
    container_label: str = setting("", STR, "label that finds the training container, e.g. phoenix.role=trainer", group="docker")
    log_file: str = setting("", STR, "log file the job writes on the shared volume; unset: the Docker log stream", group="docker")
    dump_signal: str = setting("", STR, "signal sent to a hung container for a stack dump before stopping it, e.g. SIGUSR1", group="docker")
    docker_timeout_seconds: float = setting(30.0, FLOAT, "timeout of one Docker API call", minimum=1, maximum=3600, group="docker")

    # -- slurm (phoenix watch --slurm-job) -----------------------------------------------------
    slurm_job: str = setting("", STR, "Slurm job to watch: a job id, an array task (123_4) or a job name (the newest)", group="slurm")
    slurm_poll_seconds: float = setting(2.0, FLOAT, "seconds between two reads of the job's state (the scheduler's pace)", minimum=0.5, maximum=3600, group="slurm")
    slurm_task_output: str = setting("", STR, "per-task output files, %j job id, %t task (rank), e.g. /shared/ws/out-%j-%t.log; unset: the job's --output", group="slurm")
    slurm_drain: bool = setting(True, BOOL, "drain a node whose output shows a GPU hardware failure (needs Slurm operator rights)", group="slurm")
    slurm_timeout_is_failure: bool = setting(False, BOOL, "a job that hits its time limit failed; off: it checkpointed on --signal and is requeued without spending a budget", group="slurm")
    slurm_rest_url: str = setting("", STR, "read Slurm through slurmrestd: unix:/path/to/socket or http://host:port (API v0.0.38); unset: the Slurm commands", group="slurm")
    slurm_rest_token_file: str = setting("", STR, "file holding the JWT for slurmrestd (rest_auth/jwt; what `scontrol token` prints); unset: the SLURM_JWT variable, else none (rest_auth/local)", group="slurm")

    # -- metrics and hardware safety -----------------------------------------------------------
    metrics_addr: str = setting(f"127.0.0.1:{DEFAULT_METRICS_PORT}", ADDR, "host:port of /metrics and /healthz; empty turns them off", group="metrics")
    gpu_metrics: bool = setting(True, BOOL, "export per-GPU series (temperature, power, memory, ECC, Xid); false: leave them to an existing dcgm-exporter (NVML is still read for the safety gates)", group="metrics")
    metrics_linger_seconds: float = setting(60.0, FLOAT, "after the job succeeded or Phoenix gave up, keep serving /metrics until a scrape has read the final state, at most this long (on a loopback address only if something scraped it before); 0: exit at once", minimum=0, maximum=86400, group="metrics")
    gpu_poll_seconds: float = setting(5.0, FLOAT, "interval of the background NVML reads", minimum=0.1, maximum=3600, group="metrics")
    gpu_max_temp_c: float = setting(85.0, FLOAT, "GPU temperature that stops the job; 0 turns it off", minimum=0, maximum=150, group="metrics")
    gpu_max_power_ratio: float = setting(0.0, FLOAT, "GPU power as a fraction of its limit that stops the job; 0 turns it off", minimum=0, maximum=10, group="metrics")
    min_free_disk_gb: float = setting(10.0, FLOAT, "free space on the workspace and log volumes below which the job stops; 0 turns it off", minimum=0, maximum=1_000_000, group="metrics")
    stop_on_gpu_errors: bool = setting(True, BOOL, "new ECC errors or Xid events stop the job", group="metrics")
    safety_resume: bool = setting(True, BOOL, "after a safety stop, resume once the condition clears; off: stay stopped for a human", group="metrics")
    webhook_url: str = setting("", STR, "URL that receives incidents and repairs as JSON", secret=True, group="metrics")
    webhook_format: str = setting("generic", CHOICE, "payload shape of the webhook", choices=("generic", "slack", "discord"), group="metrics")

    # -- progress (issue #13): steps read from the output, hangs that still print, busy GPUs -----
    progress: bool = setting(True, BOOL, "read the step, loss and throughput from the output; a job that stops stepping is hung even while it prints", group="progress")
    progress_pattern: str = setting("", STR, "regex with named groups step (and total, loss, throughput, epoch) for output the built-in formats miss", group="progress")
    progress_safety_factor: float = setting(5.0, FLOAT, "no-progress timeout = this x the longest usual interval between steps", minimum=1, maximum=100, group="progress")
    progress_warmup_steps: int = setting(5, INT, "first steps of a run that teach nothing about its pace (compilation, warm-up)", minimum=0, maximum=100000, group="progress")
    progress_timeout_min_seconds: float = setting(60.0, FLOAT, "lower bound of the learned no-progress timeout", minimum=1, maximum=86400, group="progress")
    progress_timeout_max_seconds: float = setting(3600.0, FLOAT, "upper bound of the learned no-progress timeout", minimum=1, maximum=604800, group="progress")
    busy_gpu_util_percent: float = setting(50.0, FLOAT, "GPU utilisation above which a silent or stalled job counts as working; 0 turns the busy grace off", minimum=0, maximum=100, group="progress")
    busy_grace_min: float = setting(30.0, FLOAT, "minutes a busy GPU may defer a hang verdict past its deadline", minimum=0, maximum=10080, group="progress")
    max_no_progress_restarts: int = setting(3, INT, "runs in a row that end without passing the best step before Phoenix stops; 0 never", minimum=0, maximum=1000, group="progress")
    gpu_reclaim_timeout_seconds: float = setting(60.0, FLOAT, "wait before a restart for the GPUs' memory to fall back to what it was before the job; 0 does not wait", minimum=0, maximum=3600, group="progress")
    gpu_reclaim_tolerance_mb: float = setting(512.0, FLOAT, "memory per GPU above its pre-job level still counted as reclaimed", minimum=0, maximum=1048576, group="progress")
    loss_blowup_factor: float = setting(10.0, FLOAT, "a loss above this x its running median is a blow-up; 0 turns the check off", minimum=0, maximum=1000000, group="progress")
    loss_blowup_steps: int = setting(5, INT, "reports in a row above the blow-up factor before it counts", minimum=1, maximum=100000, group="progress")
    loss_blowup_action: str = setting("stop", CHOICE, "what a loss blow-up gets (a NaN loss follows the nan_divergence action)", choices=("stop", "restart", "repair"), group="progress")
    slowdown_fraction: float = setting(0.5, FLOAT, "steps per second below this fraction of their running median count as a slowdown; 0 off", minimum=0, maximum=1, group="progress")
    slowdown_min: float = setting(5.0, FLOAT, "minutes of slowdown before the metric (and the alert) says so", minimum=0, maximum=10080, group="progress")

    def action_for(self, category: str) -> Action:
        """The configured action for a failure category."""
        return action_table(self.actions).get(category, FALLBACK_ACTION)

    @property
    def heartbeat_seconds(self) -> float | None:
        """The hang threshold in seconds, or None when hang detection is off."""
        return self.heartbeat_min * 60.0 if self.heartbeat_min > 0 else None

    @property
    def heartbeat_initial_seconds(self) -> float | None:
        """The threshold before the first output, or None when hang detection is off."""
        if self.heartbeat_min <= 0:
            return None
        base = self.heartbeat_initial_min if self.heartbeat_initial_min is not None else self.heartbeat_min
        return base * 60.0 if base > 0 else None


@dataclass(frozen=True)
class KeySpec:
    """The declaration of one setting, read from the dataclass field's metadata."""

    name: str
    kind: str
    default: Any
    env: str
    help: str
    minimum: float | None
    choices: tuple[str, ...] | None
    sep: str
    secret: bool
    group: str
    maximum: float | None = None


def key_specs() -> dict[str, KeySpec]:
    """Every setting's declaration, in declaration order."""
    specs: dict[str, KeySpec] = {}
    for f in dataclasses.fields(Settings):
        m = f.metadata
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
        env = m["env"] if m["env"] is not None else f"PHOENIX_{f.name.upper()}"
        specs[f.name] = KeySpec(f.name, m["kind"], default, env, m["help"], m["minimum"], m["choices"],
                                m["sep"], m["secret"], m["group"], m.get("maximum"))
    return specs


SECRET_VARIABLES = {
    # Secrets are never read from the config file: they come from the variable the settings name.
    "gemini_api_key": "gemini_api_key_env",
    "openai_api_key": "openai_api_key_env",
}


def secret(settings: Settings, name: str, environ: Mapping[str, str]) -> str | None:
    """A secret (``gemini_api_key``, ``openai_api_key``) from the variable the settings name, or None."""
    return environ.get(getattr(settings, SECRET_VARIABLES[name])) or None
