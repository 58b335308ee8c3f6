"""Fix rate and time per repair of a real small model on realistic training-script bugs (issue 16).

    python bench/bench_llm_repair.py --url http://127.0.0.1:8012/v1 [--attempts 3] [--only typo_name,...]
    python bench/bench_llm_repair.py --model qwen2.5-coder-1.5b-instruct-q4_k_m.gguf \\
        --server-python /work/llm-venv/bin/python [--n-ctx 2048]

The second form starts ``python -m llama_cpp.server`` on a free loopback port with the server's
own defaults (unless ``--n-ctx`` is given) and stops it by its pid at the end.

Workload: the bugs of ``tests/kits/llmbugs.py`` (at least 10: a typo'd name, wrong shapes, a
missing import, a wrong dict key, an off-by-one, a wrong argument name, a division by zero, a wrong
dtype, a config key typo, a file path, a typo'd method). Each runs in its own git workspace: the
buggy script is run and crashes, the watchdog's `diagnose` reads its output, and the
`RepairEngine` asks the model (``primary=openai``), places the answer, and verifies it with
``check.py`` (the script's last line must equal the fixed script's). A repair that is not promoted
is asked again, up to ``--attempts`` times, with the previous answer shown as the supervisor does.

Printed per bug: the outcome of each attempt and its seconds; then the fix rate (first attempt
and within the attempts), the median seconds per repair, and what was lost and why: the model
gave no usable answer (``llm_failed``), the answer was rejected before verification (its reason:
``no_match``, ``ambiguous``, ...), or verification failed (the model's fix was wrong). Nothing
here asserts a time: it reports.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "sidecar"), str(REPO / "watchdog"), str(REPO / "tests")]

from kits.llmbugs import BUGS, Bug, expected_line, job_files  # noqa: E402
from kits.repairkit import make_repo  # noqa: E402
from phoenix_sidecar.config.schema import Settings  # noqa: E402
from phoenix_sidecar.events import EventBus  # noqa: E402
from phoenix_sidecar.paths import StatePaths  # noqa: E402
from phoenix_sidecar.repair import RepairEngine, RepairRequest  # noqa: E402
from phoenix_watchdog.diagnosis.diagnose import diagnose  # noqa: E402
from phoenix_watchdog.diagnosis.failure import ExitStatus  # noqa: E402


def start_server(python: str, model: str, n_ctx: int | None, log: Path) -> tuple[subprocess.Popen, str]:  # type: ignore[type-arg]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [python, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1", "--port", str(port)]
    if n_ctx:
        argv += ["--n_ctx", str(n_ctx)]
    proc = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); see {log}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the server did not come up in 300 s")


def repair_bug(bug: Bug, url: str, attempts: int, root: Path, timeout: float) -> list[tuple[str, str, float, int]]:
    """``(outcome, reason, seconds, prompt characters)`` per attempt, stopping at the first promoted one."""
    expected = expected_line(bug, root / "fixed")
    ws = make_repo(root / "job", job_files(bug, expected))
    settings = Settings(workspace=str(ws), primary="openai", openai_url=url, llm_timeout_seconds=timeout,
                        test_cmd=[sys.executable, "check.py"])
    engine = RepairEngine(settings, StatePaths(ws).ensure(), EventBus(), environ=dict(os.environ))
    run = subprocess.run([sys.executable, "train.py"], cwd=ws, capture_output=True, text=True, timeout=120)
    log = run.stdout + run.stderr
    d = diagnose(log, ExitStatus.from_returncode(run.returncode), workspace=str(ws))
    results = []
    for _ in range(attempts):
        started = time.monotonic()
        outcome = engine.repair(RepairRequest(d, log))
        prompt = ws / ".phoenix_cli" / "repairs" / outcome.repair_id / "prompt.txt"
        chars = len(prompt.read_text()) if prompt.is_file() else 0
        results.append((str(outcome.outcome), outcome.reason, time.monotonic() - started, chars))
        if outcome.outcome == "promoted":
            fixed = subprocess.run([sys.executable, "check.py"], cwd=ws, capture_output=True, text=True, timeout=120)
            if fixed.returncode != 0:
                results[-1] = ("promoted_but_wrong", fixed.stdout[-200:], *results[-1][2:])
            break
    return results


def lost_reason(outcome: str, reason: str) -> str:
    if outcome == "llm_failed" and "unusable answer" in reason:
        return "answer unusable (no change, or no JSON read)"
    if outcome == "llm_failed":
        return "no answer from the server (llm_failed)"
    if outcome == "verify_failed":
        return "verification failed (model wrong)"
    if outcome == "rejected":
        for word in ("not found", "ambiguous", "context", "compile", "capabilit", "allow", "outside", "no such file"):
            if word in reason:
                return f"answer rejected: {word}"
        return "answer rejected: other"
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an OpenAI-compatible server's base URL (…/v1)")
    parser.add_argument("--model", help="a GGUF file: start llama-cpp-python's server on it")
    parser.add_argument("--server-python", default=sys.executable, help="the Python that has llama_cpp.server")
    parser.add_argument("--n-ctx", type=int, default=None, help="the server's context size (its default if unset)")
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="llm_timeout_seconds")
    parser.add_argument("--only", default="", help="comma-separated bug names")
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--keep", type=Path, help="keep the workspaces (and their repair records) under this folder")
    args = parser.parse_args()
    if not args.url and not args.model:
        parser.error("give --url or --model")
    bugs = [b for b in BUGS if not args.only or b.name in args.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="phoenix-llm-bench-") as scratch:
        tmp = str(args.keep or scratch)
        Path(tmp).mkdir(parents=True, exist_ok=True)
        server = None
        url = args.url
        if args.model:
            server, url = start_server(args.server_python, args.model, args.n_ctx, Path(tmp) / "server.log")
            print(f"server: llama-cpp-python on {url}, model {Path(args.model).name}, n_ctx {args.n_ctx or 'default'}")
        try:
            rows = {}
            for i, bug in enumerate(bugs):
                rows[bug.name] = repair_bug(bug, url, args.attempts, Path(tmp) / f"bug{i}", args.timeout)
                shown = ", ".join(f"{o} ({s:.0f} s){': ' + r[:90] if o != 'promoted' else ''}" for o, r, s, _ in rows[bug.name])
                print(f"{bug.name:18} {bug.kind:22} {shown}", flush=True)
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
    report(bugs, rows, args)


def report(bugs: list[Bug], rows: dict[str, list[tuple[str, str, float, int]]], args: argparse.Namespace) -> None:
    first = sum(r[0][0] == "promoted" for r in rows.values())
    within = sum(any(o == "promoted" for o, *_ in r) for r in rows.values())
    seconds = [s for r in rows.values() for _, _, s, _ in r]
    chars = [c for r in rows.values() for *_, c in r if c]
    lost = Counter(lost_reason(o, why) for r in rows.values() for o, why, _, _ in r if o != "promoted")
    n = len(bugs)
    print(f"\nfixed on the first attempt: {first}/{n}; within {args.attempts} attempts: {within}/{n}")
    print(f"seconds per repair (model call, placement, verification): median {statistics.median(seconds):.1f}, "
          f"max {max(seconds):.1f}, over {len(seconds)} repairs")
    if chars:
        print(f"prompt characters sent: median {statistics.median(chars):.0f}, max {max(chars)}")
    print("lost attempts: " + (", ".join(f"{k}: {v}" for k, v in lost.most_common()) or "none"))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "first": first, "within": within, "n": n,
                                         "lost": dict(lost)}, indent=1))


if __name__ == "__main__":
    main()
