"""The failure categories: the one vocabulary every diagnosis is expressed in, and which are patchable.

The watchdog produces these names, so it owns them; the sidecar's settings (the ``actions``
table), policy and metrics read them from here, and the sidecar's LLM triage shows a model
`MEANINGS` (one line each) when it asks it to name a failure the rules could not. The values are label values and documented
names: never rename one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class Category(enum.StrEnum):
    """What kind of failure a run ended with. A `str`: compares, hashes and prints as its value."""

    CODE_BUG = "code_bug"
    CONFIG_ERROR = "config_error"
    MISSING_DEPENDENCY = "missing_dependency"
    MISSING_FILE = "missing_file"
    CUDA_OOM = "cuda_oom"
    HOST_OOM = "host_oom"
    DISK_FULL = "disk_full"
    NAN_DIVERGENCE = "nan_divergence"
    DATALOADER = "dataloader"
    NCCL_TIMEOUT = "nccl_timeout"
    NCCL_ERROR = "nccl_error"
    CUDA_ILLEGAL_ACCESS = "cuda_illegal_access"
    GPU_HARDWARE = "gpu_hardware"
    SEGFAULT = "segfault"
    HANG = "hang"
    UNKNOWN = "unknown"


# Categories a code patch could plausibly fix (a code_bug only when a user frame is named).
PATCHABLE: frozenset[Category] = frozenset({
    Category.CODE_BUG, Category.CONFIG_ERROR, Category.MISSING_FILE, Category.NAN_DIVERGENCE, Category.CUDA_OOM,
})

# What each category means, in one line: for a model choosing among them (and for humans).
MEANINGS: Mapping[Category, str] = MappingProxyType({
    Category.CODE_BUG: "an error in the program's own code (a wrong call, type, index or attribute)",
    Category.CONFIG_ERROR: "a bad setting, argument or configuration value the program was given",
    Category.MISSING_DEPENDENCY: "a Python module, package or shared library is not installed or does not load",
    Category.MISSING_FILE: "a file or directory the program needs (data, checkpoint) does not exist",
    Category.CUDA_OOM: "the GPU ran out of memory (any framework: PyTorch, JAX, TensorFlow, cupy)",
    Category.HOST_OOM: "the machine ran out of RAM: the kernel OOM killer or a failed host allocation",
    Category.DISK_FULL: "no space left on a device or a quota exceeded while writing",
    Category.NAN_DIVERGENCE: "the loss or gradients became NaN or infinite, or the training blew up",
    Category.DATALOADER: "a data-loading worker died or failed (including a full /dev/shm)",
    Category.NCCL_TIMEOUT: "a collective operation between ranks timed out (NCCL, gloo, a distributed barrier)",
    Category.NCCL_ERROR: "a collective-communication error other than a timeout (NCCL, gloo, a lost peer)",
    Category.CUDA_ILLEGAL_ACCESS: "a CUDA kernel error: illegal memory access, device-side assert, invalid address",
    Category.GPU_HARDWARE: "the GPU itself failed: Xid errors, ECC errors, fell off the bus, not detected",
    Category.SEGFAULT: "a native crash: segmentation fault, bus error, abort in compiled code",
    Category.HANG: "the job stopped making progress without exiting (decided by the heartbeat, not a log)",
    Category.UNKNOWN: "none of the above fits, or the log says too little to tell",
})
