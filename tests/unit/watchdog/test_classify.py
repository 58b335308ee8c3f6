"""Category rules: one exception, a chain, one log line, an exit status, torchrun's summary."""

from __future__ import annotations

import pytest

from phoenix_watchdog.diagnosis.classify import classify_chain, classify_error
from phoenix_watchdog.diagnosis.failure import ExitStatus
from phoenix_watchdog.diagnosis.launcher import find_root_cause
from phoenix_watchdog.diagnosis.logtext import LogLine, split_log
from phoenix_watchdog.diagnosis.markers import classify_line, exit_findings
from phoenix_watchdog.diagnosis.pytrace import PyError, SourceFrame

WS = "/ws"
USER = (SourceFrame("/ws/train.py", 10, "main", "train(cfg)"),)
LIB = SourceFrame("/usr/lib/python3.11/site-packages/torch/nn/functional.py", 5, "linear", "")


def err(type_: str, message: str = "", *details: str, frames: tuple[SourceFrame, ...] = USER) -> PyError:
    return PyError(type_, message, details, frames)


@pytest.mark.parametrize(("type_", "message", "details", "category"), [
    ("torch.OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB.", (), "cuda_oom"),
    ("RuntimeError", "CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 10.92 GiB total capacity)", (), "cuda_oom"),
    ("RuntimeError", "CUDA error: out of memory", (), "cuda_oom"),
    ("RuntimeError", "CUDA error: an illegal memory access was encountered", ("CUDA kernel errors might be",), "cuda_illegal_access"),
    ("RuntimeError", "CUDA error: device-side assert triggered", (), "code_bug"),
    ("RuntimeError", "CUDA error: uncorrectable ECC error encountered", (), "gpu_hardware"),
    ("RuntimeError", "CUDA error: unspecified launch failure", (), "gpu_hardware"),
    ("RuntimeError", "No CUDA GPUs are available", (), "gpu_hardware"),
    ("torch.distributed.DistBackendError", "NCCL error in: x.cpp:275, unhandled cuda error",
     ("ncclUnhandledCudaError: Call to CUDA function failed.",), "nccl_error"),
    ("RuntimeError", "[Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=5)", (), "nccl_timeout"),
    ("torch.distributed.DistStoreError", "Timed out after 901 seconds waiting for clients. 1/2 clients joined.", (), "nccl_timeout"),
    ("RuntimeError", "DataLoader worker (pid(s) 2871) exited unexpectedly", (), "dataloader"),
    ("RuntimeError", "DataLoader worker (pid 2871) is killed by signal: Bus error. It is possible that", (), "dataloader"),
    ("ConnectionResetError", "[Errno 104] Connection reset by peer", (), "unknown"),  # no DataLoader frame
    ("RuntimeError", "Function 'SqrtBackward0' returned nan values in its 0th output.", (), "nan_divergence"),
    ("ValueError", "Loss is NaN at step 1200", (), "nan_divergence"),
    ("FloatingPointError", "Loss became infinite or NaN at iteration=4619!", (), "nan_divergence"),
    ("OSError", "[Errno 28] No space left on device", (), "disk_full"),
    ("RuntimeError", "[enforce fail at inline_container.cc:672] . unexpected pos 1088 vs 982", (), "disk_full"),
    ("MemoryError", "", (), "host_oom"),
    ("RuntimeError", "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried", (), "host_oom"),
    ("ModuleNotFoundError", "No module named 'flash_attn'", (), "missing_dependency"),
    ("pkg_resources.DistributionNotFound", "The 'apex>=0.1' distribution was not found", (), "missing_dependency"),
    ("ImportError", "libcudnn.so.9: cannot open shared object file: No such file or directory", (), "missing_dependency"),
    ("ImportError", "cannot import name 'Foo' from 'transformers' (/usr/lib/python3/dist-packages/transformers/__init__.py)", (), "missing_dependency"),
    ("ImportError", "cannot import name 'MLPv2' from 'models.mlp' (/ws/models/mlp.py)", (), "code_bug"),
    ("FileNotFoundError", "[Errno 2] No such file or directory: 'ckpt.pt'", (), "missing_file"),
    ("yaml.scanner.ScannerError", "mapping values are not allowed here", (), "config_error"),
    ("omegaconf.errors.ConfigKeyError", "Key 'lr' is not in struct", (), "config_error"),
    ("json.decoder.JSONDecodeError", "Expecting value: line 1 column 1 (char 0)", (), "config_error"),
    ("AttributeError", "'Namespace' object has no attribute 'lr'", (), "config_error"),
    ("requests.exceptions.ConnectionError", "Connection aborted.", (), "unknown"),
    ("ZeroDivisionError", "division by zero", (), "code_bug"),
])
def test_exception_rules(type_: str, message: str, details: tuple[str, ...], category: str) -> None:
    assert classify_error(err(type_, message, *details), WS).category == category


