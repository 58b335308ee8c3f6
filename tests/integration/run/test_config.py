"""Configuration: precedence, the seed's variables and defaults, and errors that name key and source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phoenix_sidecar import config
from phoenix_sidecar.errors import ConfigError
from phoenix_sidecar.config.schema import key_specs
from testkit import run_phoenix

# The environment variables of phoenix_cli_manager.py, with their defaults (issue #3's table).
SEED = {
    "PHOENIX_TRAIN_CMD": ("train_cmd", ["python", "train.py"]),
    "PHOENIX_PRIMARY": ("primary", "gemini_cli"),
    "PHOENIX_DRY_RUN": ("dry_run", False),
    "GEMINI_API_KEY_ENV": ("gemini_api_key_env", "GEMINI_API_KEY"),
    "GEMINI_MODEL": ("gemini_model", "gemini-2.0-flash"),
    "PHOENIX_MAX_RETRIES": ("max_retries", 3),
    "PHOENIX_TAIL": ("tail", 200),
    "PHOENIX_MAX_FILE_CHARS": ("max_file_chars", 120000),
    "PHOENIX_MAX_PROMPT_CHARS": ("max_prompt_chars", 180000),
    "PHOENIX_HEARTBEAT_MIN": ("heartbeat_min", 15.0),
    "PHOENIX_TEST_CMD": ("test_cmd", None),
    "PHOENIX_ALLOWLIST": ("allowlist", ["*.py"]),
    "PHOENIX_LOG_MAX_BYTES": ("log_max_bytes", 5242880),
    "PHOENIX_MAX_BACKUPS": ("max_backups", 20),
    "PHOENIX_COOLDOWN_SECONDS": ("cooldown_seconds", 0.0),
    "PHOENIX_LOCK_STALE": ("lock_stale", 3600.0),
}


def load(tmp_path: Path, env: dict[str, str] | None = None, flags: dict | None = None) -> config.LoadedConfig:
    return config.load(environ=env or {}, flags=flags, cwd=str(tmp_path))


@pytest.mark.parametrize("variable", sorted(SEED))
def test_seed_variables_keep_their_names_and_defaults(tmp_path: Path, variable: str) -> None:
    name, default = SEED[variable]
    assert key_specs()[name].env == variable
    assert getattr(load(tmp_path).settings, name) == default


def test_seed_values_parse_as_the_script_meant(tmp_path: Path) -> None:
    s = load(tmp_path, {"PHOENIX_TRAIN_CMD": "torchrun --nproc-per-node 2 'my train.py'",
                        "PHOENIX_ALLOWLIST": "src/*.py;configs/*.yaml", "PHOENIX_HEARTBEAT_MIN": "0.5",
                        "PHOENIX_DRY_RUN": "1", "PHOENIX_TEST_CMD": "pytest -x tests"}).settings
    assert s.train_cmd == ["torchrun", "--nproc-per-node", "2", "my train.py"]
    assert s.allowlist == ["src/*.py", "configs/*.yaml"]
    assert s.heartbeat_seconds == 30.0
    assert s.dry_run is True
    assert s.test_cmd == ["pytest", "-x", "tests"]
    assert load(tmp_path, {"PHOENIX_HEARTBEAT_MIN": "0"}).settings.heartbeat_seconds is None


def test_precedence_is_flags_then_env_then_file_then_defaults(tmp_path: Path) -> None:
    (tmp_path / "phoenix.yaml").write_text("max_retries: 5\ntail: 50\nheartbeat_min: 2\n")
    loaded = load(tmp_path, {"PHOENIX_TAIL": "60", "PHOENIX_HEARTBEAT_MIN": "3"}, {"heartbeat_min": "4"})
    s, src = loaded.settings, loaded.sources
    assert (s.max_retries, src["max_retries"]) == (5, f"file {tmp_path / 'phoenix.yaml'}")
    assert (s.tail, src["tail"]) == (60, "env PHOENIX_TAIL")
    assert (s.heartbeat_min, src["heartbeat_min"]) == (4.0, "flag --heartbeat-min")
    assert (s.max_total_restarts, src["max_total_restarts"]) == (20, "default")


@pytest.mark.parametrize("env, key, words", [
    ({"PHOENIX_MAX_RETRIES": "three"}, "max_retries", "expected an integer >= 0"),
    ({"PHOENIX_MAX_RETRIES": "-1"}, "max_retries", "must be at least 0"),
    ({"PHOENIX_HEARTBEAT_MIN": "nan"}, "heartbeat_min", "expected a number >= 0"),
    ({"PHOENIX_PRIMARY": "gpt4"}, "primary", "expected one of: gemini_cli, gemini_api, openai, command"),
    ({"PHOENIX_DRY_RUN": "maybe"}, "dry_run", "expected a boolean"),
    ({"PHOENIX_FALLBACK": "gemini_api,claude"}, "fallback", "unknown client 'claude'"),
    ({"PHOENIX_TRAIN_CMD": "python 'unclosed"}, "train_cmd", "not valid shell words"),
    ({"PHOENIX_METRICS_ADDR": "localhost:99999"}, "metrics_addr", "port from 0 to 65535"),
    ({"PHOENIX_ACTIONS": "hang=reboot"}, "actions", "unknown action 'reboot'"),
])
def test_invalid_values_name_key_source_and_what_is_allowed(tmp_path: Path, env, key, words) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, env)
    message = str(info.value)
    assert message.startswith(f"{key} (from env {next(iter(env))})")
    assert words in message


def test_file_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "phoenix.yaml"
    cfg.write_text("heartbeat_min: [1\n")
    with pytest.raises(ConfigError, match=r"malformed YAML at line 2"):
        load(tmp_path)
    cfg.write_text("heartbeat_mins: 1\n")
    with pytest.raises(ConfigError, match=r"heartbeat_mins \(from file .*\): unknown key; .*did you mean heartbeat_min"):
        load(tmp_path)
    cfg.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping of settings"):
        load(tmp_path)
    cfg.write_text("gemini_api_key: AIzaSECRET\n")
    with pytest.raises(ConfigError, match="secrets are not read from files") as info:
        load(tmp_path)
    assert "AIzaSECRET" not in str(info.value)
    cfg.write_bytes(b"tail: \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(environ={}, config_file=str(tmp_path / "missing.yaml"), cwd=str(tmp_path))


def test_file_values_may_be_yaml_types(tmp_path: Path) -> None:
    (tmp_path / "phoenix.yaml").write_text(
        "train_cmd: [torchrun, --standalone, train.py]\nallowlist: ['*.py', 'conf/*.yaml']\n"
        "actions: {cuda_oom: stop, hang: repair}\ntest_cmd: null\ndry_run: yes\n")
    s = load(tmp_path).settings
    assert s.train_cmd == ["torchrun", "--standalone", "train.py"]
    assert s.allowlist == ["*.py", "conf/*.yaml"]
    assert s.action_for("cuda_oom") == "stop" and s.action_for("hang") == "repair"
    assert s.action_for("code_bug") == "repair" and s.action_for("gpu_hardware") == "stop"
    assert s.dry_run is True


def test_empty_numeric_env_means_unset(tmp_path: Path) -> None:
    assert load(tmp_path, {"PHOENIX_MAX_RETRIES": ""}).settings.max_retries == 3


def test_near_miss_variable_gets_a_warning(tmp_path: Path) -> None:
    loaded = load(tmp_path, {"PHOENIX_HEARTBEAT_MINS": "1", "PHOENIX_COLLECTOR_ENDPOINT": "x"})
    assert loaded.warnings == ["environment variable PHOENIX_HEARTBEAT_MINS is not a Phoenix setting; "
                               "did you mean PHOENIX_HEARTBEAT_MIN?"]


def test_phoenix_config_shows_sources_and_masks_secrets(tmp_path: Path) -> None:
    (tmp_path / "phoenix.yaml").write_text("tail: 50\nwebhook_url: https://hooks.example/T000/SECRET\n")
    result = run_phoenix(["config", "-w", str(tmp_path), "--set", "max_retries=4"], cwd=tmp_path,
                         env={"GEMINI_API_KEY": "AIza-very-secret", "PHOENIX_HEARTBEAT_MIN": "1"})
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "AIza-very-secret" not in out and "SECRET" not in out
    lines = {line.split("=")[0].strip(): line for line in out.splitlines() if "=" in line}
    assert lines["tail"].endswith(f"# file {tmp_path / 'phoenix.yaml'}")
    assert lines["max_retries"].endswith("# flag --set max_retries")
    assert lines["heartbeat_min"].endswith("# env PHOENIX_HEARTBEAT_MIN")
    assert "****" in lines["gemini_api_key"] and lines["gemini_api_key"].endswith("# env GEMINI_API_KEY")
    assert "****" in lines["webhook_url"]
    as_json = json.loads(run_phoenix(["config", "--json", "-w", str(tmp_path)], cwd=tmp_path).stdout)
    assert {row["name"] for row in as_json["settings"]} >= set(key_specs())


def test_config_error_exit_code_is_2(tmp_path: Path) -> None:
    result = run_phoenix(["config", "-w", str(tmp_path)], cwd=tmp_path, env={"PHOENIX_TAIL": "lots"})
    assert result.returncode == 2
    assert result.stderr.decode().strip() == \
        "phoenix: error: tail (from env PHOENIX_TAIL): expected an integer >= 1 and <= 100000 (got 'lots')"


def test_image_defaults_lose_to_the_file_and_the_environment(tmp_path: Path) -> None:
    # The sidecar image sets PHOENIX_DEFAULT_*: defaults, so deploy/phoenix.yaml still decides.
    ws = tmp_path / "ws"
    ws.mkdir()
    image = {"PHOENIX_DEFAULT_WORKSPACE": str(ws), "PHOENIX_DEFAULT_METRICS_ADDR": "0.0.0.0:9479",
             "PHOENIX_DEFAULT_TAIL": "77"}
    loaded = load(tmp_path, env=image)
    assert loaded.settings.workspace == str(ws) and loaded.sources["workspace"] == "image default PHOENIX_DEFAULT_WORKSPACE"
    assert loaded.settings.metrics_addr == "0.0.0.0:9479" and loaded.settings.tail == 77
    (ws / "phoenix.yaml").write_text("metrics_addr: 127.0.0.1:9999\n")  # found in the image's default workspace
    loaded = load(tmp_path, env=image)
    assert loaded.settings.metrics_addr == "127.0.0.1:9999"
    assert loaded.sources["metrics_addr"] == f"file {ws / 'phoenix.yaml'}"
    loaded = load(tmp_path, env={**image, "PHOENIX_TAIL": "5"})
    assert loaded.settings.tail == 5 and loaded.sources["tail"] == "env PHOENIX_TAIL"
    with pytest.raises(ConfigError, match="PHOENIX_DEFAULT_TAIL"):
        load(tmp_path, env={"PHOENIX_DEFAULT_TAIL": "lots"})
    assert not load(tmp_path, env=image).warnings
    assert "PHOENIX_DEFAULT_TAIL" in load(tmp_path, env={"PHOENIX_DEFAULT_TAILS": "1"}).warnings[0]


def test_phoenix_config_shows_the_file_winning_over_the_image_default(tmp_path: Path) -> None:
    config_file = tmp_path / "phoenix.yaml"
    config_file.write_text("tail: 42\n")  # (metrics_addr: the tests' environment turns metrics off)
    result = run_phoenix(["config"], cwd=tmp_path,
                         env={"PHOENIX_CONFIG": str(config_file), "PHOENIX_DEFAULT_WORKSPACE": str(tmp_path),
                              "PHOENIX_DEFAULT_TAIL": "500"})
    assert result.returncode == 0, result.stderr
    lines = {line.split("=")[0].strip(): line for line in result.stdout.decode().splitlines() if "=" in line}
    assert "42" in lines["tail"] and lines["tail"].endswith(f"# file {config_file}")
    assert lines["workspace"].endswith("# image default PHOENIX_DEFAULT_WORKSPACE")
