"""Log formats the normaliser reads generically: prefixes learnt from their shape, glued progress
output, boxed and innermost-first tracebacks, bare exception lines.

Every example is written here in the format's own shape (not copied from anywhere): a traceback
from one small job, decorated as each logger, launcher or runtime would decorate it.
"""

from __future__ import annotations

import pytest

from phoenix_watchdog.diagnosis import ExitStatus, diagnose
from phoenix_watchdog.diagnosis.logtext import split_log
from phoenix_watchdog.diagnosis.prefixes import find_prefix

TRACE = [
    "Traceback (most recent call last):",
    '  File "/workspace/train.py", line 41, in <module>',
    "    main()",
    '  File "/workspace/train.py", line 33, in main',
    "    loss = step(model, batch)",
    '  File "/workspace/train.py", line 20, in step',
    "    return model.forwrd(batch)",
    "AttributeError: 'Net' object has no attribute 'forwrd'",
]
PROGRESS = [f"step {i} loss {2.0 - i / 100:.3f}" for i in range(6)]


def decorate(prefix: str, lines: list[str]) -> str:
    return "".join(prefix.format(i=i) + ln + "\n" for i, ln in enumerate(lines))


def assert_code_bug(text: str) -> None:
    d = diagnose(text, ExitStatus(code=1), workspace="/workspace")
    assert d.category == "code_bug", d.summary
    assert d.exception == "AttributeError"
    assert d.frame is not None and (d.frame.file, d.frame.function) == ("train.py", "step")


PREFIXES = {
    "logging timestamp and level": "2026-02-11 08:15:{i:02d},417 ERROR ",
    "bracketed level": "[ERROR] ",
    "stderr tag": "[stderr] ",
    "host name": "trn-node-04: ",
    "host and task in brackets": "[trn-node-04:3]: ",
    "kubernetes CRI": "2026-02-11T08:15:{i:02d}.123456789Z stderr F ",
    "docker timestamp": "2026-02-11T08:15:{i:02d}.123456789Z ",
    "srun --label": "3: ",
    "loguru": "2026-02-11 08:15:{i:02d}.417 | ERROR    | __main__:run:88 - ",
    "syslog-ish time and level in brackets": "[08:15:{i:02d}] [ERROR] ",
    "syslog": "Feb 11 08:15:{i:02d} trn-node-04 python3[8812]: ",
    "journald with an ISO time": "2026-02-11T08:15:{i:02d}+0000 trn-node-04 train[8812]: ",
    "ray worker": "(RayTrainWorker pid=8812, ip=10.4.0.17) ",
    "time, then a rank prefix": "[2026-02-11 08:15:{i:02d}] [rank2]: ",
    "time and worker between bars": "08:15:{i:02d} | worker-3 | ",
}


@pytest.mark.parametrize("prefix", PREFIXES.values(), ids=list(PREFIXES))
def test_a_repeated_prefix_is_found_by_its_shape(prefix: str) -> None:
    assert_code_bug(decorate(prefix, PROGRESS + TRACE))


def test_the_prefix_names_the_stream_so_interleaved_hosts_read_apart() -> None:
    a = [f"trn-node-04: {ln}" for ln in TRACE]
    b = [f"trn-node-11: step {i}" for i in range(len(TRACE))]
    mixed = [x for pair in zip(a, b) for x in pair]
    lines = split_log("\n".join(mixed))
    assert {ln.stream for ln in lines} == {"trn-node-04", "trn-node-11"}
    assert_code_bug("\n".join(mixed))


@pytest.mark.parametrize("lines", [
    ["loss: 0.41", "loss: 0.39", "loss: nan", "loss: nan"],            # a metric name, not a host
    ["ValueError: one", "ValueError: two", "ValueError: three"],         # exception lines stay whole
    ["Epoch 1: 100%", "Epoch 2: 100%", "Epoch 3: 100%"],
])
def test_words_that_only_look_like_prefixes_stay(lines: list[str]) -> None:
    assert [ln.text for ln in split_log("\n".join(lines))] == lines


def test_a_prefix_on_few_lines_is_left_alone() -> None:
    assert find_prefix(["[stderr] one", "plain", "[stderr] two"]) is None


