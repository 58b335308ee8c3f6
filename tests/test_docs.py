"""The example config and the README stay true to the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from phoenix_sidecar.config import loader as config
from phoenix_sidecar.config.schema import key_specs
from testkit import REPO


def test_example_config_is_generated_from_the_schema() -> None:
    result = subprocess.run([sys.executable, "scripts/gen_example_config.py", "--check"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_example_config_uncommented_loads_and_equals_the_defaults(tmp_path: Path) -> None:
    text = (REPO / "deploy" / "phoenix.example.yaml").read_text()
    text = re.sub(r"^#([a-z_]+:)", r"\1", text, flags=re.M)
    text = re.sub(r"^#(  [a-z_]+: [a-z]+)$", r"\1", text, flags=re.M)
    (tmp_path / "phoenix.yaml").write_text(text)
    loaded = config.load(environ={}, cwd=str(tmp_path))
    defaults = config.load(environ={}, cwd=str(tmp_path / "..")).settings
    for name in key_specs():
        if name not in ("workspace", "actions"):
            assert getattr(loaded.settings, name) == getattr(defaults, name), name
            assert loaded.sources[name].startswith("file "), name


def test_readme_lists_every_command_and_its_links_exist() -> None:
    from phoenix_sidecar.cli import build_parser

    readme = (REPO / "README.md").read_text()
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        assert f"`phoenix {name}" in readme, f"README does not document phoenix {name}"
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith("http"):
            assert (REPO / target).exists(), f"README links to a missing {target}"


def test_readme_seed_variable_table_matches_the_schema() -> None:
    readme = (REPO / "README.md").read_text()
    specs = key_specs()
    checked = 0
    for line in readme.splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) != 4 or not cells[0].startswith(("`PHOENIX_", "`GEMINI_")):
            continue
        variables = re.findall(r"`(\w+)`", cells[0])
        settings = re.findall(r"`(\w+)`", cells[1])
        # "GEMINI_API_KEY / GEMINI_API_KEY_ENV": the key itself is no setting; its variable's name is.
        for variable, setting in zip(variables[-len(settings):], settings):
            assert specs[setting].env == variable, (variable, setting)
            checked += 1
    assert checked >= 15, "the README's table of the seed's variables is missing"
