"""The Prometheus config, alert rules and their promtool unit tests, checked with the real promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.prometheus

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"
RULES = DEPLOY / "rules" / "phoenix.rules.yml"
TESTS = sorted((DEPLOY / "tests").glob("*.test.yml"))
METRIC = re.compile(r"\b(phoenix_[a-z0-9_]+|up)\b(?!\s*\()")


def promtool(*args: str, cwd: Path = DEPLOY, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool not found: `apt-get install -y prometheus` (scripts/test.sh does)")
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60, input=stdin)


def alerts() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"] if "alert" in rule]


def test_config_is_valid_and_loads_the_rules():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["job_name"] == "phoenix" and job["static_configs"][0]["targets"] == ["sidecar:9479"]


def test_rules_are_valid_and_lint_clean():
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass():
    assert TESTS, "no promtool test files"
    result = promtool("test", "rules", *map(str, TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TESTS)


def test_every_alert_has_a_firing_and_a_quiet_case():
    firing, quiet = set(), set()
    for path in TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet - {"PhoenixWatchdog"} == set(), "alerts never tested quiet"


def test_every_alert_says_how_bad_and_what_to_do():
    for alert in alerts():
        assert alert["labels"]["severity"] in ("critical", "warning", "none"), alert["alert"]
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], alert["alert"]
        assert re.fullmatch(r"Phoenix[A-Za-z]+", alert["alert"])


def test_the_dead_watchdog_guards_are_there():
    exprs = {a["alert"]: a["expr"] for a in alerts()}
    # down, unless the last state scraped said the job ended on purpose
    assert exprs["PhoenixDown"].startswith('up{job="phoenix"} == 0 unless on(job, instance) last_over_time(')
    assert exprs["PhoenixAbsent"] == 'absent(up{job="phoenix"})'


def test_rules_only_use_metrics_the_exporter_exposes(exposed_metric_names):
    for alert in alerts():
        for name in METRIC.findall(alert["expr"]):
            if name != "up":
                assert name in exposed_metric_names, f"{alert['alert']} uses {name}, which Phoenix does not expose"


def test_the_unit_tests_catch_a_broken_rule(tmp_path):
    broken = tmp_path / "rules"
    broken.mkdir()
    text = RULES.read_text().replace('phoenix_gpu_ecc_errors_total{type="uncorrected"} > 0',
                                     'phoenix_gpu_ecc_errors_total{type="uncorrected"} > 5')
    assert text != RULES.read_text()
    (broken / "phoenix.rules.yml").write_text(text)
    shutil.copytree(DEPLOY / "tests", tmp_path / "tests")
    result = promtool("test", "rules", *[str(tmp_path / "tests" / p.name) for p in TESTS], cwd=tmp_path)
    assert result.returncode != 0
    assert "PhoenixGpuUncorrectableEcc" in result.stdout + result.stderr


def test_the_exposition_passes_promtool_lint(full_scrape):
    result = promtool("check", "metrics", stdin=full_scrape)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), \
        result.stdout + result.stderr
