"""The loader against hostile input: every number bounded, aliases and deep nesting refused, short errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoenix_sidecar.config import loader, yamlfile
from phoenix_sidecar.config.schema import FLOAT, INT, key_specs
from phoenix_sidecar.errors import ConfigError


def _load(tmp_path: Path, text: str | None = None, **flags: str) -> loader.LoadedConfig:
    if text is not None:
        (tmp_path / "phoenix.yaml").write_text(text)
    return loader.load(flags=flags, environ={}, cwd=str(tmp_path))


def test_every_number_has_a_minimum_and_a_maximum() -> None:
    numbers = [s for s in key_specs().values() if s.kind in (INT, FLOAT)]
    assert numbers
    for spec in numbers:
        assert spec.minimum is not None and spec.maximum is not None, spec.name
        assert spec.minimum <= (spec.default if spec.default is not None else spec.minimum) <= spec.maximum


@pytest.mark.parametrize("name", [s.name for s in key_specs().values() if s.kind in (INT, FLOAT)])
def test_a_number_above_its_maximum_is_refused(tmp_path: Path, name: str) -> None:
    spec = key_specs()[name]
    with pytest.raises(ConfigError, match="at most"):
        _load(tmp_path, **{name: str(int(spec.maximum) + 1)})


def test_an_absurd_poll_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="gpu_poll_seconds.*at most 3600"):
        _load(tmp_path, "gpu_poll_seconds: 1.0e308\n")


def test_a_5000_digit_number_is_refused_in_the_file_and_on_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, f"max_retries: {'9' * 5000}\n")
    assert len(str(info.value)) < 400
    (tmp_path / "phoenix.yaml").unlink()
    with pytest.raises(ConfigError, match="at most 40 characters") as info:
        _load(tmp_path, max_retries="9" * 5000)
    assert len(str(info.value)) < 400


def test_billion_laughs_is_refused_at_the_first_anchor(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [{','.join([f'*{chr(96 + i)}'] * 9)}]")
    with pytest.raises(ConfigError, match="anchors"):
        _load(tmp_path, "\n".join(lines) + "\ntrain_cmd: *j\n")


def test_an_alias_alone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="aliases"):
        _load(tmp_path, "train_cmd: *nothing\n")


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nested deeper"):
        _load(tmp_path, "allowlist: " + "[" * 20000 + "]" * 20000 + "\n")


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="larger than"):
        _load(tmp_path, "# " + "x" * (yamlfile.MAX_FILE_BYTES + 10) + "\n")


def test_a_huge_value_gives_a_short_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, f"test_cmd: {'x' * 500_000}\n")
    assert "too long" in str(info.value) and len(str(info.value)) < 400


def test_a_mapping_is_not_a_pattern_list(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="allowlist.*list of strings"):
        _load(tmp_path, "allowlist: {a: 1}\n")
    with pytest.raises(ConfigError, match="allowlist.*list of strings"):
        _load(tmp_path, "allowlist: [[a]]\n")


def test_a_file_as_workspace_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="workspace.*not a directory"):
        _load(tmp_path, workspace="/etc/passwd")


def test_ordinary_values_still_load(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "gpu_poll_seconds: 2.5\nallowlist: ['*.py', 'conf/*.yaml']\nmax_retries: 5\n")
    assert loaded.settings.gpu_poll_seconds == 2.5 and loaded.settings.max_retries == 5
    assert loaded.settings.allowlist == ["*.py", "conf/*.yaml"]


def test_rules_in_a_variable_get_the_same_yaml_limits_as_the_file(tmp_path: Path) -> None:
    laughs = 'a: &a ["x","x"]\nb: &b [*a,*a]\n'
    with pytest.raises(ConfigError, match="aliases|anchors"):
        loader.load(environ={"PHOENIX_RULES": laughs}, cwd=str(tmp_path))
