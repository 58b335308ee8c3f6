"""Training jobs of the Slurm tests: a git workspace, a torch.distributed script, a batch script.

Each rank is one Slurm task; both "nodes" are this host, so gloo rendezvous over 127.0.0.1 (a
port per run: a requeued run must not meet the TIME_WAIT of the last one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kits.repairkit import make_repo
from kits.slurmcluster import SlurmCluster, free_ports

TRAIN = '''\
import faulthandler
import os
import signal
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist

CONFIG = {"scale": 1.0}
MODE = os.environ.get("PHX_MODE", "")  # what the test plants (read once per run, from the batch script)


def scale(cfg, rank):
    if rank == 1 and MODE == "bug":
        return cfg["scale"] * factor
    return cfg["scale"]


def main():
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    rank, world = int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"])
    run = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    port = int(os.environ["PHX_PORT"]) + run
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=120))
    steps = int(os.environ.get("PHX_STEPS", "4"))
    for step in range(steps):
        t = torch.ones(1) * scale(CONFIG, rank)
        if MODE == "hang" and rank == 1 and run == 0 and step == 2:
            time.sleep(3600)  # rank 1 never joins: rank 0 waits in the all_reduce
        if MODE == "hardware" and step == 1 and run == 0:  # the first node it runs on "loses" its GPU
            print("NVRM: Xid (PCI:0000:3b:00): 79, pid=4242, GPU has fallen off the bus.", flush=True)
            sys.exit(1)
        dist.all_reduce(t)
        print(f"step {step} sum {t.item()} on {os.environ.get('SLURMD_NODENAME')}", flush=True)
        time.sleep(float(os.environ.get("PHX_STEP_SECONDS", "0.2")))
    dist.destroy_process_group()
    print("training finished", flush=True)


if __name__ == "__main__":
    main()
'''


def workspace(tmp: Path, name: str) -> Path:
    ws = make_repo(tmp / name, {"train.py": TRAIN})
    (ws / ".gitignore").write_text(".phoenix_cli/\nslurm-*.out\njob.sh\n")
    return ws


def submit(slurm: SlurmCluster, ws: Path, name: str, *, nodes: int = 2, mode: str = "", steps: int = 4,
           step_seconds: float = 0.2, extra: tuple[str, ...] = (), env: dict[str, str] | None = None) -> str:
    """Submit the job; returns its id. Its output goes to ``ws/slurm-<id>.out``, every line labelled."""
    script = ws / "job.sh"
    script.write_text(f"""#!/bin/bash
#SBATCH --job-name={name}
#SBATCH --nodes={nodes} --ntasks={nodes}
#SBATCH --output={ws}/slurm-%j.out
#SBATCH --requeue
cd {ws}
srun --label --kill-on-bad-exit=1 {sys.executable} -u train.py
""")
    port = free_ports(20)[0]
    job_env = {**slurm.environ(), "PHX_MODE": mode, "PHX_PORT": str(port), "PHX_STEPS": str(steps),
               "PHX_STEP_SECONDS": str(step_seconds), **(env or {})}
    out = subprocess.run(["sbatch", "--parsable", *extra, str(script)], env=job_env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip().split(";")[0]


def job_field(slurm: SlurmCluster, job_id: str, key: str) -> str:
    line = slurm.run("scontrol", "-o", "show", "job", job_id).stdout
    for word in line.split():
        if word.startswith(key + "="):
            return word[len(key) + 1:]
    return ""


def wait_for(predicate: Any, what: str, timeout: float = 180.0) -> None:
    """Wait for an event (a generous bound, only so that a broken test ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def state(ws: Path) -> dict[str, Any]:
    path = ws / ".phoenix_cli" / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def phoenix_env(slurm: SlurmCluster) -> dict[str, str]:
    return {"SLURM_CONF": str(slurm.conf), "PHOENIX_SLURM_POLL_SECONDS": "0.5",
            "PHOENIX_BACKOFF_INITIAL_SECONDS": "0.1", "PATH": os.environ["PATH"]}
