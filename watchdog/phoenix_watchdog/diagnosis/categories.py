"""The failure categories: the one vocabulary every diagnosis is expressed in, and which are patchable.

The watchdog produces these names, so it owns them; the sidecar's settings (the ``actions``
table), policy and metrics read them from here. The values are label values and documented
names: never rename one.
"""

from __future__ import annotations

import enum


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
