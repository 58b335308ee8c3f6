"""The example config and the README stay true to the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from phoenix_sidecar import config
from phoenix_sidecar.settings import key_specs
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