def test_a_missing_module_of_the_users_own_package_is_a_bug() -> None:
    frames = (SourceFrame("/ws/train.py", 3, "<module>", "from mypkg.layers import Attn"),
              SourceFrame("/ws/mypkg/__init__.py", 1, "<module>", "from .utils import x"))
    assert classify_error(err("ModuleNotFoundError", "No module named 'mypkg.utils'", frames=frames), WS).category == "code_bug"


@pytest.mark.parametrize(("source", "function", "category"), [
    ('lr = cfg["optimizer"]["lr"]', "build_optimizer", "config_error"),
    ("lr = config.get('lr')", "main", "config_error"),
    ('y = batch["labels"]', "training_step", "code_bug"),
    ("x = table[key]", "load_config", "config_error"),  # the function's name says it reads config
])
def test_key_errors_in_config_access_are_config_errors(source: str, function: str, category: str) -> None:
    e = err("KeyError", "'lr'", frames=(SourceFrame("/ws/train.py", 5, function, source),))
    assert classify_error(e, WS).category == category


def test_peer_and_launcher_errors_are_consequences() -> None:
    peer = err("RuntimeError", "[../gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:11964")
    assert classify_error(peer, WS).category == "nccl_error" and classify_error(peer, WS).secondary
    launcher = err("torch.distributed.elastic.multiprocessing.errors.ChildFailedError", "")
    assert classify_error(launcher, WS).category is None and classify_error(launcher, WS).secondary
    # a web API that resets the connection is an outage, not NCCL
    web = err("ConnectionResetError", "[Errno 104] Connection reset by peer")
    assert classify_error(web, WS).category == "unknown"


def test_the_root_of_a_chain_is_the_original_cause() -> None:
    yaml_err = err("yaml.scanner.ScannerError", "mapping values are not allowed here")
    wrapper = err("ConfigLoadFailed", "cannot parse /ws/cfg.yaml")
    v = classify_chain((yaml_err, wrapper), WS)
    assert (v.category, v.root.type) == ("config_error", "yaml.scanner.ScannerError")
    key_error = err("KeyError", "'lr'", frames=(SourceFrame("/ws/t.py", 5, "lr_of", 'return cfg["lr"]'),))
    handler_bug = err("NameError", "name 'log' is not defined")
    v = classify_chain((key_error, handler_bug), WS)
    assert (v.category, v.root.short_type) == ("config_error", "KeyError")


def test_plumbing_is_skipped_and_machine_facts_override_a_generic_root() -> None:
    empty = err("_queue.Empty", "")
    died = err("RuntimeError", "DataLoader worker (pid(s) 12) exited unexpectedly")
    v = classify_chain((empty, died), WS)
    assert (v.category, v.root.message) == ("dataloader", died.message)
    generic = err("RuntimeError", "training step failed")
    oom = err("torch.OutOfMemoryError", "CUDA out of memory.")
    v = classify_chain((generic, oom), WS)
    assert (v.category, v.root.type) == ("cuda_oom", oom.type)
    # a dead worker's pipe raises first; the DataLoader's report of the death is the root
    reset = err("ConnectionResetError", "[Errno 104] Connection reset by peer")
    killed = err("RuntimeError", "DataLoader worker (pid 21057) is killed by signal: Killed.")
    v = classify_chain((reset, killed), WS)
    assert (v.category, v.root.type, v.root.message) == ("dataloader", "RuntimeError", killed.message)


