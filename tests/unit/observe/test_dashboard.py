"""The Grafana provisioning and dashboard, checked structurally (Grafana cannot be installed here)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

GRAFANA = Path(__file__).resolve().parents[3] / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "phoenix.json"
CURRENT_PANELS = {"row", "timeseries", "stat", "state-timeline", "table"}
PHOENIX_NAME = re.compile(r"\bphoenix_[a-z0-9_]+\b")
OTHER_NAMES = re.compile(r"\b(up)\s*\{")


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def datasource_uid() -> str:
    config = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert config["apiVersion"] == 1
    [ds] = config["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090" and ds["uid"]
    return ds["uid"]


def all_panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def queries(dashboard: dict) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target, template variable and annotation."""
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":  # (the datasource variable's query is a plugin id, not PromQL)
            yield f"variable {var['name']}", var["query"]["query"]
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            yield f"annotation {annotation['name']}", annotation["expr"]


def test_dashboard_provider_points_at_the_dashboards_folder():
    config = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "phoenix.yml").read_text())
    [provider] = config["providers"]
    assert config["apiVersion"] == 1 and provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_dashboard_identity(dashboard):
    assert dashboard["uid"] == "phoenix-overview" and dashboard["title"]
    assert dashboard["schemaVersion"] >= 36
    assert "id" not in dashboard or dashboard["id"] is None, "a provisioned dashboard must not pin a database id"


def test_only_current_panel_types(dashboard):
    types = {p["type"] for p in all_panels(dashboard["panels"])}
    assert types <= CURRENT_PANELS, f"retired or unexpected panel types: {types - CURRENT_PANELS}"
    assert {"timeseries", "stat", "state-timeline", "table"} <= types


def test_every_query_uses_the_datasource_variable_so_the_dashboard_imports_anywhere(dashboard, datasource_uid):
    # No fixed uid in any panel, target, variable or annotation: imported into an existing Grafana,
    # the dashboard asks for a data source (__inputs) and every panel follows the variable.
    refs = []
    for panel in all_panels(dashboard["panels"]):
        if panel["type"] != "row":
            refs.append(panel["datasource"])
            refs += [t["datasource"] for t in panel["targets"]]
    variables = dashboard["templating"]["list"]
    assert variables[0]["type"] == "datasource" and variables[0]["name"] == "datasource"
    assert variables[0]["query"] == "prometheus" and variables[0]["current"] == {}  # the default: the provisioned one
    refs += [v["datasource"] for v in variables[1:]]
    refs += [a["datasource"] for a in dashboard["annotations"]["list"] if a["datasource"]["type"] != "grafana"]
    assert refs and all(r == {"type": "prometheus", "uid": "${datasource}"} for r in refs)
    assert datasource_uid not in json.dumps(dashboard)
    [source] = dashboard["__inputs"]
    assert source["type"] == "datasource" and source["pluginId"] == "prometheus"
    assert {r["id"] for r in dashboard["__requires"]} >= {"grafana", "prometheus"}


def test_the_dashboard_is_as_the_datasource_script_writes_it():
    import sys

    sys.path.insert(0, str(GRAFANA.parents[1] / "scripts"))
    import dashboard_datasource

    text = DASHBOARD.read_text(encoding="utf-8")
    assert dashboard_datasource.render(text) == text, "run: python scripts/dashboard_datasource.py"


def test_queries_only_use_metrics_the_exporter_exposes(dashboard, exposed_metric_names):
    used = set()
    for where, expr in queries(dashboard):
        names = PHOENIX_NAME.findall(expr) + OTHER_NAMES.findall(expr)
        assert names, f"{where} queries no metric: {expr}"
        for name in names:
            assert name == "up" or name in exposed_metric_names, f"{where} uses {name}, which Phoenix does not expose"
        used.update(names)
    for must in ("phoenix_job_state", "phoenix_heartbeat_last_timestamp_seconds", "phoenix_incidents_total",
                 "phoenix_repairs_total", "phoenix_gpu_temperature_celsius", "phoenix_gpu_power_usage_watts",
                 "phoenix_gpu_utilization_ratio", "phoenix_gpu_memory_used_bytes", "phoenix_gpu_ecc_errors_total",
                 "phoenix_gpu_xid_errors_total"):
        assert must in used, f"the dashboard does not show {must}"


def test_panels_have_unique_ids_and_do_not_overlap(dashboard):
    panels = list(all_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    boxes = [(p["title"], p["gridPos"]) for p in panels]
    for title, g in boxes:
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, title
    for i, (t1, a) in enumerate(boxes):
        for t2, b in boxes[i + 1:]:
            overlap = (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and
                       a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])
            assert not overlap, f"{t1!r} overlaps {t2!r}"


def test_every_panel_says_what_it_shows(dashboard):
    for panel in all_panels(dashboard["panels"]):
        if panel["type"] != "row":
            assert panel.get("description"), panel["title"]
