"""`phoenix rollback [ID]`: restore the files a promoted repair changed (by default the last one).

Refuses when a file was edited after the promotion, unless --force (the edits are kept as a backup).
"""

from __future__ import annotations

import argparse
import json

from phoenix_sidecar.commands.common import add_config_options, load_config
from phoenix_sidecar.errors import UsageError
from phoenix_sidecar.events import EventBus
from phoenix_sidecar.supervise.lock import WorkspaceLock
from phoenix_sidecar.paths import StatePaths


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("rollback", help="undo a promoted repair from its backups",
                              description=__doc__.split("\n\n")[0])
    add_config_options(p)
    p.add_argument("repair_id", nargs="?", metavar="ID", help="the repair (see phoenix history); default: the last "
                                                              "promoted one")
    p.add_argument("--force", action="store_true", help="roll back even over later edits of the files")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: every `phoenix` command builds the parser, and only this one needs them.
    from phoenix_sidecar.repair import RepairEngine

    loaded = load_config(args)
    settings = loaded.settings
    paths = StatePaths(loaded.workspace).ensure()
    engine = RepairEngine(settings, paths, EventBus(), config_file=loaded.config_file)
    if args.repair_id is not None and args.repair_id not in {r.repair_id for r in engine.history()}:
        raise UsageError(f"no repair {args.repair_id!r} in this workspace (see phoenix history)")
    with WorkspaceLock(paths.lock, stale_seconds=settings.lock_stale, command="phoenix rollback"):
        engine.prune_stale()
        result = engine.rollback(args.repair_id, force=args.force)
    if args.json:
        print(json.dumps({"repair_id": result.repair_id, "ok": result.ok, "reason": result.reason,
                          "files": list(result.files), "changed": list(result.changed)}, indent=2))
    else:
        print(f"{'rolled back' if result.ok else 'not rolled back'}: {result.reason}")
    return 0 if result.ok else 1