def test_a_progress_bar_glued_to_a_kill_message_is_split() -> None:
    text = "Training:  41%|████      | 410/1000 [01:02<01:30,  6.52it/s]Killed\n"
    assert [ln.text for ln in split_log(text)][-1] == "Killed"
    d = diagnose(text, ExitStatus(code=137), workspace="/workspace")
    assert "Killed" in d.evidence[0]


RICH = """\
╭───────────────────── Traceback (most recent call last) ──────────────────────╮
│ /workspace/train.py:33 in main                                               │
│                                                                              │
│   30 │   for batch in loader:                                                │
│ ❱ 33 │   │   loss = step(model, batch)                                       │
│   34 │   │   loss.backward()                                                 │
│                                                                              │
│ /workspace/train.py:20 in step                                               │
│                                                                              │
│   19 │   def step(model, batch):                                             │
│ ❱ 20 │   │   return model.forwrd(batch)                                      │
│                                                                              │
│ ╭─────── locals ────────╮                                                    │
│ │ batch = tensor([...]) │                                                    │
│ ╰───────────────────────╯                                                    │
╰──────────────────────────────────────────────────────────────────────────────╯
AttributeError: 'Net' object has no attribute 'forwrd'
"""


def test_a_rich_box_is_read_as_a_traceback() -> None:
    assert_code_bug(RICH)
    d = diagnose(RICH, ExitStatus(code=1), workspace="/workspace")
    assert d.frame is not None and d.frame.line == 20


LOGURU = """\
2026-02-11 08:15:03.417 | ERROR    | __main__:run:88 - An error has been caught in function 'run', process 'MainProcess' (4242), thread 'MainThread' (1401):
Traceback (most recent call last):

  File "/workspace/train.py", line 33, in main
    loss = step(model, batch)
    │      │    │      └ {'x': tensor([1.])}
    │      │    └ Net()
    │      └ <function step at 0x7f3a2b1c>
    └ None

> File "/workspace/train.py", line 20, in step
    return model.forwrd(batch)
           └ Net()

AttributeError: 'Net' object has no attribute 'forwrd'
"""


def test_a_loguru_backtrace_is_read() -> None:
    assert_code_bug(LOGURU)


def test_frames_printed_innermost_first_are_reversed() -> None:
    text = "\n".join([
        "Traceback (most recent call first):",
        '  File "/workspace/train.py", line 20, in step',
        "    return model.forwrd(batch)",
        '  File "/workspace/train.py", line 33, in main',
        "    loss = step(model, batch)",
        "AttributeError: 'Net' object has no attribute 'forwrd'",
    ])
    assert_code_bug(text)


def test_a_bare_exception_line_is_evidence() -> None:
    text = "\n".join([*PROGRESS, "Evaluation aborted.", "ValueError: expected 3 channels, got 4", "exiting"])
    d = diagnose(text, ExitStatus(code=1), workspace="/workspace")
    assert (d.category, d.exception, d.patchable) == ("code_bug", "ValueError", False)
    other = diagnose(text.replace("3 channels, got 4", "a positive lr"), ExitStatus(code=1), workspace="/workspace")
    assert other.signature != d.signature


def test_a_bare_resource_error_line_names_its_category() -> None:
    text = "loading shards\nMemoryError: Unable to allocate 12.0 GiB for an array\n"
    assert diagnose(text, ExitStatus(code=1)).category == "host_oom"


def test_a_kill_outranks_a_bare_line_printed_earlier() -> None:
    text = "UserWarning is fine\nKeyError: 'optional_field'\nstep 1\nstep 2\nKilled\n"
    assert diagnose(text, ExitStatus(signal=9)).category == "unknown"


@pytest.mark.parametrize(("text", "category", "key"), [
    ("zsh: segmentation fault (core dumped)  python train.py --bs 64", "segfault", "signal:SIGSEGV"),
    ("zsh: killed     python train.py", "unknown", "signal:SIGKILL"),
    ("Exception: process 1 terminated with signal SIGKILL", "unknown", "signal:SIGKILL"),
    ("worker 3 died with <Signals.SIGKILL: 9>.", "unknown", "signal:SIGKILL"),
    ("ERROR:torch.distributed.elastic.multiprocessing.api:failed (exitcode: -9) local_rank: 0 (pid: 8812) of binary: "
     "/usr/bin/python3", "unknown", "signal:SIGKILL"),
    ("  traceback : Signal 9 (SIGKILL) received by PID 8812", "unknown", "signal:SIGKILL"),
    ("Process finished with exit code 139 (interrupted by signal 11: SIGSEGV)", "segfault", "signal:SIGSEGV"),
    ("subprocess.CalledProcessError: died with <Signals.SIGSEGV: 11>.", "segfault", "signal:SIGSEGV"),
])
def test_kills_in_all_spellings(text: str, category: str, key: str) -> None:
    from phoenix_watchdog.diagnosis.logtext import LogLine
    from phoenix_watchdog.diagnosis.markers import classify_line
    f = classify_line(LogLine(0, text, None))
    assert f is not None and (f.category, f.key) == (category, key), f


