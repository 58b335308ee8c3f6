"""Rules as data: regex -> category, strength and signature key, each with real example lines.

The table below is shipped with the package and consulted before the built-in rules of `classify`
(exception messages) and `markers` (log lines), so a specific message (``/dev/shm`` full) is named
before a generic one (a full disk) claims it. Users add rules of their own in ``phoenix.yaml``
(``rules:``; see `phoenix_sidecar.config.schema`): theirs are consulted first of all.

A rule says what goes into the signature with ``key``:

- ``"kind"``: the rule's ``kind`` (default: its name) only: every match is the same failure (an OOM,
  a timeout). Where a built-in rule names the same failure the two share the kind;
- ``"match"``: the matched text, normalised (``cudaErrorIllegalAddress`` vs ``...MisalignedAddress``);
- ``"message"``: the whole line or exception message, normalised.

``examples`` are lines the rule must match (a test runs every one), written in each tool's own
format; ``needles`` are literal substrings one of which any match contains: the log scan looks for
those first, so a rule costs nothing on lines that cannot match it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from phoenix_watchdog.diagnosis.categories import Category
from phoenix_watchdog.diagnosis.signature import normalise

KEYS = ("kind", "match", "message")
# Strengths (see `classify`): the same scale as the built-in rules.
HARDWARE, DISK, LINE, NCCL_TIMEOUT, USER, NATIVE_CRASH, KILLED = 90, 80, 60, 42, 75, 50, 30


@dataclass(frozen=True)
class Rule:
    """One pattern and what a match means. ``action`` (user rules only) overrides the category's action."""

    name: str
    pattern: str
    category: Category
    strength: int = LINE
    key: str = "kind"
    examples: tuple[str, ...] = ()
    needles: tuple[str, ...] = ()
    action: str | None = None
    source: str = "builtin"   # "builtin", or where a user rule came from ("phoenix.yaml rules[2]")
    kind: str = ""            # the signature key of a "kind" rule (default: its name), shared with built-in rules
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.key not in KEYS:
            raise ValueError(f"rule {self.name}: key must be one of {', '.join(KEYS)}, not {self.key!r}")
        object.__setattr__(self, "regex", re.compile(self.pattern))

    def signature_key(self, m: re.Match[str], text: str) -> str:
        if self.key == "match":
            return f"{self.name}:{normalise(m.group(0))}"
        if self.key == "message":
            return f"{self.name}:{normalise(text)}"
        return self.kind or self.name

    def describe(self) -> str:
        return f"rule {self.name} ({self.source}): /{self.pattern}/ -> {self.category}"


def _cuda_names(*pairs: str) -> str:
    return "|".join(pairs)


