"""Properties of signatures: decorations and run-specific values never change them; a different
exception type or user function always does.

Two kinds of input: real corpus logs put through decorations a deployment adds (a launcher's rank
prefix, Docker timestamps, colours, CRLF line ends, progress-bar carriage returns), and failure
templates whose run-specific values (sizes, ranks, pids, addresses, ports, timestamps, temporary
paths, step counts, line numbers) are drawn by hypothesis.
"""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoenix_watchdog.diagnosis.diagnose import diagnose
from phoenix_watchdog.diagnosis.failure import ExitStatus
from phoenix_watchdog.diagnosis.logtext import split_log

LOGS = Path(__file__).resolve().parents[2] / "data" / "logs"
WS = "/workspace"
CORPUS = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in sorted(LOGS.glob("*.log")) if p.stat().st_size}
SINGLE_STREAM = sorted(n for n, t in CORPUS.items() if all(ln.stream is None for ln in split_log(t)))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sig(text: str) -> tuple[str, str]:
    d = diagnose(text, ExitStatus(code=1), workspace=WS)
    return d.signature, d.category


def lines_of(text: str) -> list[str]:
    return text.split("\n")


# ---- decorations ---------------------------------------------------------------------------------

prefixes = st.sampled_from(["[rank{r}]:", "[rank{r}]: ", "[default{r}]:", "{r}: ", "[1,{r}]<stderr>:", "node-a{r}:{r}: "])
ranks = st.integers(min_value=0, max_value=511)


@SETTINGS
@given(name=st.sampled_from(SINGLE_STREAM), prefix=prefixes, rank=ranks)
def test_one_launcher_prefix_on_every_line_changes_nothing(name: str, prefix: str, rank: int) -> None:
    tag = prefix.format(r=rank)
    decorated = "\n".join(tag + line for line in lines_of(CORPUS[name]))
    assert sig(decorated) == sig(CORPUS[name])


timestamps = st.builds(lambda d, h, m, s, ns: f"2025-0{d}-1{d}T{h:02d}:{m:02d}:{s:02d}.{ns:09d}Z ",
                       st.integers(1, 9), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59),
                       st.integers(0, 10**9 - 1))


@SETTINGS
@given(name=st.sampled_from(sorted(CORPUS)), stamps=st.lists(timestamps, min_size=1, max_size=5))
def test_docker_timestamps_change_nothing(name: str, stamps: list[str]) -> None:
    decorated = "\n".join(stamps[i % len(stamps)] + line for i, line in enumerate(lines_of(CORPUS[name])))
    assert sig(decorated) == sig(CORPUS[name])


colours = st.sampled_from(["\x1b[31m", "\x1b[1;31m", "\x1b[32m", "\x1b[0;36m", "\x1b[2K", "\x1b[38;5;196m"])


@SETTINGS
@given(name=st.sampled_from(sorted(CORPUS)), colour=colours, every=st.integers(1, 7), crlf=st.booleans())
def test_colours_and_line_ends_change_nothing(name: str, colour: str, every: int, crlf: bool) -> None:
    out = [f"{colour}{line}\x1b[0m" if i % every == 0 else line for i, line in enumerate(lines_of(CORPUS[name]))]
    decorated = ("\r\n" if crlf else "\n").join(out)
    assert sig(decorated) == sig(CORPUS[name])


@SETTINGS
@given(name=st.sampled_from(SINGLE_STREAM), steps=st.integers(1, 30), at=st.integers(0, 10**6))
def test_a_progress_bar_drawn_before_the_failure_changes_nothing(name: str, steps: int, at: int) -> None:
    lines = lines_of(CORPUS[name])
    starts = [i for i, line in enumerate(lines) if line.startswith(("Traceback", "Fatal Python", "bash:"))] or [len(lines)]
    i = starts[at % len(starts)]
    bar = "".join(f"\r{k * 100 // steps:3d}%|{'#' * (k * 10 // steps):10}| {k}/{steps} [00:0{k % 10}<00:00, {k}.5it/s]"
                  for k in range(1, steps + 1))
    glued = lines[:i] + [bar + (lines[i] if i < len(lines) else "")] + lines[i + 1:]
    assert sig("\n".join(glued)) == sig(CORPUS[name])