@pytest.mark.parametrize("text", [
    "Sending process 8813 closing signal SIGTERM",
    "failed (exitcode: -15) local_rank: 1 (pid: 8813)",   # the agent stopping a healthy peer
    "the worker was killed by the scheduler? no: checking",
])
def test_peers_stopped_by_the_agent_are_not_kills(text: str) -> None:
    from phoenix_watchdog.diagnosis.logtext import LogLine
    from phoenix_watchdog.diagnosis.markers import classify_line
    assert classify_line(LogLine(0, text, None)) is None


# ---- messages from other frameworks and tools -------------------------------------------------------

FRAMEWORK_MESSAGES = [
    ("jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate 8589934592 bytes.",
     "cuda_oom"),
    ("tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor with shape[64,4096,4096]",
     "cuda_oom"),
    ("cupy_backends.cuda.api.runtime.CUDARuntimeError: cudaErrorIllegalAddress: an illegal memory access was encountered",
     "cuda_illegal_access"),
    ("numba.cuda.cudadrv.driver.CudaAPIError: [2] Call to cuMemAlloc results in CUDA_ERROR_OUT_OF_MEMORY", "cuda_oom"),
    ("RuntimeError: [../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 1800000ms for recv "
     "operation to complete", "nccl_timeout"),
    ("RuntimeError: CUDA error: invalid device ordinal", "config_error"),
    ("OSError: [Errno 5] Input/output error: '/mnt/ckpt/step_900/optimizer.pt'", "disk_full"),
    ("RuntimeError: unable to write to file </torch_3121_881726_7>: No space left on device (28)", "dataloader"),
    ("lightning.fabric.utilities.exceptions.MisconfigurationException: You requested gpu: [4] but only 2 are visible",
     "config_error"),
    ("AssertionError: Check batch related parameters. train_batch_size is not equal to micro_batch_per_gpu * "
     "gradient_acc_step * world_size 32 != 2 * 4 * 2", "config_error"),
    ("Current loss scale already at minimum - cannot decrease scale anymore. Exiting run.", "nan_divergence"),
]


def _with_traceback(message: str) -> str:
    return "\n".join([
        "Traceback (most recent call last):",
        '  File "/workspace/train.py", line 12, in <module>',
        "    run()",
        message,
    ]) + "\n"


@pytest.mark.parametrize(("text", "category"), FRAMEWORK_MESSAGES)
def test_messages_of_other_frameworks_as_lines_and_as_exceptions(text: str, category: str) -> None:
    assert diagnose(f"step 1\n{text}\n", ExitStatus(code=1)).category == category
    assert diagnose(_with_traceback(text), ExitStatus(code=1), workspace="/workspace").category == category


def test_an_overflow_cascade_is_divergence_and_one_overflow_is_not() -> None:
    one = "step 1\nGradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 32768.0\nstep 2\n"
    assert diagnose(one, ExitStatus(code=1)).category != "nan_divergence"
    many = "".join(f"[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: {2 ** (16 - i)}, reducing to "
                   f"{2 ** (15 - i)}\nGradient overflow. Skipping step, loss scaler 0 reducing loss scale to {2 ** (15 - i)}\n"
                   for i in range(12))
    assert diagnose(many, ExitStatus(code=1)).category == "nan_divergence"


def test_a_loss_that_blows_up_without_printing_nan_is_divergence() -> None:
    losses = [2.3, 2.1, 2.0, 1.9, 1.9, 1.8, 1.8, 1.7, 5.2, 310.0, 8.4e4, 3.1e7]
    text = "".join(f"epoch 0 step {i * 50} loss {v:.4g} lr 3e-4\n" for i, v in enumerate(losses))
    assert diagnose(text, ExitStatus(code=1)).category == "nan_divergence"
    calm = "".join(f"epoch 0 step {i * 50} loss {v:.4g} lr 3e-4\n" for i, v in enumerate(losses[:8]))
    assert diagnose(calm, ExitStatus(code=1)).category != "nan_divergence"