BUILTIN: tuple[Rule, ...] = (
    Rule("shm_full",
         r"unable to write to file </torch_\w+>|unable to allocate shared memory|insufficient shared memory"
         r"|/dev/shm\b.*(?:No space left on device|\[Errno 28\])|(?:No space left on device|\[Errno 28\]).*?/dev/shm\b",
         Category.DATALOADER, LINE + 5, "kind",
         ("RuntimeError: unable to write to file </torch_48211_2917734462_3>: No space left on device (28)",
          "OSError: [Errno 28] No space left on device: '/dev/shm/pymp-8f2k1x0q/listener-3'",
          "ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory (shm)."),
         ("torch_", "shared memory", "/dev/shm"), kind="shm"),
    Rule("scheduler_oom_kill",
         r"Detected \d+ oom[-_]kill events?|: task \d+: Out Of Memory\b|\bOOMKilled\b|Exit Code 137 \(OOMKilled\)",
         Category.HOST_OOM, 85, "kind",
         ("slurmstepd: error: Detected 1 oom_kill event in StepId=771234.0. Some of the step tasks have been OOM Killed.",
          "srun: error: gpu-node-112: task 1: Out Of Memory",
          "Last State: Terminated  Reason: OOMKilled  Exit Code: 137"),
         ("oom_kill", "oom-kill", "Out Of Memory", "OOMKilled"), kind="host_oom"),
    # XLA's CPU client says "Out of memory allocating N bytes" (host memory); its GPU allocator says
    # "Out of memory while trying to allocate N bytes" (device memory).
    Rule("xla_host_oom", r"RESOURCE_EXHAUSTED: Out of memory allocating \d+ bytes", Category.HOST_OOM, LINE, "kind",
         ("jax.errors.JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 1099511627776 bytes.",),
         ("Out of memory allocating",), kind="host_oom"),
    Rule("xla_oom",
         r"RESOURCE_EXHAUSTED: Out of memory while trying|Out of memory while trying to allocate \d+",
         Category.CUDA_OOM, LINE, "kind",
         ("jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate "
          "17179869184 bytes.",
          "2026-01-07 10:12:44.118 E external/xla/xla/service/gpu/gpu_executable.cc:1021] Out of memory while "
          "trying to allocate 4294967296 bytes."),
         ("RESOURCE_EXHAUSTED", "Out of memory while"), kind="cuda_oom"),
    # TensorFlow's CPU allocators (cpu, mklcpu) running out is host memory, not a GPU's.
    Rule("tf_host_oom",
         r"device:CPU:\d+\}*\s*OOM when allocating|OOM when allocating tensor[^\n]*?device:CPU:\d+"
         r"|Allocator \((?:mklcpu|cpu)\) ran out of memory|by allocator (?:mklcpu|cpu)\b",
         Category.HOST_OOM, LINE, "kind",
         ("tensorflow.python.framework.errors_impl.ResourceExhaustedError: {{function_node __wrapped__RandomStandard"
          "Normal_device_/job:localhost/replica:0/task:0/device:CPU:0}} OOM when allocating tensor with "
          "shape[4194304,262144] and type float on /job:localhost/replica:0/task:0/device:CPU:0 by allocator mklcpu",
          "W0000 00:00:1796424303.366542   32311 bfc_allocator.cc:502] Allocator (mklcpu) ran out of memory trying "
          "to allocate 4.00TiB (rounded to 4398046511104)requested by op RandomStandardNormal"),
         ("device:CPU", "Allocator (", "by allocator"), kind="host_oom"),
    Rule("tf_oom",
         r"OOM when allocating tensor|ran out of memory trying to allocate|ResourceExhaustedError",
         Category.CUDA_OOM, LINE, "kind",
         ("tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor with "
          "shape[8192,8192] and type float on /job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc",
          "W tensorflow/tsl/framework/bfc_allocator.cc:479] Allocator (GPU_0_bfc) ran out of memory trying to "
          "allocate 256.00MiB (rounded to 268435456)requested by op MatMul"),
         ("OOM when", "ran out of memory", "ResourceExhausted"), kind="cuda_oom"),
    Rule("cuda_api_oom", r"CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation", Category.CUDA_OOM, LINE, "kind",
         ("numba.cuda.cudadrv.driver.CudaAPIError: [2] Call to cuMemAlloc results in CUDA_ERROR_OUT_OF_MEMORY",
          "cupy_backends.cuda.api.runtime.CUDARuntimeError: cudaErrorMemoryAllocation: out of memory"),
         ("CUDA_ERROR_OUT_OF_MEMORY", "cudaErrorMemoryAllocation"), kind="cuda_oom"),
    Rule("cuda_api_fault",
         _cuda_names(r"cudaError(?:IllegalAddress|InvalidAddressSpace|MisalignedAddress|IllegalInstruction"
                     r"|InvalidPc|HardwareStackError)",
                     r"CUDA_ERROR_(?:ILLEGAL_ADDRESS|INVALID_ADDRESS_SPACE|MISALIGNED_ADDRESS|ILLEGAL_INSTRUCTION"
                     r"|INVALID_PC|HARDWARE_STACK_ERROR)"),
         Category.CUDA_ILLEGAL_ACCESS, LINE, "match",
         ("cupy_backends.cuda.api.runtime.CUDARuntimeError: cudaErrorIllegalAddress: an illegal memory access "
          "was encountered",
          "cupy_backends.cuda.api.driver.CUDADriverError: CUDA_ERROR_INVALID_ADDRESS_SPACE: operation not "
          "supported on global/shared address space",
          "numba.cuda.cudadrv.driver.CudaAPIError: [716] Call to cuCtxSynchronize results in "
          "CUDA_ERROR_MISALIGNED_ADDRESS"),
         ("cudaError", "CUDA_ERROR_")),
    Rule("cuda_api_assert", r"cudaErrorAssert\b|CUDA_ERROR_ASSERT\b", Category.CODE_BUG, LINE - 5, "kind",
         ("cupy_backends.cuda.api.runtime.CUDARuntimeError: cudaErrorAssert: device-side assert triggered",),
         ("cudaErrorAssert", "CUDA_ERROR_ASSERT"), kind="device-side assert"),
    Rule("cuda_api_hardware",
         r"cudaErrorECCUncorrectable|CUDA_ERROR_ECC_UNCORRECTABLE|cudaErrorNoDevice\b|CUDA_ERROR_NO_DEVICE\b"
         r"|cudaErrorDevicesUnavailable|CUDA_ERROR_LAUNCH_FAILED|cudaErrorLaunchFailure",
         Category.GPU_HARDWARE, HARDWARE, "match",
         ("cupy_backends.cuda.api.runtime.CUDARuntimeError: cudaErrorECCUncorrectable: uncorrectable ECC error "
          "encountered",
          "numba.cuda.cudadrv.driver.CudaAPIError: [719] Call to cuMemcpyDtoH results in CUDA_ERROR_LAUNCH_FAILED"),
         ("cudaError", "CUDA_ERROR_")),
    Rule("invalid_device_ordinal",
         r"invalid device ordinal|cudaErrorInvalidDevice\b|CUDA_ERROR_INVALID_DEVICE\b",
         Category.CONFIG_ERROR, LINE, "kind",
         ("RuntimeError: CUDA error: invalid device ordinal",
          "cupy_backends.cuda.api.runtime.CUDARuntimeError: cudaErrorInvalidDevice: invalid device ordinal"),
         ("invalid device ordinal", "cudaErrorInvalidDevice", "CUDA_ERROR_INVALID_DEVICE")),
    Rule("gloo_timeout",
         r"Timed out waiting \d+ms for (?:send|recv) operation to complete|\bwait timeout after \d+ms"
         r"|gloo/transport/\S+\] Timed out",
         Category.NCCL_TIMEOUT, NCCL_TIMEOUT, "kind",
         ("RuntimeError: [../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 30000ms "
          "for recv operation to complete",
          "torch.distributed.DistStoreError: wait timeout after 300000ms, keys: /default_pg/0//cpu//3"),
         ("Timed out waiting", "wait timeout after", "] Timed out"), kind="nccl_timeout"),
    Rule("storage_io_error", r"\[Errno 5\] Input/output error|\bEIO\b", Category.DISK_FULL, DISK, "kind",
         ("OSError: [Errno 5] Input/output error: '/mnt/lustre/ckpt/step_4000/model.safetensors'",
          "ERROR: writing checkpoint shard 3 failed: EIO"),
         ("Errno 5", "EIO")),
    # Lightning raises its MisconfigurationException also for a hook that returned the wrong thing:
    # that is the user's step code, not the Trainer's setup.
    Rule("lightning_step_return",
         r"when `\w+_step` returns|`\w+_step` (?:must|should) return|`\w+_step` returned",
         Category.CODE_BUG, LINE, "message",
         ("lightning.fabric.utilities.exceptions.MisconfigurationException: In automatic_optimization, when "
          "`training_step` returns a dict, the 'loss' key needs to be present",),
         ("_step` return",)),
    Rule("lightning_monitor",
         r"conditioned on metric `[^`]+` which is not available|could not find the monitored key",
         Category.CONFIG_ERROR, LINE, "message",
         ("RuntimeError: Early stopping conditioned on metric `val_loss` which is not available. Pass in or modify "
          "your `EarlyStopping` callback to use any of the following: `train_loss`",
          "lightning.fabric.utilities.exceptions.MisconfigurationException: `ModelCheckpoint(monitor='val_acc')` "
          "could not find the monitored key in the returned metrics: ['train_loss', 'epoch', 'step']."),
         ("which is not available", "monitored key")),
    Rule("lightning_misconfiguration", r"MisconfigurationException", Category.CONFIG_ERROR, LINE, "message",
         ("lightning.fabric.utilities.exceptions.MisconfigurationException: No `training_step()` method defined.",
          "pytorch_lightning.utilities.exceptions.MisconfigurationException: You cannot pass `train_dataloader` or "
          "`val_dataloaders` to `trainer.fit(datamodule=...)`"),
         ("MisconfigurationException",)),
    Rule("deepspeed_config",
         r"Check batch related parameters|train_batch_size is not equal to micro_batch_per_gpu"
         r"|DeepSpeedConfigError|deepspeed_config\b.*(?:must|should|not|invalid)",
         Category.CONFIG_ERROR, LINE, "message",
         ("AssertionError: Check batch related parameters. train_batch_size is not equal to micro_batch_per_gpu "
          "* gradient_acc_step * world_size 64 != 4 * 4 * 2",
          "deepspeed.runtime.config.DeepSpeedConfigError: zero stage 3 requires fp16 or bf16 to be enabled"),
         ("Check batch related", "train_batch_size is not", "DeepSpeedConfigError", "deepspeed_config")),
    # A checkpoint written for another model configuration (hidden size, vocabulary) than the one built.
    Rule("state_dict_size_mismatch", r"size mismatch for [\w.]+: copying a param with shape",
         Category.CONFIG_ERROR, LINE, "kind",
         ("RuntimeError: Error(s) in loading state_dict for BertForSequenceClassification:\n\tsize mismatch for "
          "bert.embeddings.word_embeddings.weight: copying a param with shape torch.Size([18, 32]) from checkpoint, "
          "the shape in current model is torch.Size([30, 32]).",),
         ("size mismatch for",), kind="state_dict_size_mismatch"),
    # A library's check of an argument value handed to it from the run's configuration.
    Rule("estimator_parameter",
         r"The '\w+' parameter of \w+ must be|Unknown (?:objective|metric) function: `|Invalid Parameter format for \w+"
         r"|is not a valid (?:SchedulerType|IntervalStrategy|OptimizerNames|SaveStrategy)\b"
         r"|Could not interpret (?:optimizer|loss|metric|activation|initializer|regularizer) identifier"
         r"|\bis invalid\. (?:Allowed|Supported|Valid) (?:\w+ )?values\b",
         Category.CONFIG_ERROR, LINE, "message",
         ("sklearn.utils._param_validation.InvalidParameterError: The 'C' parameter of LogisticRegression must be a "
          "float in the range (0.0, inf]. Got -1.0 instead.",
          "xgboost.core.XGBoostError: [22:38:09] /__w/xgboost/xgboost/src/objective/objective.cc:27: Unknown "
          "objective function: `multi:softmaxx`",
          "ValueError: 'cosine_warmup' is not a valid SchedulerType, please select one of ['linear', 'cosine']",
          "ValueError: Could not interpret optimizer identifier: adamw8bit",
          "ValueError: Precision 'bf17-mixed' is invalid. Allowed precision values: ('16-true', '16-mixed', "
          "'bf16-true', 'bf16-mixed', '32-true', '64-true')"),
         ("parameter of", "function: `", "Invalid Parameter format", "is not a valid", "Could not interpret",
          "is invalid. ")),
    # Hydra's short report of a bad override or config group: no traceback, only these lines.
    Rule("hydra_config",
         r"^(?:hydra\.errors\.\w+: )?(?:Could not override '[\w.]+'|In '[\w/]+': Could not find '[\w/.-]+'"
         r"|Could not append to config|Could not load '[\w/.-]+')"
         r"|^(?:hydra\.errors\.)?(?:OverrideParseException|MissingConfigException)\b",
         Category.CONFIG_ERROR, LINE, "message",
         ("Could not override 'optim.lrr'.",
          "In 'config': Could not find 'optim/sgd'",
          "hydra.errors.ConfigCompositionException: Could not override 'optim.lrr'."),
         ("Could not", "OverrideParse", "MissingConfig")),
    # The Hugging Face hub in offline mode (HF_HUB_OFFLINE, local_files_only) without the files cached:
    # the model is missing from this machine, not the network down.
    Rule("hub_offline_cache_miss",
         r"outgoing traffic has been disabled|Cannot find the requested files in the (?:disk|local) cache"
         r"|offline mode is enabled|OfflineModeIsEnabled",
         Category.MISSING_FILE, LINE, "kind",
         ("huggingface_hub.errors.LocalEntryNotFoundError: Cannot find the requested files in the disk cache and "
          "outgoing traffic has been disabled. To enable hf.co look-ups and downloads online, set "
          "'local_files_only' to False.",),
         ("outgoing traffic", "Cannot find the requested files", "offline mode", "OfflineModeIsEnabled"),
         kind="hub_offline_cache_miss"),
    # An HTTP client that could not reach its server (the hub, a metrics endpoint): an outage, not a bug.
    Rule("http_unreachable",
         r"^(?:requests|urllib3|httpx\d*|httpcore\d*|aiohttp)\.[\w.]*?(?:Connect\w*|\w*Timeout\w*|NetworkError"
         r"|ConnectionError|NewConnectionError|RemoteProtocolError)\b"
         r"|An error happened while trying to locate the files? on the Hub",
         Category.UNKNOWN, LINE, "kind",
         ("httpx.ConnectError: [Errno 111] Connection refused",
          "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='huggingface.co', port=443): Max retries "
          "exceeded", "httpcore2.ConnectError: [Errno 111] Connection refused",
          "huggingface_hub.errors.LocalEntryNotFoundError: An error happened while trying to locate the file on the "
          "Hub and we cannot find the requested files in the local cache. Please check your connection and try again"),
         ("requests.", "urllib3.", "httpx", "httpcore", "aiohttp.", "An error happened while trying to locate"),
         kind="network:http"),
    # A library's own "could not find the file" report (XGBoost, TensorFlow's file system layer,
    # transformers loading a local model directory without its weights).
    Rule("native_file_missing",
         r"(?:Opening|open(?:ing)?|load(?:ing)?|read(?:ing)?) [^\n]{1,300}? failed: No such file or directory"
         r"|NOT_FOUND: [^\n]*?(?:No such file or directory|not found)|Unsuccessful TensorSliceReader constructor"
         r"|\bno file named [\w.]+(?:,? or [\w.]+)*,? found in directory",
         Category.MISSING_FILE, LINE, "message",
         ("xgboost.core.XGBoostError: [22:38:22] /__w/xgboost/xgboost/src/common/io.cc:144: Opening "
          "models/booster.json failed: No such file or directory",
          "tensorflow.python.framework.errors_impl.NotFoundError: Unsuccessful TensorSliceReader constructor: "
          "Failed to find any matching files for ckpt/model-120",
          "OSError: Error no file named model.safetensors, or pytorch_model.bin, found in directory "
          "checkpoints/run-3/final."),
         ("failed: No such file", "NOT_FOUND", "TensorSliceReader", "no file named")),
    # The DeepSpeed launcher's report of a rank that died of a signal: the kill (or crash) is the
    # failure; the survivors' "connection reset by peer" is its consequence.
    Rule("launcher_rank_killed", r"exits with return code = -9\b", Category.UNKNOWN, KILLED, "kind",
         ("[2026-12-04 23:08:48,357] [ERROR] [launch.py:259:sigkill_handler] ['/usr/bin/python3', '-u', "
          "'train.py', '--local_rank=1'] exits with return code = -9",),
         ("return code = -9",), kind="signal:SIGKILL"),
    Rule("launcher_rank_segfault", r"exits with return code = -11\b", Category.SEGFAULT, NATIVE_CRASH, "kind",
         ("[ERROR] [launch.py:259:sigkill_handler] ['/usr/bin/python3', '-u', 'train.py', '--local_rank=3'] "
          "exits with return code = -11",),
         ("return code = -11",), kind="signal:SIGSEGV"),
    # A precision the configuration asks for that this device does not have (fp16 on a CPU accelerator).
    Rule("precision_unsupported",
         r"\b(?:Type )?(?:fp16|bf16|float16|bfloat16|half|fp8)\b[^\n]{0,20}? (?:is )?not supported on (?:your|this) "
         r"(?:device|accelerator|hardware|GPU)",
         Category.CONFIG_ERROR, LINE, "message",
         ("ValueError: Type fp16 is not supported on your device.",
          "RuntimeError: bf16 is not supported on this GPU"),
         ("not supported on",)),
    # A command-line parser's refusal from a program whose name has spaces ("Accelerate launch command");
    # `markers` reads the usual one-word form (``train.py: error: ...``).
    Rule("usage_error",
         r"^[\w.-]+(?: [\w.-]+){1,6}: error: (?:unrecognized arguments|the following arguments are required|argument \S+"
         r"|invalid choice|ambiguous option)",
         Category.CONFIG_ERROR, LINE, "message",
         ("Accelerate launch command: error: argument --mixed_precision/--mixed-precision: invalid choice: 'fp17' "
          "(choose from 'no', 'fp16', 'bf16', 'fp8')",
          "DeepSpeed launcher: error: the following arguments are required: user_script"),
         ("error: unrecognized", "error: the following", "error: argument", "error: invalid", "error: ambiguous")),
    # An optional package a requested feature needs ("fp8 requires transformer_engine to be installed").
    Rule("optional_package",
         r"requires `?[\w.-]+`?(?: or `?[\w.-]+`?)? (?:to be installed|installed)\b"
         r"|requires the `?[\w.-]+`? (?:library|package)\b[^\n]*(?:not installed|install)",
         Category.MISSING_DEPENDENCY, LINE, "message",
         ("ValueError: Using `fp8` precision requires `transformer_engine` or `torchao` to be installed.",
          "ImportError: DeepSpeed requires the `deepspeed` package, but it is not installed: pip install deepspeed"),
         ("install",)),
    # Keras' TerminateOnNaN callback stops fit on a NaN or infinite loss (the job decides what follows).
    Rule("keras_terminate_on_nan", r"Batch \d+: Invalid loss, terminating training",
         Category.NAN_DIVERGENCE, LINE, "kind",
         ("Batch 1: Invalid loss, terminating training",), ("Invalid loss, terminating",), kind="nan_loss"),
    Rule("loss_scale_minimum",
         r"loss scale already at minimum|cannot decrease (?:loss )?scale anymore|Minimum loss scale reached",
         Category.NAN_DIVERGENCE, LINE, "kind",
         ("Current loss scale already at minimum - cannot decrease scale anymore. Exiting run.",
          "Exception: Current loss scale already at minimum - cannot decrease scale anymore. Exiting run.",
          "FloatingPointError: Minimum loss scale reached (0.0001). Your loss is probably exploding."),
         ("scale already", "decrease", "Minimum loss scale")),
)


