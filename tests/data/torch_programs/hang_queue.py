"""The prefetch thread dies silently; the training loop then waits forever on an empty queue.

The stack dump of the hang shows the main thread blocked in queue.get (stdlib), so no code
patch is obviously the fix. SIGUSR1 makes faulthandler print all thread stacks.
"""

import faulthandler
import queue
import signal
import threading

import torch

faulthandler.register(signal.SIGUSR1, all_threads=True)


def prefetch(q: queue.Queue) -> None:
    for i in range(3):
        q.put(torch.randn(8, 8))
    # then the shard reader "fails" without raising: no more batches, no sentinel


def next_batch(q: queue.Queue) -> torch.Tensor:
    return q.get()


def train() -> None:
    q: queue.Queue = queue.Queue(maxsize=4)
    threading.Thread(target=prefetch, args=(q,), daemon=True).start()
    for step in range(1, 100):
        batch = next_batch(q)
        print(f"step {step} batch mean {batch.mean().item():.3f}", flush=True)


if __name__ == "__main__":
    train()