def test_a_teardown_traceback_does_not_outrank_the_error_that_ended_the_program() -> None:
    text = "\n".join([
        *TRACE,
        "Exception ignored in: 'h5py._objects.ObjectID.__dealloc__'",
        "Traceback (most recent call last):",
        '  File "h5py/_objects.pyx", line 201, in h5py._objects.ObjectID.__dealloc__',
        "RuntimeError: Can't decrement id ref count (unable to close file, errno = 9, error message = 'Bad file descriptor')",
    ]) + "\n"
    assert_code_bug(text)


def test_a_cython_file_is_not_user_code() -> None:
    text = "\n".join([
        "Traceback (most recent call last):",
        '  File "/workspace/train.py", line 40, in load',
        "    ds = open_shards(path)",
        '  File "/workspace/fastio/reader.pyx", line 88, in fastio.reader.open_shards',
        "ValueError: shard header is truncated",
    ]) + "\n"
    d = diagnose(text, ExitStatus(code=1), workspace="/workspace")
    assert d.frame is not None and (d.frame.file, d.frame.function) == ("train.py", "load")


@pytest.mark.parametrize(("source", "message", "category"), [
    ("model.trian(args.epochs)", "'Net' object has no attribute 'trian'", "code_bug"),
    ('scheduler.stpe(cfg["warmup"])', "'LambdaLR' object has no attribute 'stpe'", "code_bug"),
    ("epochs = args.epochs", "'Namespace' object has no attribute 'epochs'", "config_error"),
    ('lr = cfg["optim"]["lr"]', "'lr'", "config_error"),
])
def test_a_config_access_on_the_line_does_not_make_every_error_there_a_config_error(
        source: str, message: str, category: str) -> None:
    kind = "KeyError" if message.startswith("'lr'") else "AttributeError"
    text = "\n".join([
        "Traceback (most recent call last):",
        '  File "/workspace/train.py", line 30, in fit',
        f"    {source}",
        f"{kind}: {message}",
    ]) + "\n"
    assert diagnose(text, ExitStatus(code=1), workspace="/workspace").category == category


@pytest.mark.parametrize("text", [
    "".join(f"{{'loss': {v}, 'grad_norm': 1.2, 'learning_rate': 4.9e-05, 'epoch': 0.{i}}}\n"
            for i, v in enumerate(["2.31", "2.2", "2.1", "nan", "nan"])),              # Trainer's metric dicts
    "".join(f"{{'loss': {v}, 'learning_rate': 4.9e-05, 'epoch': 0.{i}}}\n"
            for i, v in enumerate(["2.31", "2.2", "2.1", "2.0", "2.0", "1.9", "1.8", "310.2", "8.1e4", "2.2e7"])),
    "Epoch 3: 100%|##########| 50/50 [00:02<00:00, 20.1it/s, v_num=0, train_loss=nan]\n" * 3,  # Lightning's bar
])
def test_divergence_in_framework_metric_lines(text: str) -> None:
    assert diagnose(text, ExitStatus(code=1)).category == "nan_divergence"


def test_a_launchers_nonzero_exit_report_does_not_outrank_the_childs_error() -> None:
    text = "\n".join([
        "Traceback (most recent call last):",
        '  File "/workspace/finetune.py", line 98, in main',
        '    tokens = tokenize(example["txt"])',
        "KeyError: 'txt'",
        "Traceback (most recent call last):",
        '  File "/usr/local/bin/accelerate", line 8, in <module>',
        "    sys.exit(main())",
        '  File "/usr/local/lib/python3.10/dist-packages/accelerate/commands/launch.py", line 1168, in simple_launcher',
        "    raise subprocess.CalledProcessError(returncode=process.returncode, cmd=cmd)",
        "subprocess.CalledProcessError: Command '['/usr/bin/python3', 'finetune.py']' returned non-zero exit status 1.",
    ]) + "\n"
    d = diagnose(text, ExitStatus(code=1), workspace="/workspace")
    assert (d.category, d.exception) == ("code_bug", "KeyError")
