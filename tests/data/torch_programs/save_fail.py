"""Checkpoints and metrics that cannot be written: the storage fails under the real write path.

enospc_np / enospc_json: writes that reach /dev/full, which answers every write with ENOSPC;
eio / quota: torch.save into a file whose writes fail as a flaky network filesystem's do (EIO) or
as a full user quota does (EDQUOT) - the errors come from the file object torch.save writes to.
"""

import argparse
import errno
import io
import json
import os

import numpy as np
import torch

from models.mlp import MLP


class FlakyFile(io.RawIOBase):
    """A checkpoint file on storage that starts failing after ``budget`` bytes (a FUSE/NFS mount:
    writes go through the client, so the file object has no usable descriptor)."""

    def __init__(self, path: str, budget: int, err: int) -> None:
        self.raw = open(path, "wb")
        self.budget, self.err, self.path = budget, err, path

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.budget -= len(data)
        if self.budget < 0:
            raise OSError(self.err, os.strerror(self.err), self.path)
        return self.raw.write(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


def save_checkpoint(model: torch.nn.Module, path: str, err: int) -> None:
    with FlakyFile(path, 4096, err) as f:
        torch.save({"model": model.state_dict()}, f, _use_new_zipfile_serialization=False)


def dump_embeddings(path: str, rows: int) -> None:
    with open(path, "wb") as f:
        np.save(f, np.ones((rows, 256), dtype=np.float32))


def write_eval_report(path: str, step: int) -> None:
    with open(path, "w") as f:
        json.dump({"step": step, "scores": [0.5] * 50000}, f)


def main(a: argparse.Namespace) -> None:
    model = MLP(64, a.hidden, 10)
    for step in range(1, 4):
        print(f"step {step} loss {2.0 / step:.3f}", flush=True)
    os.makedirs(a.out, exist_ok=True)
    if a.mode == "enospc_np":
        dump_embeddings("/dev/full", a.rows)
    elif a.mode == "enospc_json":
        write_eval_report("/dev/full", 3)
    else:
        save_checkpoint(model, os.path.join(a.out, "step_000003.pt"), errno.EIO if a.mode == "eio" else errno.EDQUOT)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--mode", required=True)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--out", default="checkpoints")
    main(p.parse_args())
