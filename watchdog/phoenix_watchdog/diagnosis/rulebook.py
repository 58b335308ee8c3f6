"""The rule table shipped with the package: every built-in log and message rule, as data.

Each `Rule` (see `rules` for what its fields mean and how it is matched) carries the example lines a
test runs against it. A rule for a new message goes here, beside the rules of its family; a more
specific rule comes before a generic one that would also match: a line gets the first rule in
this order that matches it (`rules.match_line`).
"""

from __future__ import annotations

from phoenix_watchdog.diagnosis.categories import Category
from phoenix_watchdog.diagnosis.rules import DISK, HARDWARE, KILLED, LINE, NATIVE_CRASH, NCCL_TIMEOUT, Rule


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


# Every needle of the table: the log scan's literal prefilter (`markers`).
NEEDLES: tuple[str, ...] = tuple(dict.fromkeys(n for r in BUILTIN for n in r.needles))
