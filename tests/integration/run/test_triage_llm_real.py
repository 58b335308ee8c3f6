"""LLM triage by a real small model: llama-cpp-python's server with Qwen2.5-Coder-1.5B (GGUF).

Skipped unless ``PHOENIX_TEST_GGUF`` (the model file) and ``PHOENIX_TEST_LLAMA_PYTHON`` (a Python with
``llama_cpp.server``) are set, as `tests/integration/repair/test_llm_real.py`. Five failures that no
rule names but a reader can (an allocator out of device memory, a checksum mismatch in a data shard,
a broken collective ring, a project quota on the checkpoint disk, a bad value in a recipe file) go
through ``phoenix diagnose --triage`` against the real server with the server's own defaults. Every
answer must be a usable verdict from the fixed list (the protocol works with a real model out of the
box), recorded as the LLM's with a reason, and most must be right: a 1.5B model is not an oracle,
which is why the policy never lets its category move a failure out of a hardware or stop category.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from phoenix_watchdog.diagnosis.categories import Category
from testkit import clean_env

GGUF = os.environ.get("PHOENIX_TEST_GGUF", "")
SERVER_PYTHON = os.environ.get("PHOENIX_TEST_LLAMA_PYTHON", "")
ROOT = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.llm_real, pytest.mark.slow, pytest.mark.skipif(
    not (GGUF and Path(GGUF).is_file() and SERVER_PYTHON and Path(SERVER_PYTHON).is_file()),
    reason="no real model: set PHOENIX_TEST_GGUF and PHOENIX_TEST_LLAMA_PYTHON")]

TRAILER = "fatal: training aborted\n"
# (log, the categories a careful engineer would accept)
CASES = {
    "allocator": ("step 120 loss 2.113\n[allocator] MemPool::grow failed: requested 4294967296 bytes on device 0, "
                  "1073741824 bytes free of 85899345920\n", {"cuda_oom"}),
    "shard": ("epoch 3 batch 410/1200\nshard reader: record 8812 of /data/shards/train-00017.tfrecord has checksum "
              "0x1f2e but header says 0x91ab\n", {"dataloader", "missing_file", "code_bug"}),
    "ring": ("step 9000 loss 1.02\ncollective agent: peer 10.0.3.17:29500 stopped answering heartbeats for 600 s; "
             "the ring is broken\n", {"nccl_timeout", "nccl_error"}),
    "quota": ("step 5000 loss 0.88\ncheckpoint writer: could not write /ckpt/step5000/model.bin: quota for project "
              "'vision' exhausted (512.0 GiB used of 512.0 GiB)\n", {"disk_full"}),
    "recipe": ("loading experiment recipe recipes/base.toml\nrecipe check: optimizer.warmup_steps (-100) must be a "
               "non-negative integer\n", {"config_error"}),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_llm_repair import start_server  # the bench's own launcher: one way to start it

    proc, url = start_server(SERVER_PYTHON, GGUF, None, tmp_path_factory.mktemp("llm") / "server.log")
    yield url
    proc.terminate()
    proc.wait(30)


def test_a_real_small_model_names_failures_the_rules_cannot(server: str, tmp_path: Path) -> None:
    right = 0
    for name, (text, accepted) in CASES.items():
        log = tmp_path / f"{name}.log"
        log.write_text(text + TRAILER)
        out = subprocess.run([sys.executable, "-m", "phoenix_sidecar", "diagnose", "--json", "--triage",
                              "--set", "primary=openai", "--set", f"openai_url={server}",
                              "--set", "llm_triage_timeout_seconds=600", str(log)],
                             cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stderr
        row = json.loads(out.stdout.splitlines()[-1])
        assert row["triage"]["result"] == "named", (name, row["triage"])  # a usable answer, first time
        assert row["category_source"] == "llm" and row["triage"]["reason"], row
        assert row["category"] in {c.value for c in Category} - {"unknown", "hang"}
        assert row["signature"].startswith("unknown-")  # the rules' key: the model never changes it
        right += row["category"] in accepted
    assert right >= 3, f"only {right} of {len(CASES)} named right"