def line(text: str, index: int = 0) -> LogLine:
    return LogLine(index, text, None)


@pytest.mark.parametrize(("text", "category", "key"), [
    ("NVRM: Xid (PCI:0000:3b:00): 79, pid=48213, name=python3, GPU has fallen off the bus.", "gpu_hardware", "xid:79"),
    ("[Dec 2 11:38:47] NVRM: Xid (PCI:0000:07:00): 48, pid='<unknown>', name=<unknown>, An uncorrectable double bit error",
     "gpu_hardware", "xid:48"),
    ("NVRM: Xid (PCI:0000:cb:00): 13, pid='<unknown>', name=<unknown>, Graphics SM Warp Exception", "cuda_illegal_access", "xid:13"),
    ("Unable to determine the device handle for GPU0000:3B:00.0: GPU is lost.  Reboot the system", "gpu_hardware", "gpu_lost"),
    ("Memory cgroup out of memory: Killed process 48213 (python3) total-vm:184212340kB", "host_oom", "host_oom"),
    ("OSError: [Errno 28] No space left on device", "disk_full", "disk_full"),
    ("[Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1, OpType=ALLREDUCE)", "nccl_timeout", "nccl_timeout"),
    ("ncclRemoteError: A call failed possibly due to a network error or a remote process exiting prematurely.",
     "nccl_error", "ncclRemoteError"),
    ("host:1:2 [1] misc/socket.cc:538 NCCL WARN Net : Connection closed by remote peer", "nccl_error", "peer_closed"),
    ("Fatal Python error: Segmentation fault", "segfault", "signal:SIGSEGV"),
    ("bash: line 1:  6519 Segmentation fault      /usr/bin/python segfault.py", "segfault", "signal:SIGSEGV"),
    ("  traceback : Signal 11 (SIGSEGV) received by PID 16594", "segfault", "signal:SIGSEGV"),
    ("terminate called after throwing an instance of 'c10::Error'", "segfault", "signal:SIGABRT"),
    ("bash: line 1:  6539 Killed                  /usr/bin/python sigkill.py", "unknown", "signal:SIGKILL"),
    ("Killed", "unknown", "signal:SIGKILL"),
    ("loss is nan at step 1200, stopping training", "nan_divergence", "loss is nan at step N, stopping training"),
    ("ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory (shm).",
     "dataloader", "shm"),
    ("train.py: error: unrecognized arguments: --batch_size 64", "config_error", "unrecognized arguments: --batch_size N"),
    ("../aten/src/ATen/native/cuda/Indexing.cu:1289: indexSelectLargeIndex: block: [1,0,0], thread: [32,0,0] "
     "Assertion `srcIndex < srcSelectDimSize` failed.", "code_bug", "device-side assert"),
])
def test_line_markers(text: str, category: str, key: str) -> None:
    f = classify_line(line(text))
    assert f is not None and (f.category, f.key) == (category, key)


@pytest.mark.parametrize("text", [
    "NVRM: Xid (PCI:0000:3b:00): 45, pid=48213, name=python3, Ch 00000008",  # cleanup after any crash
    "host:1:2 [1] NCCL WARN Could not find real path of /sys/class/net/eth0",  # harmless warning
    "frame #2: c10d::ProcessGroupNCCL::watchdogHandler() + 0x222 (0x7ff9 in libtorch_cuda.so)",
    "step 1200 | loss 0.41 | grad_norm inf | lr 3e-4",  # fp16 loss scaling skips such steps
    "| GPU  Name   Persistence-M | Bus-Id   Disp.A | Volatile Uncorr. ECC |",
    "INFO: downloading info.json",
])
def test_lines_that_are_not_failures(text: str) -> None:
    assert classify_line(line(text)) is None


@pytest.mark.parametrize(("exit", "category", "key"), [
    (ExitStatus(code=137), "unknown", "signal:SIGKILL"),
    (ExitStatus(signal=9, oom_killed=True), "host_oom", "host_oom"),
    (ExitStatus(code=139), "segfault", "signal:SIGSEGV"),
    (ExitStatus(signal=7), "segfault", "signal:SIGBUS"),
    (ExitStatus(code=134), "segfault", "signal:SIGABRT"),
    (ExitStatus(signal=15), "unknown", "signal:SIGTERM"),
])
def test_exit_status_evidence(exit: ExitStatus, category: str, key: str) -> None:
    findings = exit_findings(exit, 7)
    assert (findings[0].category, findings[0].key, findings[0].pos) == (category, key, 7)


