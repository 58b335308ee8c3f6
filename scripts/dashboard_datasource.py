"""Makes the Grafana dashboard importable into any Grafana: every Prometheus query, variable and
annotation uses the ``datasource`` variable (``${datasource}``) instead of a fixed data source uid,
the variable is the first of the dashboard's, and ``__inputs`` names the data source an import asks
for (as NVIDIA's DCGM dashboards do). Re-run it after editing or merging the dashboard (a panel
pasted from Grafana carries a fixed uid); ``--check`` only says whether it would change (a test runs it).

    python scripts/dashboard_datasource.py [--check]

In the compose stack the variable starts on the default data source (the provisioned Prometheus).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "phoenix.json"
REF = {"type": "prometheus", "uid": "${datasource}"}
VARIABLE = {"type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
            "current": {}, "hide": 0, "includeAll": False, "multi": False, "refresh": 1, "regex": "",
            "options": []}
INPUTS = [{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": "the Prometheus that scrapes Phoenix",
           "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}]
REQUIRES = [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}]


def _retarget(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, dict) and value.get("type") == "prometheus":
                node[key] = dict(REF)
            else:
                _retarget(value)
    elif isinstance(node, list):
        for item in node:
            _retarget(item)


def fix(dashboard: dict[str, Any]) -> dict[str, Any]:
    _retarget(dashboard)
    variables = [v for v in dashboard.setdefault("templating", {}).setdefault("list", [])
                 if v.get("name") != "datasource"]
    dashboard["templating"]["list"] = [dict(VARIABLE), *variables]
    rest = {k: v for k, v in dashboard.items() if k not in ("__inputs", "__requires")}
    return {"__inputs": INPUTS, "__requires": REQUIRES, **rest}


def render(text: str) -> str:
    return json.dumps(fix(json.loads(text)), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the dashboard would change")
    args = parser.parse_args(argv)
    text = DASHBOARD.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        if new != text:
            print("deploy/grafana/dashboards/phoenix.json: run python scripts/dashboard_datasource.py")
            return 1
        return 0
    DASHBOARD.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
