"""`phoenix history`: the repairs Phoenix attempted in this workspace, oldest first."""

from __future__ import annotations

import argparse
import json

from phoenix_sidecar.commands.common import add_config_options, load_config
from phoenix_sidecar.events import EventBus
from phoenix_sidecar.paths import StatePaths


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("history", help="list the repairs attempted in the workspace",
                              description=__doc__.split("\n\n")[0])
    add_config_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--limit", "-n", type=int, default=0, metavar="N", help="only the last N repairs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: every `phoenix` command builds the parser, and only this one needs them.
    from phoenix_sidecar.repair import RepairEngine

    loaded = load_config(args)
    engine = RepairEngine(loaded.settings, StatePaths(loaded.workspace), EventBus(), config_file=loaded.config_file)
    records = engine.history()
    if args.limit > 0:
        records = records[-args.limit:]
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=2))
        return 0
    if not records:
        print("no repairs recorded in this workspace")
        return 0
    print(f"{'ID':<22} {'TIME':<25} {'SIGNATURE':<12} {'CATEGORY':<16} {'OUTCOME':<14} FILES")
    for r in records:
        outcome = r.outcome + (" (rolled back)" if r.rolled_back else "")
        category = r.category or ("manual" if r.source != "llm" else "-")
        print(f"{r.repair_id:<22} {r.time:<25} {(r.signature or '-')[:12]:<12} {category:<16} {outcome:<14} "
              f"{', '.join(r.files) or '-'}")
    return 0
