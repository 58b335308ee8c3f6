"""`phoenix patch --response FILE`: run a saved LLM answer through the repair pipeline, without a job or an LLM.

The answer is checked, applied in an isolated worktree, verified (py_compile and the test command)
and promoted into the workspace under the workspace lock, exactly as a repair would be.
Exit 0: promoted (or verified, with --dry-run); 1: rejected or failed verification; 2: usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from phoenix_sidecar.commands.common import add_config_options, load_config
from phoenix_sidecar.errors import UsageError
from phoenix_sidecar.events import EventBus
from phoenix_sidecar.supervise.lock import WorkspaceLock
from phoenix_sidecar.paths import StatePaths

if TYPE_CHECKING:
    from phoenix_sidecar.repair import PatchReport

MAX_RESPONSE_BYTES = 64 * 1024 * 1024


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("patch", help="apply a saved LLM answer through the verified repair pipeline",
                              description=__doc__.split("\n\n")[0])
    add_config_options(p)
    p.add_argument("--response", "-r", required=True, metavar="FILE",
                   help="the LLM answer (JSON patches); - reads stdin")
    p.add_argument("--dry-run", action="store_true", help="verify, but leave the workspace files unchanged")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: every `phoenix` command builds the parser, and only this one needs the engine.
    from phoenix_sidecar.repair import RepairEngine

    answer = _read_response(args.response)
    loaded = load_config(args, dry_run=True if args.dry_run else None)
    settings = loaded.settings
    paths = StatePaths(loaded.workspace).ensure()
    engine = RepairEngine(settings, paths, EventBus(), config_file=loaded.config_file)
    with WorkspaceLock(paths.lock, stale_seconds=settings.lock_stale, command="phoenix patch"):
        engine.prune_stale()
        report = engine.apply_answer(answer)
    ok = report.promoted or (settings.dry_run and report.verified)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _print_human(report)
    return 0 if ok else 1


def _read_response(name: str) -> str:
    from phoenix_sidecar.repair.patch.answer import MAX_ANSWER_CHARS

    try:
        if name == "-":
            data = sys.stdin.buffer.read(MAX_RESPONSE_BYTES + 1)
        else:
            with open(Path(name), "rb") as fh:
                data = fh.read(MAX_RESPONSE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the response file {name}: {exc.strerror or exc}") from None
    if len(data) > MAX_RESPONSE_BYTES:
        # Bigger than any answer could be: read no further (the pipeline rejects anything over its limit).
        data = data[: MAX_ANSWER_CHARS + 1]
    return data.decode("utf-8", "replace")


def _print_human(report: PatchReport) -> None:
    for p in report.patches:
        note = f": {p.reason}" if p.reason and p.status != "applied" else ""
        print(f"  {p.status:<16} {p.file_path} ({p.mode}){note}")
    print(f"{report.outcome}: {report.reason}")
    if report.commit:
        print(f"recorded as commit {report.commit[:12]} on phoenix/repairs")
    print(f"record: .phoenix_cli/repairs/{report.repair_id}/")
