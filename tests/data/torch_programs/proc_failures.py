"""Processes that die rather than raise: kills, native crashes, child processes, and signals from outside.

--mode oom_kill:   the job grows its host buffers and is SIGKILLed (as the kernel OOM killer does);
--mode segv:       a native extension reads a null pointer (SIGSEGV);
--mode spawn_raise / spawn_segv: torch.multiprocessing.spawn, one worker raises / crashes;
--mode sub_kill:   a preprocessing child started with subprocess.run(check=True) is SIGKILLed;
--mode pool_kill:  a ProcessPoolExecutor worker is SIGKILLed while it runs a task;
--mode pool_raise / futures_raise: a multiprocessing.Pool / ProcessPoolExecutor task raises (the
                   worker's traceback comes back as a RemoteTraceback);
--mode abort:      a native library aborts (SIGABRT), with faulthandler on;
--mode forever:    trains until a signal from outside (the generator sends SIGTERM or SIGINT:
                   a scheduler's preemption, a user's Ctrl-C);
--tqdm:            progress goes through a tqdm bar on stderr, as most training loops do.
"""

import argparse
import concurrent.futures
import ctypes
import os
import signal
import subprocess
import sys
import time

import torch
import torch.multiprocessing as mp


def fused_gelu_kernel(x: torch.Tensor) -> torch.Tensor:
    ctypes.string_at(0)  # the extension dereferences a null pointer
    return x


def grow_cache(step: int, cache: list) -> None:
    cache.append(torch.zeros(1 << 16))
    if step == 4:
        os.kill(os.getpid(), signal.SIGKILL)


def spawn_worker(rank: int, mode: str, size: int) -> None:
    x = torch.ones(size)
    for step in range(3):
        print(f"worker {rank} step {step} norm {x.norm().item():.2f}", flush=True)
    if rank == 1:
        if mode == "spawn_segv":
            fused_gelu_kernel(x)
        raise ValueError(f"worker {rank}: shard {rank * 7} has {size - 1} samples, expected {size}")


def tokenize_shard(shard: int) -> int:
    if shard == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return shard * 10


def parse_record(line: str) -> tuple[str, int]:
    text, label = line.rsplit("\t", 1)
    return text, int(label)


def preprocess(shards: int) -> None:
    code = "import os, signal; print('tokenizing', flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    for shard in range(shards):
        subprocess.run([sys.executable, "-c", code], check=True)


def steps(n: int, use_tqdm: bool):
    if not use_tqdm:
        return range(1, n + 1)
    from tqdm import tqdm
    return tqdm(range(1, n + 1), desc="train", mininterval=0, ncols=80)


def main(a: argparse.Namespace) -> None:
    torch.manual_seed(a.seed)
    cache: list = []
    if a.mode in ("spawn_raise", "spawn_segv"):
        mp.spawn(spawn_worker, args=(a.mode, a.size), nprocs=a.nprocs)
        return
    if a.mode == "sub_kill":
        preprocess(3)
    rows = [f"sample {i}\t{i % 3}" for i in range(a.size)] + ["corrupted row without a label"]
    if a.mode == "pool_raise":
        import multiprocessing
        with multiprocessing.Pool(2) as pool:
            print(len(pool.map(parse_record, rows)))
    if a.mode == "futures_raise":
        with concurrent.futures.ProcessPoolExecutor(2) as pool:
            print(len(list(pool.map(parse_record, rows))))
    if a.mode == "abort":
        import faulthandler
        faulthandler.enable()
        os.abort()
    if a.mode == "pool_kill":
        with concurrent.futures.ProcessPoolExecutor(2) as pool:
            print(sum(pool.map(tokenize_shard, range(a.size))))
    for step in steps(10_000 if a.mode == "forever" else 6, a.tqdm):
        loss = 1.0 / (step + a.seed)
        if not a.tqdm:
            print(f"step {step} loss {loss:.4f}", flush=True)
        if a.mode == "oom_kill":
            grow_cache(step, cache)
        if a.mode == "segv" and step == 3:
            fused_gelu_kernel(torch.ones(a.size))
        time.sleep(0.2)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--mode", required=True)
    p.add_argument("--size", type=int, default=8)
    p.add_argument("--nprocs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tqdm", action="store_true")
    main(p.parse_args())
