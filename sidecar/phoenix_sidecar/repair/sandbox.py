"""The verification sandbox: the test command runs under bubblewrap, where it can write only its copy.

`probe` finds out once per process whether ``bwrap`` works here (container runtimes often forbid
the user namespaces it needs) by running ``true`` under exactly the flags verification uses.
`wrap` turns a test command into a bubblewrap command line: the system (``/usr``, ``/etc``,
``/lib*``, ``/bin``, ``/sbin``, ``/opt``, ``/sys``) and the Python prefixes and virtual
environments the command needs are bound read-only; the isolated copy and its scratch directory
are the only writable places; ``/tmp`` is a private, empty tmpfs; there is no network
(``--unshare-net``, only a private loopback), no view of other processes, and the sandbox dies
with Phoenix. The workspace and the user's home are not visible at all (a virtual environment
inside either is bound read-only on its own). Where no sandbox works, `writeguard` detects writes.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MODES = ("auto", "bubblewrap", "detect")  # the values of the ``sandbox`` setting
PROBE_TIMEOUT = 20.0
_SYSTEM = ("/usr", "/etc", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/opt", "/nix", "/sys")
_DEVICES = ("/dev/nvidia*", "/dev/dri", "/dev/kfd")
_PREFIX_VARS = ("VIRTUAL_ENV", "CONDA_PREFIX")


@dataclass(frozen=True)
class SandboxStatus:
    works: bool
    why: str  # what was found: the bwrap path, or why there is no sandbox

    def line(self) -> str:
        """The one-line statement for start-up and ``phoenix doctor``."""
        if self.works:
            return "sandbox: bubblewrap works"
        return f"sandbox: unavailable: {self.why}; writes are detected instead"


_lock = threading.Lock()
_probed: dict[str, SandboxStatus] = {}


def probe(mode: str = "auto", *, environ: Mapping[str, str] | None = None) -> SandboxStatus:
    """Whether verification can run under bubblewrap here (tried once per process, then remembered)."""
    if mode == "detect":
        return SandboxStatus(False, "switched off (sandbox: detect)")
    env = dict(os.environ if environ is None else environ)
    bwrap = shutil.which("bwrap", path=env.get("PATH", os.defpath))
    if bwrap is None:
        return SandboxStatus(False, "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)")
    with _lock:
        if bwrap not in _probed:
            _probed[bwrap] = _try(bwrap, env)
        return _probed[bwrap]


def _try(bwrap: str, env: dict[str, str]) -> SandboxStatus:
    true = shutil.which("true", path=env.get("PATH", os.defpath)) or "/bin/true"
    argv = wrap([true], bwrap=bwrap, writable=(), cwd=Path("/"), readable=(), environ=env)
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT,
                                env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SandboxStatus(False, f"bwrap could not be run: {exc}")
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        return SandboxStatus(False, f"bwrap fails here ({lines[-1] if lines else f'exit {result.returncode}'})")
    return SandboxStatus(True, bwrap)


def wrap(argv: Sequence[str], *, bwrap: str, writable: Sequence[Path], cwd: Path, readable: Sequence[Path],
         environ: Mapping[str, str]) -> list[str]:
    """The bubblewrap command line that runs ``argv`` in ``cwd`` with only ``writable`` writable."""
    out = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    for path in _SYSTEM:
        if os.path.isdir(path) and not os.path.islink(path):
            out += ["--ro-bind", path, path]
        elif os.path.islink(path):  # merged /usr: /bin -> usr/bin
            out += ["--symlink", os.readlink(path), path]
    out += ["--proc", "/proc", "--dev", "/dev"]
    for pattern in _DEVICES:  # accelerators, for test commands that use them
        for dev in sorted(glob.glob(pattern)):
            out += ["--dev-bind-try", dev, dev]
    out += ["--tmpfs", "/tmp"]
    system = tuple(p for p in _SYSTEM if os.path.isdir(p))
    covered = [*(Path(s) for s in system), *writable]
    for path in _dedupe([*readable, *python_prefixes(argv, environ)]):
        if not any(path == c or path.is_relative_to(c) for c in covered):
            out += ["--ro-bind-try", str(path), str(path)]
    for path in writable:
        out += ["--bind", str(path), str(path)]
    out += ["--chdir", str(cwd), "--", *argv]
    return out


def python_prefixes(argv: Sequence[str], environ: Mapping[str, str]) -> list[Path]:
    """The interpreter trees the command needs to read: Phoenix's, the active venv, the program's own."""
    found = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)]
    found += [Path(environ[v]) for v in _PREFIX_VARS if environ.get(v)]
    if argv:
        program = shutil.which(argv[0], path=environ.get("PATH", os.defpath))
        if program is not None:
            for candidate in (Path(program), Path(os.path.realpath(program))):
                home = candidate.parent.parent
                if (home / "pyvenv.cfg").is_file() or (home / "conda-meta").is_dir():
                    found.append(home)
                else:
                    found.append(candidate.parent)
    for entry in environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry and os.path.isabs(entry):
            found.append(Path(entry))
    return [Path(os.path.realpath(p)) for p in found if p.is_absolute() and p.exists()]


def _dedupe(paths: Sequence[Path]) -> list[Path]:
    ordered = sorted(set(paths), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for p in ordered:
        if not any(p == k or p.is_relative_to(k) for k in kept):
            kept.append(p)
    return kept
