"""Category rules for Python exceptions, and the strength scale every piece of evidence is ranked on.

`classify_error` maps one exception (type, message, frames) to a category and a *key*: the part of
its identity that goes into the signature besides the code location. `classify_chain` does it for
a chained traceback and picks the root.

Root of a chain. Python prints the original exception first and the one that ended the program
last. The original cause is the root: a wrapper (``raise RuntimeError("load failed") from e``,
hydra's ``InstantiationException``) repeats less than the exception it wraps, and an exception
raised while handling another (a logging call that fails inside ``except``) happens *because* of
the first. Two corrections: plumbing exceptions (``queue.Empty``, ``StopIteration``) that merely set
the stage are skipped, and when the root only says "bug", "outage" or nothing, a later link that
reports a fact about the machine (CUDA OOM, disk full, a dead DataLoader worker, NCCL) becomes the
root: it is what a human needs to read first.

Strength. Evidence from the whole log is ranked on one scale; the strongest wins:
hardware (90) explains every error after it; a host OOM kill (85) and a full disk (80) are facts
about the machine; a Python exception that ended the run (70); the same facts seen only in log
lines (60); native crashes (50); an NCCL timeout (42) or error (40), usually the *consequence* of
another rank dying; aborts without a reason (35); a kill signal without OOM evidence (30); an
exception line printed without a traceback (28); an exception the process survived (25, see `diagnose`); a launcher summary, an interrupt, or an error
that only says a peer went away (15-20). A hang is not ranked: the supervisor's verdict decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from phoenix_watchdog.diagnosis.pytrace import PyError, SourceFrame
from phoenix_watchdog.diagnosis.rulebook import BUILTIN
from phoenix_watchdog.diagnosis.rules import Rule, match_line
from phoenix_watchdog.diagnosis.signature import normalise
from phoenix_watchdog.diagnosis.usercode import is_user_path, under

HARDWARE, HOST_OOM, DISK, EXCEPTION, LINE = 90, 85, 80, 70, 60
NATIVE_CRASH, NCCL_TIMEOUT, NCCL, ABORT, KILLED, BARE, SECONDARY = 50, 42, 40, 35, 30, 28, 15

# Facts about the machine: a later link of a chain that reports one overrides a generic root.
RESOURCE = frozenset({"gpu_hardware", "host_oom", "disk_full", "cuda_oom", "cuda_illegal_access",
                      "dataloader", "nccl_timeout", "nccl_error"})
_PLUMBING = frozenset({"Empty", "StopIteration", "StopAsyncIteration", "GeneratorExit",
                       "ExceptionGroup", "BaseExceptionGroup"})  # a group only carries its members
_DIST_TYPES = frozenset({"DistError", "DistBackendError", "DistNetworkError", "DistStoreError", "DistQueueEmptyError"})
_PIPE_ERRORS = frozenset({"ConnectionResetError", "ConnectionRefusedError", "BrokenPipeError", "EOFError"})
_LAUNCHER = frozenset({"ChildFailedError", "SignalException", "KeyboardInterrupt", "SystemExit"})
_NETWORK = frozenset({"ConnectionError", "ConnectionResetError", "ConnectionRefusedError",
                      "ConnectionAbortedError", "RemoteDisconnected", "MaxRetryError", "ReadTimeout",
                      "ConnectTimeout", "ReadTimeoutError", "NewConnectionError", "URLError",
                      "gaierror", "timeout", "SSLError", "ProxyError", "ChunkedEncodingError"})
_CONFIG_MODULES = ("yaml.", "omegaconf.", "hydra.", "configparser.", "tomllib.", "toml.", "jsonschema.",
                   "pydantic", "json.decoder.", "argparse.")
_CONFIG_TYPE = re.compile(r"Config|YAML|Yaml|JSONDecode|TOMLDecode|Interpolation|MissingMandatoryValue"
                          r"|ScannerError|ParserError|ConstructorError|OverrideParse")
_CONFIG_NAME = re.compile(r"(?i)config|conf\b|cfg|settings|hparam|hyperparam|parse_args|args\b|options|opts\b")
_CONFIG_OWNER = (r"\b(?:cfg|config|conf|configs|hparams|hps|hp|args|opt|opts|options|settings|environ|"
                 r"cfg_\w+|\w+_cfg|\w+_config)\b")  # not `params`: in JAX/Flax/torch code it is the model's weights
_CONFIG_ACCESS = re.compile(_CONFIG_OWNER + r"\s*(?:\[|\.get\(|\.\w)")
_CONFIG_SPLAT = re.compile(r"\*\*\s*" + _CONFIG_OWNER)  # a call that passes the configuration on: f(**cfg)
_CHILD_SIGNAL = re.compile(r"died with <Signals\.(?P<name>SIG[A-Z]+): \d+>|terminated with signal (?P<name2>SIG[A-Z]+)")
_CONFIG_FILE = re.compile(r"(?i)(?:^|_)(?:args|arguments|config|configuration|options|settings|hparams)\.py$")
_VALIDATOR = re.compile(r"__post_init__|__init__|_?(?:validate|check|verify|assert)\w*|_\w*assertion\w*")
_MISSING_NAME = re.compile(r"^['\"](?P<name>[^'\"]+)['\"]$|has no attribute '(?P<attr>\w+)'")
_MISSING_KEY = re.compile(r"^Missing key (?P<key>\w+)|^Key '(?P<key2>\w+)' is not in struct|has no attribute '(?P<attr>\w+)'")
_CONFIG_OBJECT = re.compile(r"'(?:Namespace|DictConfig|ListConfig|ConfigDict|EasyDict|AttrDict)' object")
# An attribute missing on a plain value (``cfg["lr"].item()`` on a float, ``args.epochs.bar`` on an
# int) is a misspelled method of that value, whatever the line reads it from. (None is left out:
# ``cfg.model.depth`` on a missing section is the configuration's fault.)
_VALUE_OBJECT = re.compile(r"^'(?:int|float|str|bool|bytes|complex|list|tuple|set|dict|Tensor|ndarray)' object "
                           r"has no attribute")

HARDWARE_TEXT = re.compile(
    r"uncorrectable ECC error|ECC error encountered|ECC_UNCORRECTABLE|ECCUncorrectable|double bit ECC"
    r"|GPU is lost|GPU_IS_LOST|fallen off the bus|unspecified launch failure|uncorrectable NVLink error"
    r"|No CUDA GPUs are available|no CUDA-capable device is detected|Found no NVIDIA driver")
# torch.save onto a full disk never says so: the zip writer reports a short write ("unexpected pos")
# and the stream layer "basic_ios::clear: iostream error" (seen writing to /dev/full).
DISK_TEXT = re.compile(r"No space left on device|\[Errno 28\]|\bENOSPC\b|Disk quota exceeded|\[Errno 122\]"
                       r"|PytorchStreamWriter failed writing file|file write failed"
                       r"|inline_container\.cc:\d+\] \. unexpected pos|basic_ios::clear: iostream error")
HOST_OOM_TEXT = re.compile(r"DefaultCPUAllocator: can't allocate memory|\[Errno 12\] Cannot allocate memory"
                           r"|Unable to allocate [\d.]+ [KMGTP]?i?B for an array")
CUDA_OOM_TEXT = re.compile(r"CUDA out of memory|CUDA error: out of memory|HIP out of memory"
                           r"|CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED|cudaErrorMemoryAllocation")
ILLEGAL_TEXT = re.compile(r"an illegal memory access was encountered|an illegal instruction was encountered"
                          r"|misaligned address|invalid program counter|cudaErrorIllegalAddress"
                          r"|CUDA_ERROR_ILLEGAL_ADDRESS")
DEVICE_ASSERT_TEXT = re.compile(r"device-side assert(?:ion)? triggered|\.cu:\d+: .*Assertion `.*` failed")
NCCL_TIMEOUT_TEXT = re.compile(r"Watchdog caught collective operation timeout|collective operation timeout")
NCCL_TEXT = re.compile(r"\bnccl[A-Z]\w*Error\b|NCCL error|NCCL WARN|Some NCCL operations have failed"
                       r"|NCCL communicator was aborted|ProcessGroupNCCL|NCCL INFO \S+:\d+ -> [1-6]\b")
# NCCL's result codes (nccl.h), named by number in its unwind chain (``NCCL INFO proxy.cc:698 -> 6``)
# and by ncclGetErrorString's text in torch's "NCCL error in: ..., unhandled system error".
# ncclInProgress (7) is not a failure: non-blocking communicators return it routinely.
NCCL_RESULTS = {1: "ncclUnhandledCudaError", 2: "ncclSystemError", 3: "ncclInternalError",
                4: "ncclInvalidArgument", 5: "ncclInvalidUsage", 6: "ncclRemoteError"}
NCCL_UNWIND = re.compile(r"NCCL INFO \S+:\d+ -> (?P<code>[1-6])\b")
_NCCL_CODE = re.compile(r"\bnccl(?:UnhandledCuda|System|Internal|InvalidArgument|InvalidUsage|Remote)Error\b")
_NCCL_ANY_CODE = re.compile(r"\bnccl[A-Z]\w*Error\b")  # compiled once: nccl_key runs per storm line
NCCL_RESULT_TEXTS = (("unhandled cuda error", 1), ("unhandled system error", 2), ("internal error", 3),
                      ("invalid argument", 4), ("invalid usage", 5), ("remote process exited", 6))
PEER_TEXT = re.compile(r"Connection (?:closed|reset) by (?:remote )?peer|remote process exit|ncclRemoteError"
                       r"|remote worker crash|Broken pipe")
DISTRIBUTED_CONTEXT = re.compile(r"gloo|nccl|NCCL|c10d|ProcessGroup|pair\.cc|TCPStore|rendezvous")
DATALOADER_TEXT = re.compile(
    r"DataLoader worker \(pids?(?:\(s\))? [\d, ]+\) (?:exited unexpectedly|is killed by signal: ?[\w ]+)"
    r"|Unexpected (?:bus error|segmentation fault|floating point exception) encountered in worker"
    r"|DataLoader timed out after|insufficient shared memory")
NAN_TEXT = re.compile(
    r"returned (?:nan|inf) values|\b(?:loss|grad(?:ient)?s?(?:[ _]norm)?|total norm)\b[^\n]{0,40}?"
    r"\b(?:nan|inf|non-finite|not finite)\b|\bnon-finite loss|\bnan (?:loss|detected)|detected (?:nan|inf)\b"
    r"|Minimum loss scale reached", re.I)
# In plain log lines only the loss itself counts: fp16 loss scaling logs inf gradient norms routinely.
NAN_LINE_TEXT = re.compile(
    r"(?<![A-Za-z0-9])loss(?:es)?\b['\"]?\s*(?:[:=]|is|was|became|becomes|of|value)?\s*(?:-?inf(?:inite)?|nan)\b"
    r"|returned (?:nan|inf) values|\bnon-finite loss|\bnan loss|became infinite or nan|Minimum loss scale reached", re.I)
_FINITE_CHECK = re.compile(r"^assert\b.*\b(?:isfinite|isnan|isinf|isneginf|isposinf)\(")
_MISSING_MODULE = re.compile(r"No module named '(?P<mod>[\w.]+)'")
_CANNOT_IMPORT = re.compile(r"cannot import name '(?P<name>\w+)' from '(?P<mod>[\w.]+)'(?: \((?P<path>[^)]*)\))?")
_NATIVE_DEP = re.compile(r"cannot open shared object file|undefined symbol|DLL load failed|requires the \w+ library"
                         r"|Torch not compiled with CUDA enabled|no kernel image is available for execution")
_MISSING_FILE_TEXT = re.compile(r"\[Errno 2\]|No such file or directory|does not appear to have a file named")


@dataclass(frozen=True)
class Verdict:
    """What one exception (or a whole chain) says. ``category`` None: it says nothing by itself."""

    category: str | None
    key: str
    secondary: bool = False  # a consequence of another failure (peer died, launcher, interrupt)
    vague: bool = False      # says little ("a bug", "an outage", "a pipe broke"): a later link may say more
    rule: Rule | None = None  # the table rule that decided, if one did (for --explain)


@dataclass(frozen=True)
class ChainVerdict:
    category: str | None
    key: str
    secondary: bool
    root: PyError      # the exception reported as the failure
    decider: PyError   # the exception whose rule decided the category
    rule: Rule | None = None


def user_frames(frames: tuple[SourceFrame, ...], workspace: str | None, strict: bool = True) -> list[SourceFrame]:
    return [f for f in frames if is_user_path(f.file, workspace, strict=strict)]


def classify_chain(chain: tuple[PyError, ...], workspace: str | None,
                   rules: tuple[Rule, ...] = BUILTIN) -> ChainVerdict:
    """The category of a chained traceback and its root exception (see the module docstring)."""
    strict = _any_under(chain, workspace)
    verdicts = [classify_error(e, workspace, strict, rules) for e in chain]
    root_i = next((i for i, e in enumerate(chain) if e.short_type not in _PLUMBING), len(chain) - 1)
    if verdicts[root_i].category is None or verdicts[root_i].vague:
        # A vague root yields to a later link that states a fact about the machine, and that
        # link becomes the root: "DataLoader worker is killed by signal" says more than the
        # ConnectionResetError its dead pipe raised first.
        root_i = next((i for i in range(root_i + 1, len(chain))
                       if verdicts[i].category in RESOURCE and not verdicts[i].vague), root_i)
    chosen = root_i
    if verdicts[chosen].category is None:  # launcher / interrupt only: anything better further down?
        chosen = next((i for i in range(len(chain) - 1, -1, -1) if verdicts[i].category), chosen)
    v = verdicts[chosen]
    return ChainVerdict(v.category, v.key, v.secondary, chain[root_i], chain[chosen], v.rule)


def traceback_strength(v: ChainVerdict) -> int:
    """The rank of a traceback that ended a process: infrastructure categories rank as their facts do."""
    if v.category is None:
        return SECONDARY  # a launcher's summary or an interrupt says nothing by itself
    strength = {"gpu_hardware": HARDWARE, "disk_full": DISK, "nccl_timeout": NCCL_TIMEOUT,
                "nccl_error": NCCL}.get(v.category, EXCEPTION)
    return min(strength, SECONDARY + 5) if v.secondary else strength


def classify_error(err: PyError, workspace: str | None, strict: bool = True,
                   rules: tuple[Rule, ...] = BUILTIN) -> Verdict:
    """The category rule that matches one exception; code_bug when none does.

    The rule table (`rules`: the user's rules, then the shipped ones) is consulted first, against
    the exception line as printed; then the built-in rules below.
    """
    t, full, text = err.short_type, err.type, err.text
    if t in _PLUMBING or t in _LAUNCHER or (t == "CalledProcessError" and "non-zero exit status" in text):
        # A launcher's report (torchrun, accelerate launch, a wrapper's check=True) that a child
        # failed: the child's own output says why; this says nothing by itself.
        return Verdict(None, t, secondary=True)
    if t == "CalledProcessError" and _from_launcher(err, workspace, strict):
        # The same report raised by a launcher's own code (deepspeed's, torch.distributed.launch),
        # whatever its (often cut) message says: never above the child's own evidence.
        v = _child_signal(text)
        return Verdict(v.category, v.key, secondary=True) if v else Verdict(None, t, secondary=True)
    if found := match_line(rules, f"{err.type}: {text}"):
        rule, m = found
        return Verdict(str(rule.category), rule.signature_key(m, normalise(err.message, workspace)), rule=rule)
    if v := _child_signal(text):
        # A report that a child process died of a signal (multiprocessing.spawn, subprocess
        # check=True): the failure is the signal, as if the job itself had died of it.
        return v
    if m := HARDWARE_TEXT.search(text):
        return Verdict("gpu_hardware", hardware_key(m.group(0)))
    if DISK_TEXT.search(text):
        return Verdict("disk_full", "disk_full")
    if t in ("MemoryError", "_ArrayMemoryError") or HOST_OOM_TEXT.search(text):
        return Verdict("host_oom", "host_oom")
    if t.endswith("OutOfMemoryError") or CUDA_OOM_TEXT.search(text):
        return Verdict("cuda_oom", "cuda_oom")
    if DEVICE_ASSERT_TEXT.search(text):
        return Verdict("code_bug", "device-side assert")
    if m := ILLEGAL_TEXT.search(text):
        return Verdict("cuda_illegal_access", m.group(0).lower())
    distributed = full.startswith("torch.distributed") or t in _DIST_TYPES
    if NCCL_TIMEOUT_TEXT.search(text) or (t == "DistStoreError" and "timed out" in text.lower()):
        return Verdict("nccl_timeout", "nccl_timeout")
    if distributed or NCCL_TEXT.search(text) or (PEER_TEXT.search(text) and DISTRIBUTED_CONTEXT.search(text)):
        return Verdict("nccl_error", nccl_key(text), secondary=bool(PEER_TEXT.search(text)))
    if m := DATALOADER_TEXT.search(text):
        return Verdict("dataloader", dataloader_key(m.group(0)))
    if t in _PIPE_ERRORS and any("/torch/utils/data/" in f.file or f.file.startswith("torch/utils/data/")
                                 for f in err.frames):
        return Verdict("dataloader", "worker_died", vague=True)  # the worker's end of the pipe is gone
    if t == "FloatingPointError" or NAN_TEXT.search(text):
        return Verdict("nan_divergence", normalise(err.message))
    if t == "AssertionError" and _asserts_finite(err, workspace, strict):
        return Verdict("nan_divergence", normalise(err.message) or "non-finite")
    if t in _NETWORK or full.startswith(("requests.", "urllib3.", "httpx.")):
        return Verdict("unknown", f"network:{t}", vague=True)  # an outage, not a bug: restart, never patch
    dep = _dependency_verdict(err, workspace, strict)
    if dep is not None:
        return dep
    if t in ("FileNotFoundError", "NotADirectoryError", "IsADirectoryError") or (
            t in ("OSError", "IOError", "RuntimeError", "ValueError") and _MISSING_FILE_TEXT.search(text)):
        return Verdict("missing_file", normalise(err.message, workspace))
    if _calls_missing_method(err, workspace, strict):
        return Verdict("code_bug", normalise(err.message, workspace), vague=True)
    if _is_config_error(err, workspace, strict):
        return Verdict("config_error", normalise(err.message, workspace))
    return Verdict("code_bug", normalise(err.message, workspace), vague=True)


_LAUNCHER_FILES = re.compile(r"(?:^|/)(?:deepspeed/launcher/|torch/distributed/(?:launch|run)\.py$"
                             r"|torch/distributed/elastic/|accelerate/commands/|torch/multiprocessing/spawn\.py$)")


def _from_launcher(err: PyError, workspace: str | None, strict: bool) -> bool:
    """Whether ``err`` was raised in a launcher's own code with no user frame on the way."""
    return bool(err.frames) and not user_frames(err.frames, workspace, strict) and bool(
        _LAUNCHER_FILES.search(err.frames[-1].file.replace("\\", "/")))


def _child_signal(text: str) -> Verdict | None:
    """What a report that a child died of a signal says (``died with <Signals.SIGSEGV: 11>``)."""
    if m := _CHILD_SIGNAL.search(text):
        name = m["name"] or m["name2"]
        if name == "SIGKILL":
            return Verdict("unknown", "signal:SIGKILL")
        if name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT"):
            return Verdict("segfault", f"signal:{name}")
    return None


def hardware_key(text: str) -> str:
    t = text.lower()
    for word, key in (("ecc", "ecc"), ("lost", "gpu_lost"), ("fallen", "gpu_lost"), ("launch", "launch_failure"),
                      ("nvlink", "nvlink"), ("no cuda", "no_gpu"), ("driver", "no_gpu")):
        if word in t:
            return key
    return t


def dataloader_key(text: str) -> str:
    """What became of the DataLoader worker; how the death was reported (pid list, signal name,
    "exited" or "killed") varies between recurrences of the same failure."""
    t = text.lower()
    if "bus error" in t or "shared memory" in t:
        return "shm"
    if "segmentation fault" in t or "floating point" in t:
        return "worker_crashed"
    if "timed out" in t:
        return "timeout"
    return "worker_died"


def nccl_key(text: str) -> str:
    """The NCCL result code when named (``ncclRemoteError``), else the kind of transport failure."""
    m = _NCCL_CODE.search(text) or _NCCL_ANY_CODE.search(text)
    if m:
        return m.group(0)
    if m := NCCL_UNWIND.search(text):
        return NCCL_RESULTS[int(m["code"])]
    if "NCCL error" in text:
        low = text.lower()
        for words, code in NCCL_RESULT_TEXTS:
            if words in low:
                return NCCL_RESULTS[code]
    if PEER_TEXT.search(text):
        return "peer_closed"
    return "nccl"


def _any_under(chain: tuple[PyError, ...], workspace: str | None) -> bool:
    return bool(workspace) and any(under(f.file, workspace) for e in chain for f in e.frames)


def _dependency_verdict(err: PyError, workspace: str | None, strict: bool) -> Verdict | None:
    """A missing or broken third-party package, or an import error inside the user's own modules."""
    t, text = err.short_type, err.text
    if t in ("PackageNotFoundError", "DistributionNotFound", "VersionConflict") or _NATIVE_DEP.search(text):
        return Verdict("missing_dependency", normalise(err.message))
    if t not in ("ModuleNotFoundError", "ImportError"):
        return None
    if m := _CANNOT_IMPORT.search(text):
        path = m["path"] or ""
        own = is_user_path(path, workspace, strict=strict) if path.startswith("/") else _is_user_module(
            m["mod"], err, workspace, strict)
        if own:
            return Verdict("code_bug", normalise(err.message, workspace))
        return Verdict("missing_dependency", f"module:{m['mod'].split('.')[0]}")
    if m := _MISSING_MODULE.search(text):
        if _is_user_module(m["mod"], err, workspace, strict):
            return Verdict("code_bug", normalise(err.message, workspace))
        return Verdict("missing_dependency", f"module:{m['mod'].split('.')[0]}")
    return Verdict("missing_dependency", normalise(err.message))


def _is_user_module(module: str, err: PyError, workspace: str | None, strict: bool) -> bool:
    """Whether ``module``'s top-level package is one of the user's own (seen in the user frames)."""
    top = module.split(".")[0]
    for f in user_frames(err.frames, workspace, strict):
        parts = f.file.replace("\\", "/").split("/")
        if top in parts[:-1] or parts[-1] == f"{top}.py":
            return True
    return False


def _calls_missing_method(err: PyError, workspace: str | None, strict: bool) -> bool:
    """Whether the missing key or attribute is *called* on the failing line (``cfg.pretty()``).

    A config object that lacks a method the code calls is an API the code relies on and the
    library removed: a code bug, however config-shaped the exception (omegaconf's "Missing key").
    """
    m = _MISSING_KEY.search(err.message)
    if m is None or not err.frames:
        return False
    name = m["key"] or m["key2"] or m["attr"]
    frame = (user_frames(err.frames, workspace, strict) or list(err.frames))[-1]
    return re.search(rf"\.{re.escape(name)}\s*\(", frame.source) is not None
def _asserts_finite(err: PyError, workspace: str | None, strict: bool) -> bool:
    """Whether the failed assertion is the job's own check that its numbers are finite
    (``assert torch.isfinite(loss).all()``, ``assert not math.isnan(loss)``)."""
    frames = user_frames(err.frames, workspace, strict)
    return bool(frames) and _FINITE_CHECK.search(frames[-1].source) is not None


def _validates_config(frame: SourceFrame) -> bool:
    """Whether the innermost frame is an arguments/config class checking what it was given."""
    name = frame.file.replace("\\", "/").rsplit("/", 1)[-1]
    return bool(_CONFIG_FILE.search(name) and _VALIDATOR.fullmatch(frame.function))


def _config_reads(source: str, name: str) -> bool:
    """Whether ``source`` reads ``name`` from a config-looking object (``cfg["lr"]``, ``args.lr``)."""
    n = re.escape(name)
    path = r"(?:\s*(?:\[[^\]]*\]|\.\w+|\.get\([^)]*\)))*?"  # cfg["optim"]["lr"], args.opt.lr
    final = rf"\s*(?:\[\s*['\"]{n}['\"]|\.get\(\s*['\"]{n}['\"]|\.{n}\b|\[\s*[A-Za-z_][\w.]*\s*\])"  # or cfg[key]
    return re.search(_CONFIG_OWNER + path + final, source) is not None


def _is_config_error(err: PyError, workspace: str | None, strict: bool) -> bool:
    """An exception raised while reading configuration (a config library, or a config-shaped access)."""
    if err.type.startswith(_CONFIG_MODULES) or _CONFIG_TYPE.search(err.short_type):
        return True
    if err.short_type not in ("KeyError", "AttributeError", "ValueError", "TypeError", "AssertionError"):
        return False
    if err.short_type == "AttributeError" and _CONFIG_OBJECT.search(err.message):
        return True
    if err.short_type in ("ValueError", "AssertionError") and err.frames and _validates_config(err.frames[-1]):
        return True  # a library's own check of its arguments (TrainingArguments, a DeepSpeed config)
    if err.short_type in ("ValueError", "AssertionError") and err.frames and err.frames[-1].function == "__post_init__":
        return True  # a dataclass (the usual shape of a training config) rejecting the values it was given
    frames = user_frames(err.frames, workspace, strict)
    if not frames:
        return False
    inner = frames[-1]
    if err.short_type == "AttributeError" and _VALUE_OBJECT.search(err.message):
        return False
    if err.short_type == "TypeError" and "unexpected keyword argument" in err.message and _CONFIG_SPLAT.search(inner.source):
        return True  # the configuration holds a key the callee does not take (renamed or removed in a new version)
    if err.short_type in ("KeyError", "AttributeError") and _CONFIG_ACCESS.search(inner.source):
        # Only when the missing name is the one read from the configuration: ``self.model.trian()``
        # on a line that also reads ``cfg.epochs`` is a misspelled method, not a bad config.
        missing = _MISSING_NAME.search(err.message)
        return missing is None or _config_reads(inner.source, missing["name"] or missing["attr"])
    return bool(_CONFIG_NAME.search(inner.function) or _CONFIG_NAME.search(inner.file.rsplit("/", 1)[-1]))