# ---- run-specific values -------------------------------------------------------------------------

OOM = """\
[2025-03-04 09:{mm:02d}:{ss:02d},{ms:03d}][train][INFO] - epoch {epoch} step {step} | loss {loss} | {rate} it/s
{p}Traceback (most recent call last):
{p}  File "/workspace/train.py", line {l1}, in <module>
{p}    main()
{p}  File "/workspace/train.py", line {l2}, in train_step
{p}    logits = model(batch["input_ids"])
{p}  File "/usr/local/lib/python3.10/dist-packages/torch/nn/modules/module.py", line 1747, in _call_impl
{p}    return forward_call(*args, **kwargs)
{p}  File "/workspace/models/transformer.py", line {l3}, in forward
{p}    scores = torch.matmul(q, k.transpose(-2, -1))
{p}torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {a1} GiB. GPU {gpu} has a total capacity of {a2} GiB of which {a3} MiB is free. Process {pid} has {a4} GiB memory in use. Of the allocated memory {a5} GiB is allocated by PyTorch, and {a6} MiB is reserved by PyTorch but unallocated.
"""

NCCL = """\
{p}[E{md} {hh:02d}:{mm:02d}:{ss:02d}.{ns:09d} ProcessGroupNCCL.cpp:{cpp}] [Rank {rank}] Watchdog caught collective operation timeout: WorkNCCL(SeqNum={seq}, OpType=ALLREDUCE, NumelIn={numel}, NumelOut={numel}, Timeout(ms)=600000) ran for {ran} milliseconds before timing out.
{p}terminate called after throwing an instance of 'c10::DistBackendError'
{p}  what():  [PG ID 0 PG GUID 0(default_pg) Rank {rank}] Process group watchdog thread terminated with exception: [Rank {rank}] Watchdog caught collective operation timeout
{p}Exception raised from checkTimeout at /pytorch/torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:{cpp} (most recent call first):
{p}frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x{off:x} (0x{addr:x} in /usr/local/lib/python3.10/dist-packages/torch/lib/libc10.so)
"""

MISSING = """\
{p}loading run config from /tmp/{tmp}/run.yaml (host {host}:{port})
{p}Traceback (most recent call last):
{p}  File "/workspace/resume.py", line {l1}, in load_checkpoint
{p}    state = torch.load(path)
{p}FileNotFoundError: [Errno 2] No such file or directory: '/tmp/{tmp}/ckpt/step_{step}.pt'
"""

XID = """\
{p}step {step} loss {loss}
[{day} {hh:02d}:{mm:02d}:{ss:02d} 2024] NVRM: Xid (PCI:0000:{bus:02x}:00): 79, pid={pid}, name=python3, GPU has fallen off the bus.
"""

DATALOADER = """\
{p}Traceback (most recent call last):
{p}  File "/workspace/train.py", line {l1}, in <module>
{p}    for batch in loader:
{p}  File "/usr/local/lib/python3.10/dist-packages/torch/utils/data/dataloader.py", line 1264, in _try_get_data
{p}    raise RuntimeError(f'DataLoader worker (pid(s) {{pids_str}}) exited unexpectedly') from e
{p}RuntimeError: DataLoader worker (pid(s) {pid}, {pid2}) exited unexpectedly
"""

