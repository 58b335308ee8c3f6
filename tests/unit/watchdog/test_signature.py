"""Message folding and signature hashing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from phoenix_watchdog.diagnosis.signature import make_signature, normalise
from phoenix_watchdog.diagnosis.usercode import display_path, is_user_path, stable_path

from testkit import clean_env


@pytest.mark.parametrize(("a", "b"), [
    ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.11 GiB",
     "CUDA out of memory. Tried to allocate 512.00 MiB. GPU 7 has a total capacity of 39.39 GiB"),
    ("mat1 and mat2 shapes cannot be multiplied (32x64 and 100x256)",
     "mat1 and mat2 shapes cannot be multiplied (17x64 and 100x128)"),
    ("DataLoader worker (pid(s) 17058) exited unexpectedly", "DataLoader worker (pid(s) 9) exited unexpectedly"),
    ("[Errno 2] No such file or directory: '/tmp/tmpab12cd34/config.yaml'",
     "[Errno 2] No such file or directory: '/tmp/tmpzz98xy11/config.yaml'"),
    ("object at 0x7f3c2d56b5e8 is stale", "object at 0x55d0c1 is stale"),
    ("run 2025-06-02T07:15:42.123456Z failed on 10.0.0.7:29500", "run 2024-01-01 00:00:01 failed on 192.168.1.2:1234"),
    ("peer node-b03<47861> closed", "peer gpu-node-117<1234> closed"),
    ("device GPU-8f1c2a3b-1111-2222-3333-444455556666 lost", "device GPU-00000000-aaaa-bbbb-cccc-ddddeeeeffff lost"),
    ("wandb run 2x7k9q1z crashed", "wandb run 9pq3mm0a crashed"),
])
def test_run_specific_parts_are_folded(a: str, b: str) -> None:
    assert normalise(a) == normalise(b)


@pytest.mark.parametrize(("a", "b"), [
    ("KeyError: 'lr'", "KeyError: 'momentum'"),
    ("CUDA error: an illegal memory access was encountered", "CUDA error: misaligned address"),
    ("No such file or directory: 'checkpoints/last.pt'", "No such file or directory: 'data/train.csv'"),
])
def test_the_words_that_name_the_failure_stay(a: str, b: str) -> None:
    assert normalise(a) != normalise(b)


def test_the_workspace_prefix_is_dropped() -> None:
    assert normalise("cannot open /srv/job/data/x.bin", "/srv/job") == normalise("cannot open /mnt/w/data/x.bin", "/mnt/w")


def test_signature_format_and_parts() -> None:
    sig = make_signature("code_bug", "KeyError", "'lr'", "train.py:main")
    assert sig.startswith("code_bug-") and len(sig) == len("code_bug-") + 16
    assert make_signature("code_bug", "KeyError", None, "'lr'") == make_signature("code_bug", "KeyError", "'lr'")
    assert make_signature("code_bug", "a") != make_signature("config_error", "a")
    assert make_signature("code_bug", "ab", "c") != make_signature("code_bug", "a", "bc")


def test_signatures_are_stable_across_processes() -> None:
    code = ("from phoenix_watchdog.diagnosis.signature import make_signature as m; "
            "print(m('cuda_oom', 'cuda_oom', 'models/net.py:forward'))")
    outs = {subprocess.run([sys.executable, "-c", code], env=clean_env({"PYTHONHASHSEED": seed}),
                           capture_output=True, text=True, check=True).stdout for seed in ("1", "2")}
    assert outs == {make_signature("cuda_oom", "cuda_oom", "models/net.py:forward") + "\n"}


@pytest.mark.parametrize(("path", "user"), [
    ("/workspace/train.py", True),
    ("/workspace/.venv/lib/python3.11/site-packages/torch/nn/functional.py", False),
    ("/usr/lib/python3.11/threading.py", False),
    ("/opt/conda/lib/python3.10/site-packages/transformers/trainer.py", False),
    ("<frozen runpy>", False),
    ("/usr/local/bin/torchrun", False),
    ("/home/me/other/lib.py", False),  # outside the workspace
])
def test_user_code_is_what_lies_under_the_workspace(path: str, user: bool) -> None:
    assert is_user_path(path, "/workspace") is user


@pytest.mark.parametrize(("path", "user"), [
    ("/home/me/other/lib.py", True),
    ("torch/utils/data/dataloader.py", False),  # py-spy's shortened paths
    ("threading.py", False),
    ("torchrun", False),
    ("mypkg/data.py", True),
    ("train.py", True),
])
def test_without_a_workspace_library_rules_decide(path: str, user: bool) -> None:
    assert is_user_path(path, None) is user


def test_paths_shown_and_hashed() -> None:
    assert display_path("/workspace/models/mlp.py", "/workspace/") == "models/mlp.py"
    assert display_path("/elsewhere/x.py", "/workspace") == "/elsewhere/x.py"
    assert stable_path("/workspace/models/mlp.py", "/workspace") == stable_path("models/mlp.py", None) == "mlp.py"
    assert stable_path("/scratch/run7/models/mlp.py", "/workspace") == "mlp.py"  # re-run elsewhere
    assert stable_path("/venv/a/lib/python3.11/site-packages/torch/nn/functional.py", None) == "torch/nn/functional.py"
    assert stable_path("/opt/conda/lib/python3.10/site-packages/torch/nn/functional.py", "/w") == "torch/nn/functional.py"
    assert stable_path("/tmp/tmpab12cd34/train.py", "/tmp/tmpab12cd34") == "train.py"
    assert stable_path("/tmp/tmpab12cd34/train.py", None) == stable_path("/tmp/tmpq0q0q0q0/train.py", None)
