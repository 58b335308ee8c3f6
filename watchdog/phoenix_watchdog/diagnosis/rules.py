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
HARDWARE, DISK, LINE, NCCL_TIMEOUT, USER = 90, 80, 60, 42, 75


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
    # The kernel's OOM report often reaches a log without its "Out of memory:" header (dmesg cut,
    # a journal excerpt): the victim line with its memory sizes, or the reaper that freed it.
    Rule("kernel_oom_report",
         r"\bKilled process \d+ \([^)]*\),? total-vm:\d+kB|\boom_reaper: reaped process \d+",
         Category.HOST_OOM, 85, "kind",
         ("[812345.118202] Killed process 40211 (pt_main_thread) total-vm:98817724kB, anon-rss:61002240kB, "
          "file-rss:4096kB, shmem-rss:0kB, UID:1000 pgtables:120840kB oom_score_adj:0",
          "kernel: oom_reaper: reaped process 40211 (pt_main_thread), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"),
         ("total-vm:", "oom_reaper"), kind="host_oom"),
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
         r"|gloo/transport/\S+\] Timed out|failed to pass monitoredBarrier in \d+ ms",
         Category.NCCL_TIMEOUT, NCCL_TIMEOUT, "kind",
         ("RuntimeError: [../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 30000ms "
          "for recv operation to complete",
          "torch.distributed.DistStoreError: wait timeout after 300000ms, keys: /default_pg/0//cpu//3",
          "RuntimeError: [Rank 0]: Rank 1 failed to pass monitoredBarrier in 2000 ms"),
         ("Timed out waiting", "wait timeout after", "] Timed out", "monitoredBarrier"), kind="nccl_timeout"),
    # EIO's text in any message: C++ writers (torch.save's) raise it as a RuntimeError with no errno.
    Rule("storage_io_error", r"\[Errno 5\] Input/output error|\bEIO\b|\bfailed with Input/output error"
         r"|: Input/output error\b", Category.DISK_FULL, DISK, "kind",
         ("OSError: [Errno 5] Input/output error: '/mnt/lustre/ckpt/step_4000/model.safetensors'",
          "ERROR: writing checkpoint shard 3 failed: EIO",
          "RuntimeError: write(): fd 17 failed with Input/output error",
          "RuntimeError: unable to flush /scratch/ckpt/opt_state_2.bin: Input/output error"),
         ("Errno 5", "EIO", "Input/output error")),
    # A pool worker that vanished (killed by a signal, most often the OOM killer) without saying why:
    # not a bug in the code that used the pool.
    Rule("pool_worker_died",
         r"process in the process pool was terminated abruptly|child process terminated abruptly"
         r"|worker process managed by the executor was unexpectedly terminated",
         Category.UNKNOWN, LINE, "kind",
         ("concurrent.futures.process.BrokenProcessPool: A process in the process pool was terminated abruptly "
          "while the future was running or pending.",
          "concurrent.futures.process.BrokenProcessPool: A child process terminated abruptly, the process pool "
          "is not usable anymore",
          "joblib.externals.loky.process_executor.TerminatedWorkerError: A worker process managed by the "
          "executor was unexpectedly terminated. This could be caused by a segmentation fault while calling "
          "the function or by an excessive memory usage causing the Operating System to kill the worker."),
         ("abruptly", "unexpectedly t"), kind="worker_killed"),
    # A distributed job started without its launcher's environment (plain python instead of torchrun).
    Rule("distributed_env_missing",
         r"environment variable \w+ expected, but not set",
         Category.CONFIG_ERROR, LINE, "message",
         ("ValueError: Error initializing torch.distributed using env:// rendezvous: environment variable RANK "
          "expected, but not set",),
         ("but not set",)),
    Rule("lightning_misconfiguration", r"MisconfigurationException", Category.CONFIG_ERROR, LINE, "message",
         ("lightning.fabric.utilities.exceptions.MisconfigurationException: No `training_step()` method defined.",
          "pytorch_lightning.utilities.exceptions.MisconfigurationException: `ModelCheckpoint(monitor='val_acc')` "
          "could not find the monitored key in the returned metrics"),
         ("MisconfigurationException",)),
    Rule("deepspeed_config",
         r"Check batch related parameters|train_batch_size is not equal to micro_batch_per_gpu"
         r"|DeepSpeedConfigError|deepspeed_config\b.*(?:must|should|not|invalid)",
         Category.CONFIG_ERROR, LINE, "message",
         ("AssertionError: Check batch related parameters. train_batch_size is not equal to micro_batch_per_gpu "
          "* gradient_acc_step * world_size 64 != 4 * 4 * 2",
          "deepspeed.runtime.config.DeepSpeedConfigError: zero stage 3 requires fp16 or bf16 to be enabled"),
         ("Check batch related", "train_batch_size is not", "DeepSpeedConfigError", "deepspeed_config")),
    Rule("loss_scale_minimum",
         r"loss scale already at minimum|cannot decrease (?:loss )?scale anymore|Minimum loss scale reached",
         Category.NAN_DIVERGENCE, LINE, "kind",
         ("Current loss scale already at minimum - cannot decrease scale anymore. Exiting run.",
          "Exception: Current loss scale already at minimum - cannot decrease scale anymore. Exiting run.",
          "FloatingPointError: Minimum loss scale reached (0.0001). Your loss is probably exploding."),
         ("scale already", "decrease", "Minimum loss scale")),
    # Divergence said in words, or a float that overflowed on its way from a loss (exp(loss) for a
    # perplexity, int() of an infinite value): the loss blew up, whatever exception carries it.
    Rule("divergence_words",
         r"(?i)\b(?:training|train|loss|model|optimi[sz]ation|gradients?)\b[^\n]{0,40}?"
         r"\b(?:diverged|diverging|exploded|exploding)\b",
         Category.NAN_DIVERGENCE, LINE, "message",
         ("RuntimeError: training diverged at step 1840",
          "ValueError: loss exploded (4.2e+13) at epoch 3",
          "Exception: Loss is exploding, stopping training"),
         ("iverg", "xplod")),
    # NaN reaching an op that checks its input: sampling, a distribution's parameters, metrics.
    Rule("nan_input_rejected",
         r"probability tensor contains either `inf`, `nan` or element < 0|constraint Real\(\), but found invalid values"
         r"|Input contains NaN|Input (?:X )?contains infinity",
         Category.NAN_DIVERGENCE, LINE, "match",
         ("RuntimeError: probability tensor contains either `inf`, `nan` or element < 0",
          "ValueError: Expected parameter loc (Tensor of shape (8, 4)) of distribution Normal(loc: torch.Size([8, 4]), "
          "scale: torch.Size([8, 4])) to satisfy the constraint Real(), but found invalid values:",
          "ValueError: Input contains NaN, infinity or a value too large for dtype('float32')."),
         ("contains", "constraint Real")),
    Rule("float_overflow",
         r"OverflowError: math range error|cannot convert float (?:infinity|NaN) to integer",
         Category.NAN_DIVERGENCE, LINE, "match",
         ("OverflowError: math range error",
          "OverflowError: cannot convert float infinity to integer",
          "ValueError: cannot convert float NaN to integer"),
         ("range error", "convert float")),
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


def _gate(rules: tuple[Rule, ...]) -> re.Pattern[str] | None:
    """One regex for all the rules' needles; None when some rule has none (it must always be tried)."""
    global _last_gate
    last = _last_gate  # a log scan passes the same tuple for every line: hashing its rules each time costs
    if last[0] is not rules:
        _last_gate = last = (rules, _gate_of(rules))
    return last[1]


_last_gate: tuple[tuple[Rule, ...] | None, re.Pattern[str] | None] = (None, None)


@functools.lru_cache(maxsize=8)
def _gate_of(rules: tuple[Rule, ...]) -> re.Pattern[str] | None:
    if any(not r.needles for r in rules):
        return None
    return trie_regex(tuple(dict.fromkeys(n for r in rules for n in r.needles)))


def trie_regex(words: tuple[str, ...]) -> re.Pattern[str]:
    """One regex matching any of ``words``, factored as a trie so each position costs one branch."""
    trie: dict = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        if "" in node:  # a word ends here: whatever follows, the shorter match suffices
            return ""
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items())]
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return re.compile(build(trie))


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