TEMPLATES = {"oom": OOM, "nccl": NCCL, "missing": MISSING, "xid": XID, "dataloader": DATALOADER}
small = st.integers(0, 99)
values = st.fixed_dictionaries({
    "mm": st.integers(0, 59), "ss": st.integers(0, 59), "ms": st.integers(0, 999), "hh": st.integers(0, 23),
    "ns": st.integers(0, 10**9 - 1), "md": st.sampled_from(["0305", "1206", "0101"]), "epoch": small,
    "step": st.integers(0, 10**7), "loss": st.floats(0, 20, allow_nan=False).map(lambda x: f"{x:.4f}"),
    "rate": st.floats(0.1, 50).map(lambda x: f"{x:.2f}"), "l1": st.integers(1, 900), "l2": st.integers(1, 900),
    "l3": st.integers(1, 900), "a1": st.floats(0.01, 80).map(lambda x: f"{x:.2f}"), "gpu": st.integers(0, 7),
    "a2": st.sampled_from(["79.11", "39.39", "23.65", "139.81"]), "a3": st.floats(0, 999).map(lambda x: f"{x:.2f}"),
    "pid": st.integers(2, 4_194_304), "pid2": st.integers(2, 4_194_304),
    "a4": st.floats(0, 140).map(lambda x: f"{x:.2f}"), "a5": st.floats(0, 140).map(lambda x: f"{x:.2f}"),
    "a6": st.floats(0, 999).map(lambda x: f"{x:.2f}"), "cpp": st.integers(400, 2000), "rank": st.integers(0, 1023),
    "seq": st.integers(1, 10**7), "numel": st.integers(1, 10**10), "ran": st.integers(600_000, 10**8),
    "off": st.integers(16, 4096), "addr": st.integers(0x7F0000000000, 0x7FFFFFFFFFFF),
    "tmp": st.text(string.ascii_lowercase + string.digits + "_", min_size=8, max_size=8).map(lambda s: "tmp" + s),
    "host": st.from_regex(r"[a-z]{2,8}-[0-9]{1,3}", fullmatch=True), "port": st.integers(1024, 65535),
    "day": st.sampled_from(["Tue Mar  5", "Sat Aug 10", "Mon Jan 13"]), "bus": st.integers(0, 255),
    "p": st.sampled_from(["", "[rank3]:", "0: "]),
})
BASE = {"mm": 12, "ss": 6, "ms": 918, "hh": 3, "ns": 1, "md": "0305", "epoch": 3, "step": 11990, "loss": "2.1022",
        "rate": "3.43", "l1": 214, "l2": 98, "l3": 122, "a1": "2.00", "gpu": 0, "a2": "79.11", "a3": "1.06",
        "pid": 48213, "pid2": 48214, "a4": "78.04", "a5": "74.32", "a6": "2.91", "cpp": 616, "rank": 0, "seq": 7753,
        "numel": 544997376, "ran": 600061, "off": 150, "addr": 0x7F5A9616C1B6, "tmp": "tmpab12cd34",
        "host": "node-1", "port": 29500, "day": "Tue Mar  5", "bus": 0x3B, "p": ""}


@SETTINGS
@given(name=st.sampled_from(sorted(TEMPLATES)), v=values)
def test_run_specific_values_never_change_the_signature(name: str, v: dict) -> None:
    template = TEMPLATES[name]
    assert sig(template.format(**v)) == sig(template.format(**BASE))


# ---- different failures ---------------------------------------------------------------------------

BUG = "\n".join(lines_of(CORPUS["torch_shape_mismatch_b32.log"]))
identifiers = st.from_regex(r"[a-z_][a-z0-9_]{2,20}", fullmatch=True).filter(lambda s: s != "forward")
exception_types = st.sampled_from(["TypeError", "ValueError", "IndexError", "AssertionError", "NotImplementedError",
                                   "AttributeError", "ZeroDivisionError", "LookupError"])


@SETTINGS
@given(new_type=exception_types)
def test_another_exception_type_is_another_signature(new_type: str) -> None:
    changed = BUG.replace("RuntimeError: mat1 and mat2", f"{new_type}: mat1 and mat2")
    assert sig(changed)[0] != sig(BUG)[0]


@SETTINGS
@given(function=identifiers)
def test_another_user_function_is_another_signature(function: str) -> None:
    changed = BUG.replace('mlp.py", line 14, in forward', f'mlp.py", line 14, in {function}')
    assert sig(changed)[0] != sig(BUG)[0]
