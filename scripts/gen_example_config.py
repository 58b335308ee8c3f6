"""Writes deploy/phoenix.example.yaml from the settings schema, so the example never drifts from the code.

    python scripts/gen_example_config.py          # rewrite the file
    python scripts/gen_example_config.py --check  # exit 1 if it is out of date (the tests run this)
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "sidecar"), str(ROOT / "watchdog")]

from phoenix_sidecar.config.schema import DEFAULT_ACTIONS, SECRET_VARIABLES, key_specs  # noqa: E402

TARGET = ROOT / "deploy" / "phoenix.example.yaml"
GROUPS = {
    "general": "The job",
    "policy": "Restart policy: budgets, backoff, cooldown, and the action per failure category",
    "repair": "Repair: the LLM clients, the prompt, the allowlist, verification",
    "docker": "Docker sidecar (phoenix watch)",
    "slurm": "Slurm jobs (phoenix watch --slurm-job)",
    "metrics": "Metrics and hardware safety gates",
    "progress": "Progress: steps from the output, the learned no-progress timeout, busy GPUs, divergence",
}
HEADER = """\
# Phoenix configuration: every setting, with its default and its environment variable.
# Copy it to <workspace>/phoenix.yaml (or pass --config FILE) and uncomment what you change.
# Precedence: command-line flags (--set key=value), then environment, then this file, then defaults.
# `phoenix config` prints the effective values and where each one came from.
# Secrets (API keys) are never read from this file: the *_api_key_env settings name the variable.
#
# Generated from sidecar/phoenix_sidecar/config/schema.py by scripts/gen_example_config.py.
"""


def render() -> str:
    out = [HEADER]
    specs = key_specs()
    for group, title in GROUPS.items():
        out.append(f"\n# === {title} ===\n")
        for spec in specs.values():
            if spec.group != group:
                continue
            default = spec.default
            if spec.name == "actions":
                table = "".join(f"#  {category}: {action}\n" for category, action in DEFAULT_ACTIONS.items())
                out.append(f"# {spec.help}; the defaults are: [env {spec.env}, as category=action,...]\n"
                           f"#actions:\n{table}")
                continue
            if spec.kind == "list" and spec.sep == ";":
                default = ";".join(default)
            value = yaml.safe_dump({spec.name: default}, default_flow_style=True, width=1000).strip()
            if value.startswith("{") and value.endswith("}"):
                value = value[1:-1]
            out.append(f"# {spec.help} [env {spec.env}]\n#{value}\n")
    out.append("\n# Secrets, read from the environment only:\n")
    for name, var_setting in SECRET_VARIABLES.items():
        out.append(f"#   {name}: the variable named by {var_setting} ({specs[var_setting].default} by default)\n")
    return "".join(out)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python scripts/gen_example_config.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
