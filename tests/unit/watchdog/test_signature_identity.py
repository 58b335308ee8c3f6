"""What a signature keys on: the same failure in this job, wherever and after whatever edit it ran.

Same: re-run from another scratch directory, node or container mount; unrelated lines inserted
above the failing line (what a repair does). Different: another failing line, another function,
another unrecognised error, an OOM somewhere else in the library.
"""

from __future__ import annotations

from phoenix_watchdog.diagnosis import ExitStatus, diagnose


def trace(root: str, line: int = 57, source: str = "out = self.proj(x) @ self.weight.t()",
          func: str = "forward", error: str = "RuntimeError: mat1 and mat2 shapes cannot be multiplied (8x64 and 32x16)") -> str:
    return "\n".join([
        "Traceback (most recent call last):",
        f'  File "{root}/train.py", line 88, in <module>',
        "    main()",
        f'  File "{root}/train.py", line 71, in main',
        "    loss = model(batch).sum()",
        '  File "/opt/venv/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1773, in _call_impl',
        "    return forward_call(*args, **kwargs)",
        f'  File "{root}/models/head.py", line {line}, in {func}',
        f"    {source}",
        error,
    ]) + "\n"


def sig(text: str, workspace: str | None = "/workspace", exit: ExitStatus | None = ExitStatus(code=1)) -> str:
    return diagnose(text, exit, workspace=workspace).signature


def test_another_directory_node_or_mount_is_the_same_failure() -> None:
    here = sig(trace("/workspace"))
    assert sig(trace("/scratch/u42/job-7781/src")) == here         # the workspace given is not where it ran
    assert sig(trace("/scratch/u42/job-9902/src"), "/scratch/u42/job-9902/src") == here
    assert sig(trace("/mnt/nfs/home/ana/proj"), None) == here      # no workspace known at all


def test_lines_inserted_above_do_not_split_a_failure() -> None:
    assert sig(trace("/workspace", line=57)) == sig(trace("/workspace", line=59))


def test_another_failing_line_or_function_is_another_failure() -> None:
    base = sig(trace("/workspace"))
    assert sig(trace("/workspace", source="out = self.gate(x) @ self.weight.t()")) != base
    assert sig(trace("/workspace", func="project")) != base


def test_paths_in_messages_keep_only_their_tail() -> None:
    a = trace("/workspace", error="FileNotFoundError: [Errno 2] No such file or directory: '/scratch/u1/run3/data/val.csv'")
    b = trace("/workspace", error="FileNotFoundError: [Errno 2] No such file or directory: '/lustre/u1/run9/data/val.csv'")
    c = trace("/workspace", error="FileNotFoundError: [Errno 2] No such file or directory: '/lustre/u1/run9/data/train.csv'")
    assert sig(a) == sig(b) != sig(c)


def test_unrecognised_failures_are_keyed_on_their_last_error_line() -> None:
    one = "loading\nstep 1\nfatal: shard index 3 is corrupt\n"
    two = "loading\nstep 1\nfatal: tokenizer vocabulary mismatch\n"
    again = "loading\nstep 9\nfatal: shard index 12 is corrupt\n"
    assert diagnose(one, ExitStatus(code=3)).category == "unknown"
    assert sig(one) != sig(two)
    assert sig(one) == sig(again)


def test_a_trailer_every_failure_ends_with_does_not_merge_unrecognised_failures() -> None:
    def failure(words: str, step: int = 120, rank: int = 0) -> str:
        return (f"[rank{rank}]: step {step} loss 2.11\n[rank{rank}]: {words}\n[rank{rank}]: fatal: training aborted\n"
                f"srun: error: n{rank + 1}: task {rank}: Exited with exit code 1\n")
    pool = failure("MemPool::grow: requested 4294967296 bytes on device 0, 1073741824 free")
    shard = failure("shard reader: record 8812 has checksum 0x1f2e but header says 0x91ab")
    quota = failure("checkpoint writer: could not write /ckpt/step5000/model.bin: project quota exhausted")
    assert diagnose(pool, ExitStatus(code=1)).category == "unknown"
    assert len({sig(pool), sig(shard), sig(quota)}) == 3
    # The same failure at another step, on another rank, with other sizes: one signature.
    again = failure("MemPool::grow: requested 2147483648 bytes on device 3, 536870912 free", step=4410, rank=1)
    assert sig(pool) == sig(again)
    # A step report printed just before the error is progress, not part of what failed.
    later = pool.replace("step 120 loss 2.11", "epoch 2 iter 7/900 loss 1.93")
    assert sig(pool) == sig(later)


def test_cuda_ooms_without_a_user_frame_differ_by_where_in_the_library() -> None:
    def oom(func: str) -> str:
        return "\n".join([
            "Traceback (most recent call last):",
            '  File "/opt/venv/lib/python3.11/site-packages/accelerate/launch.py", line 10, in main',
            "    run()",
            f'  File "/opt/venv/lib/python3.11/site-packages/transformers/trainer.py", line 2000, in {func}',
            "    x()",
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
        ]) + "\n"
    assert sig(oom("training_step")) != sig(oom("evaluation_loop"))
    assert sig(oom("training_step")) == sig(oom("training_step").replace("2.00 GiB", "1.50 GiB"))
