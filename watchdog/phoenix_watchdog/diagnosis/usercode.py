"""Which source paths are the job's own code, and how to show them.

A frame is *user code* when a repair could edit it: a file under the job's workspace. Frames in
``site-packages``/``dist-packages``, the standard library, ``<frozen ...>`` pseudo-files, installed
entry-point scripts and PyTorch's own sources are not. Without a workspace (or when no frame of a
traceback lies under it, which happens when the job saw its files under another mount point than
Phoenix does) the same library rules decide alone and every other path counts as user code.

py-spy shortens paths to the package part (``torch/utils/data/dataloader.py``, ``threading.py``),
so relative paths are judged by their first component: a standard-library module or a well-known
third-party package is not user code.
"""

from __future__ import annotations

import posixpath
import re
import sys

# Third-party top-level packages common in training jobs. Only consulted for *relative* paths
# (py-spy's shortened form); absolute paths are judged by site-packages / stdlib location.
KNOWN_LIBRARIES = frozenset({
    "torch", "torchvision", "torchaudio", "torchtext", "triton", "numpy", "scipy", "pandas",
    "sklearn", "transformers", "tokenizers", "datasets", "accelerate", "deepspeed", "lightning",
    "pytorch_lightning", "lightning_fabric", "megatron", "apex", "transformer_engine", "flash_attn",
    "xformers", "bitsandbytes", "peft", "trl", "vllm", "safetensors", "huggingface_hub", "timm",
    "einops", "hydra", "omegaconf", "yaml", "tqdm", "wandb", "mlflow", "tensorboard",
    "tensorboardX", "PIL", "cv2", "h5py", "pyarrow", "fsspec", "filelock", "requests", "urllib3",
    "aiohttp", "ray", "jax", "jaxlib", "flax", "tensorflow", "keras", "multiprocess", "dill",
    "psutil", "zmq", "grpc", "google", "absl", "setuptools", "pkg_resources", "_pytest", "pytest",
    "IPython", "typing_extensions", "packaging", "nvidia", "pynvml", "py_spy", "click", "rich",
    # launcher entry points, as py-spy names their scripts
    "torchrun", "torchx", "composer", "colossalai", "runpy",
})
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {"__main__"}

# Absolute paths that belong to installed code, never to the job's workspace.
_LIBRARY_PATH = re.compile(
    r"/(?:site|dist)-packages/"          # pip / conda / Debian installs, venvs included
    r"|/lib/python\d(?:\.\d+)?/"         # the standard library of any interpreter
    r"|/lib/pypy\d"
    r"|/(?:usr|opt|local|conda|venv|envs?)/(?:[^/]+/)*bin/[^/]+$"  # entry-point scripts (torchrun)
    r"|/torch/(?:distributed|nn|utils|_|autograd|cuda|optim|multiprocessing|csrc|fx|amp|jit|testing)"
)


# Compiled extensions and their sources (Cython): frames in them are never the job's Python code.
_COMPILED = (".pyx", ".pxd", ".pxi", ".so", ".pyd")


def is_library_path(path: str) -> bool:
    """True for installed or interpreter code: what a repair must never try to edit."""
    if not path or path.startswith("<") or path.endswith(_COMPILED):
        return True  # <frozen runpy>, <string>, <stdin>, a Cython module
    if path.startswith("/") or re.match(r"[A-Za-z]:[\\/]", path):
        return _LIBRARY_PATH.search(path.replace("\\", "/")) is not None
    first = path.replace("\\", "/").split("/", 1)[0]
    if "/" not in path and first.endswith(".py"):
        first = first[:-3]
    return first in KNOWN_LIBRARIES or first in _STDLIB


def under(path: str, workspace: str | None) -> bool:
    """``path`` lies inside ``workspace`` (both compared as normalised POSIX paths)."""
    if not workspace or not path.startswith("/"):
        return False
    root = posixpath.normpath(workspace)
    return posixpath.normpath(path).startswith(root.rstrip("/") + "/")


def is_user_path(path: str, workspace: str | None, *, strict: bool = True) -> bool:
    """Whether ``path`` is the job's own code.

    With a workspace and ``strict``, only files under it count. ``strict=False`` is the fallback
    when nothing in a traceback is under the workspace: then anything that is not library code counts.
    """
    if "/site-packages/" in path or "/dist-packages/" in path or path.endswith(_COMPILED):
        return False  # a virtualenv inside the workspace is still somebody else's code; so is a .pyx
    if workspace and strict and path.startswith("/"):
        return under(path, workspace)
    return not is_library_path(path)


def display_path(path: str, workspace: str | None) -> str:
    """The path relative to the workspace when it lies under it, else as printed."""
    if under(path, workspace):
        return posixpath.relpath(posixpath.normpath(path), posixpath.normpath(workspace or "/"))
    return path


_INSTALLED = re.compile(r"^.*/(?:site-packages|dist-packages|lib/python\d(?:\.\d+)?)/")


def stable_path(path: str, workspace: str | None) -> str:
    """A form of ``path`` that survives re-runs from other directories, nodes and mounts.

    The same file shows up as ``/workspace/models/mlp.py`` in a traceback, ``models/mlp.py`` in a
    shortened py-spy dump, ``/scratch/run7/models/mlp.py`` when the job is re-run from another
    scratch directory, and under another container mount on another node. What all of them share is
    the file's name, so a user file is keyed by its name alone (the function and the failing source
    line beside it in the signature keep two ``mlp.py`` apart). An installed file is keyed by its
    path inside the installation (``torch/nn/functional.py``), which no virtualenv location changes.
    """
    norm = path.replace("\\", "/")
    if m := _INSTALLED.match(norm):
        return norm[m.end():]
    return norm.rstrip("/").rsplit("/", 1)[-1]
