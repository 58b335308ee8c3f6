"""`phoenix history`: every incident in this workspace (crashes, hangs, safety stops, with what
Phoenix decided) and every repair, oldest first, in aligned columns or as JSON.

Incidents come from state.json (the last 200), repairs from ``.phoenix_cli/repairs``. Each row
carries its full signature; an incident that led to a repair names it. ``--repairs`` lists the
repairs only. In the JSON each row has a ``kind`` (crash, hang, safety, repair) beside the
incident's or the repair record's own fields.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from phoenix_sidecar.commands.common import add_config_options, load_config
from phoenix_sidecar.events import EventBus
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.supervise.state import read_state

COLUMNS = ("TIME", "KIND", "ID", "CATEGORY", "WHAT", "SIGNATURE", "DETAIL")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("history", help="list the incidents and repairs of the workspace",
                              description=__doc__.split("\n\n")[0])
    add_config_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--repairs", action="store_true", help="only the repairs")
    p.add_argument("--limit", "-n", type=int, default=0, metavar="N", help="only the last N rows")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: every `phoenix` command builds the parser, and only this one needs them.
    from phoenix_sidecar.repair import RepairEngine

    loaded = load_config(args)
    paths = StatePaths(loaded.workspace)
    engine = RepairEngine(loaded.settings, paths, EventBus(), config_file=loaded.config_file)
    repairs = [{"kind": "repair", **r.to_json()} for r in engine.history()]
    rows = repairs
    if not args.repairs:
        state = read_state(paths.state)
        incidents = [incident_row(asdict(i)) for i in (state.incidents if state else [])]
        rows = sorted(incidents + repairs, key=_sort_key)
    if args.limit > 0:
        rows = rows[-args.limit:]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no repairs recorded in this workspace" if args.repairs else "no incidents or repairs in this workspace")
        return 0
    print(table([COLUMNS, *(cells(r) for r in rows)]))
    return 0


def incident_row(incident: dict[str, Any]) -> dict[str, Any]:
    return {"kind": incident["kind"], **{k: v for k, v in incident.items() if k != "kind"},
            "time": _iso(incident["opened_at"])}


def cells(row: dict[str, Any]) -> tuple[str, ...]:
    if row["kind"] == "repair":
        what = row["outcome"] + (" (rolled back)" if row.get("rolled_back") else "")
        category = row.get("category") or ("manual" if row.get("source") != "llm" else "-")
        return (row["time"], "repair", row["repair_id"], category, what, row.get("signature") or "-",
                ", ".join(row.get("files") or []) or "-")
    what = row.get("action") or "-"
    if row.get("repair"):
        what += f" -> repair {row['repair'].get('outcome')}"
    detail = f"{row.get('exit', '')}: {row.get('summary', '')}".strip(": ")
    category = (row.get("category") or "-") + (" (llm)" if row.get("category_source") == "llm" else "")
    return (row["time"], row["kind"], f"#{row['id']}", category, what,
            row.get("signature") or "-", detail or "-")


def table(rows: list[tuple[str, ...]]) -> str:
    """Aligned columns (the last one left ragged: it is free text)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(r, widths)), r[-1]]).rstrip() for r in rows)


def _iso(at: float) -> str:
    """The repair records' way of writing a time: local, ISO 8601 with the offset."""
    return datetime.fromtimestamp(at).astimezone().isoformat(timespec="seconds")


def _sort_key(row: dict[str, Any]) -> float:
    try:
        return datetime.fromisoformat(row["time"]).timestamp()
    except (ValueError, TypeError):
        return 0.0
