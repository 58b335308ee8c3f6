"""How well diagnosis does on the whole corpus: per-category precision and recall, signature stability.

    python scripts/diagnosis_report.py [--logs tests/data/logs] [--markdown] [--misses]

Reads every ``expected*.yaml`` in the corpus directory (see ``expected.yaml``'s header for the format), diagnoses every
case as the supervisor would, and prints:

- per category: cases labelled with it, cases diagnosed as it, correct ones, precision, recall;
- same-failure stability: of the pairs of cases labelled as one failure (``same_signature``
  groups), how many share a signature;
- collisions: of the pairs labelled as different failures (``different_signature`` groups), how
  many share one (they must not).

``--misses`` also lists every case whose category is wrong and every broken pair.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "watchdog"), str(ROOT)]

from phoenix_watchdog.diagnosis import Category, Diagnosis, ExitStatus, HangInfo, diagnose  # noqa: E402
from tests.kits.corpus import load_spec  # noqa: E402


def run_case(logs: Path, name: str, spec: dict) -> Diagnosis:
    text = (logs / spec.get("log", f"{name}.log")).read_text(encoding="utf-8", errors="replace")
    exit = ExitStatus(**spec["exit"]) if spec.get("exit") else None
    hang = None
    if spec.get("hang"):
        h = spec["hang"]
        stack = (logs / h["stack"]).read_text() if h.get("stack") else None
        hang = HangInfo(float(h["silent_seconds"]), stack)
    return diagnose(text, exit, hang, workspace=spec.get("workspace", "/workspace"))


def pairs(groups: list[list[str]]) -> list[tuple[str, str]]:
    return [p for g in groups for p in itertools.combinations(g, 2)]


def report(logs: Path, markdown: bool, misses: bool) -> int:
    spec = load_spec(logs)
    cases: dict[str, dict] = spec["cases"]
    got = {name: run_case(logs, name, c) for name, c in cases.items()}
    labelled = Counter(c["category"] for c in cases.values())
    diagnosed = Counter(d.category for d in got.values())
    right = Counter(c["category"] for name, c in cases.items() if got[name].category == c["category"])
    total_right = sum(right.values())

    rows = []
    for cat in (c.value for c in Category):
        p = right[cat] / diagnosed[cat] if diagnosed[cat] else None
        r = right[cat] / labelled[cat] if labelled[cat] else None
        rows.append((cat, labelled[cat], diagnosed[cat], right[cat], p, r))

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.0f}%"

    same = pairs(spec.get("same_signature", []))
    diff = pairs(spec.get("different_signature", []))
    same_ok = [(a, b) for a, b in same if got[a].signature == got[b].signature]
    collide = [(a, b) for a, b in diff if got[a].signature == got[b].signature]

    logs_n = len({c.get("log", f"{n}.log") for n, c in cases.items()})
    if markdown:
        print(f"Corpus: {len(cases)} cases from {logs_n} logs; category right on {total_right} "
              f"({100 * total_right / len(cases):.0f}%).\n")
        print("| category | labelled | diagnosed | right | precision | recall |")
        print("|---|---|---|---|---|---|")
        for cat, n, d, ok, p, r in rows:
            print(f"| {cat} | {n} | {d} | {ok} | {pct(p)} | {pct(r)} |")
        print(f"\nSame failure, same signature: {len(same_ok)} of {len(same)} labelled pairs. "
              f"Different failures sharing a signature: {len(collide)} of {len(diff)} labelled pairs.")
    else:
        print(f"corpus: {len(cases)} cases, {logs_n} logs; category right: {total_right} "
              f"({100 * total_right / len(cases):.1f}%)\n")
        print(f"{'category':<22}{'labelled':>9}{'diagnosed':>10}{'right':>7}{'precision':>11}{'recall':>8}")
        for cat, n, d, ok, p, r in rows:
            print(f"{cat:<22}{n:>9}{d:>10}{ok:>7}{pct(p):>11}{pct(r):>8}")
        print(f"\nsame failure -> same signature: {len(same_ok)} of {len(same)} pairs")
        print(f"different failures sharing a signature: {len(collide)} of {len(diff)} pairs")
    if misses:
        print()
        for name, c in cases.items():
            if got[name].category != c["category"]:
                print(f"wrong category: {name}: {got[name].category} (labelled {c['category']}): {got[name].summary}")
        for a, b in sorted(set(same) - set(same_ok)):
            print(f"split pair: {a} {got[a].signature} / {b} {got[b].signature}")
        for a, b in collide:
            print(f"collision: {a} / {b} share {got[a].signature}")
    return 0 if total_right == len(cases) and len(same_ok) == len(same) and not collide else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, default=ROOT / "tests" / "data" / "logs")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown (for the README)")
    parser.add_argument("--misses", action="store_true", help="list wrong categories, split pairs and collisions")
    args = parser.parse_args()
    return report(args.logs, args.markdown, args.misses)


if __name__ == "__main__":
    sys.exit(main())