def test_plain_exit_codes_say_nothing() -> None:
    assert exit_findings(ExitStatus(code=1), 0) == [] and exit_findings(None, 0) == []


def test_torchrun_root_cause_with_signal() -> None:
    text = """Root Cause (first observed failure):
[0]:
  time      : 2026-11-24_18:35:43
  host      : node-a17
  rank      : 5 (local_rank: 1)
  exitcode  : -11 (pid: 16594)  (SIGSEGV)
  error_file: <N/A>
  traceback : Signal 11 (SIGSEGV) received by PID 16594
======================================================="""
    root = find_root_cause(split_log(text))
    assert root is not None
    assert (root.rank, root.local_rank, root.exitcode, root.signal) == (5, 1, -11, 11)
    assert root.streams == {"rank5", "local1"} and root.traceback is None
    assert root.describe() == "rank 5 (local_rank 1) exitcode -11 (SIGSEGV)"


def test_torchrun_root_cause_with_the_workers_traceback() -> None:
    text = """Root Cause (first observed failure):
[0]:
  rank      : 1 (local_rank: 1)
  exitcode  : 1 (pid: 16500)
  error_file: /tmp/torchelastic_x/attempt_0/1/error.json
  traceback : Traceback (most recent call last):
    File "/ws/ddp.py", line 9, in step
      raise ValueError(f"bad batch {rank}")
  ValueError: bad batch 1
  
============================================================"""
    root = find_root_cause(split_log(text))
    assert root is not None and root.traceback is not None
    assert (root.traceback.type, root.traceback.message, root.traceback.frames[-1].function) == ("ValueError", "bad batch 1", "step")
    assert find_root_cause(split_log("nothing here")) is None


@pytest.mark.parametrize("text", [
    "[2025-03-04 09:12:06,918][train][INFO] - epoch 3 step 11990 | loss 2.1022 | lr 2.9e-04 | 3.43 it/s",
    "{'loss': 1.6921, 'grad_norm': 0.8812, 'learning_rate': 1.9e-05, 'epoch': 0.42}",
    "Epoch 3: 100%|##########| 1251/1251 [04:10<00:00,  5.00it/s, v_num=95nc]",
    "INFO:root:saving checkpoint to checkpoints/step_12000.pt",
])
def test_ordinary_progress_lines_do_not_reach_the_marker_rules(text: str) -> None:
    # The trigger scan is what keeps long logs cheap: the bulk of a log must not pass it.
    from phoenix_watchdog.diagnosis.markers import _TRIGGER
    assert _TRIGGER.search(text) is None


@pytest.mark.parametrize(("type_", "message", "source", "function", "category"), [
    # a misspelled method of a value read from the config is a code bug, not a config error
    ("AttributeError", "'float' object has no attribute 'item'", 'lr = cfg["lr"].item()', "main", "code_bug"),
    ("AttributeError", "'int' object has no attribute 'bar'", "n = args.epochs.bar", "main", "code_bug"),
    ("AttributeError", "'Namespace' object has no attribute 'warmup'", "w = args.warmup", "main", "config_error"),
    ("KeyError", "'TRACKER_API_TOKEN'", 'token = os.environ["TRACKER_API_TOKEN"]', "login", "config_error"),
    ("ValueError", "batch_size (32) must equal grad_accum (3) * micro_batch (8)", "raise ValueError(msg)",
     "__post_init__", "config_error"),
    ("AssertionError", "", "assert torch.isfinite(loss).all()", "check", "nan_divergence"),
    ("AssertionError", "", "assert x.shape[0] == batch", "check", "code_bug"),
])
def test_what_the_failing_line_reads_decides(type_: str, message: str, source: str, function: str, category: str) -> None:
    frames = (SourceFrame("/ws/train.py", 3, function, source),)
    assert classify_error(err(type_, message, frames=frames), WS).category == category