def match_line(rules: tuple[Rule, ...], text: str) -> tuple[Rule, re.Match[str]] | None:
    """The first rule that matches ``text`` (a log line or an exception's text), with its match."""
    gate = _gate(rules)
    if gate is not None and gate.search(text) is None:
        return None  # no needle of any rule here, and every rule names needles
    for rule in rules:
        if rule.needles and not any(n in text for n in rule.needles):
            continue
        if m := rule.regex.search(text):
            return rule, m
    return None


@functools.lru_cache(maxsize=8)
def _gate(rules: tuple[Rule, ...]) -> re.Pattern[str] | None:
    """One regex for all the rules' needles; None when some rule has none (it must always be tried)."""
    if any(not r.needles for r in rules):
        return None
    return re.compile("|".join(re.escape(n) for n in dict.fromkeys(n for r in rules for n in r.needles)))


NEEDLES: tuple[str, ...] = tuple(dict.fromkeys(n for r in BUILTIN for n in r.needles))


def user_rules(raw: object, actions: Iterable[str] | None = None, where: str = "rules") -> tuple[Rule, ...]:
    """The user's rules from their configuration (a list of mappings), validated.

    Each entry: ``pattern`` (a regex, required), ``category`` (required), and optionally ``action``
    (one of ``actions``), ``name``, ``key`` (kind / match / message; default match), ``strength``
    (default `USER`: above an exception that ended the run, below a full disk and hardware) and
    ``examples`` (lines the pattern must match: checked here). Raises ValueError naming the entry.
    """
    if raw is None or raw == []:
        return ()
    if not isinstance(raw, list):
        raise ValueError(f"{where}: expected a list of rules ({{pattern: ..., category: ...}}), got {type(raw).__name__}")
    allowed = {"pattern", "category", "action", "name", "key", "strength", "examples"}
    out = []
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{at}: expected a mapping with pattern and category, got {entry!r}")
        if unknown := sorted(set(entry) - allowed):
            raise ValueError(f"{at}: unknown field {unknown[0]!r}; fields: {', '.join(sorted(allowed))}")
        pattern, category = entry.get("pattern"), entry.get("category")
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"{at}: pattern must be a non-empty regular expression")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{at}: pattern {pattern!r} is not a valid regular expression: {exc}") from None
        if category not in {c.value for c in Category}:
            raise ValueError(f"{at}: unknown category {category!r}; categories: {', '.join(c.value for c in Category)}")
        action = entry.get("action")
        if action is not None and actions is not None and action not in set(actions):
            raise ValueError(f"{at}: unknown action {action!r}; actions: {', '.join(actions)}")
        key = entry.get("key", "match")
        if key not in KEYS:
            raise ValueError(f"{at}: key must be one of {', '.join(KEYS)}, got {key!r}")
        strength = entry.get("strength", USER)
        if isinstance(strength, bool) or not isinstance(strength, int) or not 0 < strength < 100:
            raise ValueError(f"{at}: strength must be an integer 1-99, got {strength!r}")
        examples = entry.get("examples", [])
        if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
            raise ValueError(f"{at}: examples must be a list of log lines")
        rule = Rule(str(entry.get("name") or f"user{i}"), pattern, Category(category), strength, key,
                    tuple(examples), (), str(action) if action is not None else None, f"phoenix.yaml {at}")
        if bad := [e for e in examples if not rule.regex.search(e)]:
            raise ValueError(f"{at}: pattern does not match its example {bad[0]!r}")
        out.append(rule)
    return tuple(out)
