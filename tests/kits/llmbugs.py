"""Realistic training-script bugs for repairs by a real model: each a buggy script, its fix, and a check.

Used by ``bench/bench_llm_repair.py`` (the fix rate of a real small model) and by the ``llm_real``
integration test. Each bug is a small NumPy training script that crashes the way real ones do
(a typo'd name, a wrong shape, a missing import, a wrong dict key, an off-by-one, a wrong argument
name, a division by zero, a wrong dtype, a config key typo, a file path); ``fixed`` is what a
correct repair does, and ``check.py`` (the repair's test command, which no patch may change) runs
the script and compares its last line with what the fixed script prints.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HEAD = '''"""Train a linear model on synthetic data."""
import json
import os

import numpy as np

'''
DATA = '''
def make_data(n, features, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    w_true = np.arange(1, features + 1, dtype=np.float64).reshape(features, 1)
    return x, x @ w_true
'''
LOOP = '''

def train(cfg):
    x, y = make_data(cfg["samples"], cfg["features"])
    w = np.zeros((cfg["features"], 1))
    loss = 0.0
    for epoch in range(cfg["epochs"]):
        for start in range(0, len(x), cfg["batch_size"]):
            xb, yb = x[start:start + cfg["batch_size"]], y[start:start + cfg["batch_size"]]
            err = xb @ w - yb
            loss = float(np.mean(err ** 2))
            w -= cfg["lr"] * 2 * xb.T @ err / len(xb)
    return loss


if __name__ == "__main__":
    CFG = {"samples": 64, "features": 3, "epochs": 5, "batch_size": 16, "lr": 0.05}
    print(f"final loss {train(CFG):.6f}")
'''
BASE = HEAD + DATA + LOOP

CHECK = '''import subprocess, sys
run = subprocess.run([sys.executable, "train.py"], capture_output=True, text=True, timeout=120)
sys.stdout.write(run.stdout[-2000:]); sys.stderr.write(run.stderr[-4000:])
lines = run.stdout.strip().splitlines()
if run.returncode != 0 or not lines or lines[-1] != EXPECTED:
    print(f"expected {EXPECTED!r}, got {(lines or [''])[-1]!r} (exit {run.returncode})")
    sys.exit(1)
'''


@dataclass(frozen=True)
class Bug:
    name: str
    kind: str
    buggy: str
    fixed: str
    extra: dict[str, str] = field(default_factory=dict)


def _swap(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


BUGS: tuple[Bug, ...] = (
    Bug("typo_name", "typo'd name",
        _swap("            loss = float(np.mean(err ** 2))", "            loss = float(np.mean(eror ** 2))"), BASE),
    Bug("wrong_shape", "wrong shape",
        _swap('    w = np.zeros((cfg["features"], 1))', '    w = np.zeros((cfg["features"] + 1, 1))'), BASE),
    Bug("missing_import", "missing import",
        _swap("import json\nimport os\n", "import json\n").replace(
            '    return loss\n', '    return loss if os.environ.get("QUIET") is None else 0.0\n'),
        BASE.replace('    return loss\n', '    return loss if os.environ.get("QUIET") is None else 0.0\n')),
    Bug("wrong_dict_key", "wrong dict key",
        _swap('            w -= cfg["lr"] * 2', '            w -= cfg["learning_rate"] * 2'), BASE),
    Bug("off_by_one", "off-by-one",
        _swap("        for start in range(0, len(x), cfg[\"batch_size\"]):\n"
              "            xb, yb = x[start:start + cfg[\"batch_size\"]], y[start:start + cfg[\"batch_size\"]]\n",
              "        batches = [(x[i:i + cfg[\"batch_size\"]], y[i:i + cfg[\"batch_size\"]]) "
              "for i in range(0, len(x), cfg[\"batch_size\"])]\n"
              "        for b in range(len(batches) + 1):\n"
              "            xb, yb = batches[b]\n"),
        _swap("        for start in range(0, len(x), cfg[\"batch_size\"]):\n"
              "            xb, yb = x[start:start + cfg[\"batch_size\"]], y[start:start + cfg[\"batch_size\"]]\n",
              "        batches = [(x[i:i + cfg[\"batch_size\"]], y[i:i + cfg[\"batch_size\"]]) "
              "for i in range(0, len(x), cfg[\"batch_size\"])]\n"
              "        for b in range(len(batches)):\n"
              "            xb, yb = batches[b]\n")),
    Bug("wrong_arg_name", "wrong argument name",
        _swap("    x = rng.normal(size=(n, features))", "    x = rng.normal(mean=0.0, size=(n, features))"),
        BASE.replace("    x = rng.normal(size=(n, features))", "    x = rng.normal(loc=0.0, size=(n, features))")),
    Bug("division_by_zero", "division by zero guard",
        _swap('    print(f"final loss {train(CFG):.6f}")',
              '    losses = [train(CFG)]\n    skipped = [l for l in losses if l > 1e6]\n'
              '    print(f"final loss {train(CFG):.6f} ({len(skipped) / len(skipped):.0%} diverged)")'),
        BASE.replace('    print(f"final loss {train(CFG):.6f}")',
                     '    losses = [train(CFG)]\n    skipped = [l for l in losses if l > 1e6]\n'
                     '    print(f"final loss {train(CFG):.6f} ({len(skipped) / max(1, len(losses)):.0%} diverged)")')),
    Bug("wrong_dtype", "wrong dtype",
        _swap('    w = np.zeros((cfg["features"], 1))', '    w = np.zeros((cfg["features"], 1), dtype=np.int64)'), BASE),
    Bug("config_key_typo", "config key typo",
        _swap('"epochs": 5, "batch_size": 16', '"epochs": 5, "batch_sise": 16'), BASE),
    Bug("file_path", "file path",
        _swap('    CFG = {"samples": 64, "features": 3, "epochs": 5, "batch_size": 16, "lr": 0.05}',
              '    with open(os.path.join("configs", "trian.json")) as fh:\n        CFG = json.load(fh)'),
        BASE.replace('    CFG = {"samples": 64, "features": 3, "epochs": 5, "batch_size": 16, "lr": 0.05}',
                     '    with open(os.path.join("configs", "train.json")) as fh:\n        CFG = json.load(fh)'),
        {"configs/train.json": '{"samples": 64, "features": 3, "epochs": 5, "batch_size": 16, "lr": 0.05}\n'}),
    Bug("attribute_typo", "typo'd method",
        _swap("    return x, x @ w_true", "    return x, x @ w_true.reshpe(features, 1)"),
        BASE.replace("    return x, x @ w_true", "    return x, x @ w_true.reshape(features, 1)")),
    Bug("transposed_matmul", "wrong shape",
        _swap("            w -= cfg[\"lr\"] * 2 * xb.T @ err / len(xb)", "            w -= cfg[\"lr\"] * 2 * xb @ err / len(xb)"),
        BASE),
)


def expected_line(bug: Bug, scratch: Path) -> str:
    """The last line the fixed script prints (run once in ``scratch``)."""
    scratch.mkdir(parents=True, exist_ok=True)
    write_files(scratch, {"train.py": bug.fixed, **bug.extra})
    run = subprocess.run([sys.executable, "train.py"], cwd=scratch, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, (bug.name, run.stderr)
    return run.stdout.strip().splitlines()[-1]


def job_files(bug: Bug, expected: str) -> dict[str, str]:
    """The workspace of ``bug``: the buggy script, its data, and ``check.py`` (the test command)."""
    return {"train.py": bug.buggy, "check.py": f"EXPECTED = {expected!r}\n" + CHECK, **bug.extra}


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
