"""Benchmark of the repair pipeline's own cost (issue 6), against a plain `git worktree add` of the same repository.

    python bench/bench_repair.py [--files 5000] [--rounds 7]

Workload: a generated git repository of about 5,000 files (50 packages of 100 modules), with an
uncommitted and an untracked change as a working copy has them. One round runs a saved answer (a
search/replace on train.py) through `RepairEngine.apply_answer` exactly as `phoenix patch` does:
parse and check, the snapshot of the working tree (private index), the isolated worktree, the
write, py_compile in a child interpreter, the record commit on phoenix/repairs, the backup and the
atomic promotion, the repair record, and the worktree's removal. No LLM.

Two configurations, interleaved round by round with the baseline so all see the same load:
- no test command (the default): only the changed files are checked out in the worktree, since
  compiling them is all verification does. Target: median under 1 s.
- test_cmd = `true`: the whole tree is checked out (parallel checkout), as a test command needs it;
  the command itself costs nothing, so this is the pipeline's own cost with a full checkout.
Baseline, measured in the same run on the same repository: a plain `git worktree add --detach`
(its removal not counted). The figures printed are medians.

What the sandbox adds (issue 11): the test command runs twice per repair (once without the patch,
to see whether it can tell a fix from no fix), under bubblewrap where it works, else with write
detection around it (lstat fingerprints and a private copy of the workspace). The configurations
`test_cmd = true` under each, and without a test command (which runs no code, so no sandbox), are
printed as ratios: bubblewrap / write detection, and each / the no-test-command repair.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "sidecar"), str(REPO / "watchdog")]

from phoenix_sidecar.events import EventBus  # noqa: E402
from phoenix_sidecar.paths import StatePaths  # noqa: E402
from phoenix_sidecar.repair import RepairEngine, gitrepo, promote, sandbox, verify  # noqa: E402
from phoenix_sidecar.repair import pipeline as pl  # noqa: E402
from phoenix_sidecar.config.schema import Settings  # noqa: E402

TARGET_SECONDS = 1.0
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b"}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def make_repository(root: Path, files: int) -> Path:
    ws = root / "ws"
    per_package = 100
    for n in range(files):
        package = ws / f"pkg{n // per_package:03d}"
        package.mkdir(parents=True, exist_ok=True)
        body = "".join(f"def f{k}(x):\n    return x * {k} + {n}\n\n\n" for k in range(8))
        (package / f"mod{n % per_package:03d}.py").write_text(f'"""Module {n}."""\n\n{body}')
    (ws / "train.py").write_text('VERSION = 0\n\n\ndef main():\n    print("training", VERSION)\n')
    git(ws, "init", "-q", "-b", "main")
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "generated")
    (ws / "pkg000" / "mod000.py").write_text("# uncommitted edit\n")
    (ws / "notes_untracked.py").write_text("NOTE = 1\n")
    return ws


def plain_worktree_add(ws: Path, n: int) -> float:
    target = ws.parent / f"plain-{n}"
    started = time.perf_counter()
    git(ws, "worktree", "add", "--detach", str(target), "HEAD")
    elapsed = time.perf_counter() - started
    git(ws, "worktree", "remove", "--force", str(target))
    return elapsed


CURRENT: list[str] = [""]


def instrument(stages: dict[str, dict[str, list[float]]]) -> None:
    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stages[CURRENT[0]][name].append(time.perf_counter() - started)
        return wrapper

    gitrepo.snapshot = timed("snapshot (private index, add -A, write-tree)", gitrepo.snapshot)
    gitrepo.worktree_add = timed("git worktree add", gitrepo.worktree_add)
    pl.verify = timed("verify (py_compile child, test command)", verify.verify)
    pl.run_tests = timed("baseline: test command without the patch", verify.run_tests)
    pl._commit = timed("record commit on phoenix/repairs", pl._commit)
    promote.Promoter.promote = timed("backup + journal + atomic promotion", promote.Promoter.promote)
    gitrepo.worktree_remove = timed("worktree removal", gitrepo.worktree_remove)


def one_repair(engine: RepairEngine, n: int) -> float:
    answer = json.dumps({"patches": [{"file_path": "train.py", "mode": "search_replace",
                                      "search": f"VERSION = {n}", "replace": f"VERSION = {n + 1}"}]})
    started = time.perf_counter()
    report = engine.apply_answer(answer)
    elapsed = time.perf_counter() - started
    if not report.promoted:
        raise SystemExit(f"round {n}: the repair was not promoted: {report.outcome}: {report.reason}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="phoenix-bench-repair-"))
    try:
        ws = make_repository(root, args.files)
        tracked = int(subprocess.run(["git", "ls-files"], cwd=ws, capture_output=True, text=True).stdout.count("\n"))
        box = sandbox.probe()
        configs: dict[str, tuple[list[str] | None, str]] = {
            "no test command": (None, "auto"), "test_cmd = true, write detection": (["true"], "detect")}
        if box.works:
            configs["test_cmd = true, bubblewrap"] = (["true"], "bubblewrap")
        stages: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in configs}
        instrument(stages)
        engines = {}
        for name, (test_cmd, mode) in configs.items():
            engines[name] = RepairEngine(Settings(workspace=str(ws), test_cmd=test_cmd, sandbox=mode),
                                         StatePaths(ws).ensure(), EventBus(), environ=dict(os.environ))
        engines["no test command"].prune_stale()
        plain_worktree_add(ws, -1)  # warm the caches for all
        plain: list[float] = []
        ours: dict[str, list[float]] = {name: [] for name in configs}
        version = 0
        for n in range(args.rounds):  # interleaved, so all see the same load on a shared machine
            plain.append(plain_worktree_add(ws, n))
            for name, engine in engines.items():
                CURRENT[0] = name
                ours[name].append(one_repair(engine, version))
                version += 1
        base = statistics.median(plain)
        print(f"repository: {tracked} tracked files, 1 uncommitted edit, 1 untracked file; {args.rounds} rounds")
        print(f"baseline  plain git worktree add --detach      median {base * 1000:7.1f} ms")
        for name in configs:
            total = statistics.median(ours[name])
            ratios = sorted(o / b for o, b in zip(ours[name], plain))
            print(f"pipeline  {name:<34} median {total * 1000:7.1f} ms   ratio {total / base:4.2f}x baseline "
                  f"(per round {ratios[0]:.2f}-{ratios[-1]:.2f})")
            for stage, values in stages[name].items():
                print(f"    {stage:<46} median {statistics.median(values) * 1000:7.1f} ms")
        print(box.line())
        bare = statistics.median(ours["no test command"])
        for name in configs:
            print(f"    {name:<44} {statistics.median(ours[name]) / bare:5.2f}x the repair without a test command")
        if box.works:
            ratio = statistics.median(ours["test_cmd = true, bubblewrap"]) / statistics.median(
                ours["test_cmd = true, write detection"])
            print(f"    bubblewrap / write detection, with a test command: {ratio:.2f}x; without a test command the "
                  f"sandbox adds nothing (no code runs: 1.00x)")
        total = statistics.median(ours["no test command"])
        verdict = "PASS" if total < TARGET_SECONDS else "FAIL"
        print(f"{verdict}: median {total:.3f} s without a test command, against the target of {TARGET_SECONDS:.1f} s")
        return 0 if total < TARGET_SECONDS else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
