"""Loads `Settings` from defaults, the YAML file, the environment and the command line.

Precedence: command-line flags, then environment, then file, then defaults. ``PHOENIX_DEFAULT_<KEY>``
variables change a default (the sidecar image sets its workspace and metrics address that way), so
the file still wins over them, unlike ``PHOENIX_<KEY>``. Every value remembers
where it came from, so `phoenix config` can show it and an error can name it. An invalid value
stops Phoenix before it starts anything (``ConfigError``, exit code 2).

Input is parsed defensively, since a config file may come from anyone who can write the
workspace: the file is read by `yamlfile` (bounded size, no YAML anchors or aliases: a "billion
laughs" expands to gigabytes; bounded nesting), a number is at most
`MAX_NUMBER_CHARS` characters and within its setting's minimum and maximum, a text value at most
`MAX_TEXT_CHARS`, and every error message quotes only the start of the offending value (`yamlfile.quote`).
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from phoenix_sidecar.config import schema as S
from phoenix_sidecar.errors import ConfigError
from phoenix_sidecar.config.schema import KeySpec, Settings, key_specs
from phoenix_sidecar.config.yamlfile import parse_text, quote, read_yaml
from phoenix_watchdog.diagnosis.rules import user_rules

CONFIG_FILE_NAME = "phoenix.yaml"
CONFIG_ENV = "PHOENIX_CONFIG"
DEFAULT_PREFIX = "PHOENIX_DEFAULT_"  # PHOENIX_DEFAULT_<KEY>: a default (an image's), below the file


def default_variable(name: str) -> str:
    """The variable that changes the default of setting ``name``: ``PHOENIX_DEFAULT_METRICS_ADDR``."""
    return DEFAULT_PREFIX + name.upper()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# Kinds whose empty environment value means "unset" rather than "empty".
_EMPTY_IS_UNSET = {S.INT, S.FLOAT, S.BOOL, S.CHOICE}
MAX_NUMBER_CHARS = 40
MAX_TEXT_CHARS = 1 << 16


@dataclass(frozen=True)
class LoadedConfig:
    """The effective settings, where each came from, and warnings worth showing."""

    settings: Settings
    sources: dict[str, str]
    config_file: Path | None
    warnings: list[str] = field(default_factory=list)

    @property
    def workspace(self) -> Path:
        return Path(self.settings.workspace)


def load(*, flags: Mapping[str, Any] | None = None, config_file: str | None = None,
         environ: Mapping[str, str] | None = None, cwd: str | None = None,
         flag_sources: Mapping[str, str] | None = None) -> LoadedConfig:
    """Build the effective configuration.

    Args:
        flags: values from the command line, by setting name; strings are parsed like the environment.
        flag_sources: how each flag was given (``flag --set heartbeat_min``), for messages.
        config_file: ``--config FILE``; otherwise ``$PHOENIX_CONFIG`` or ``<workspace>/phoenix.yaml``.
        environ: the environment (``os.environ`` by default).
        cwd: directory relative paths start from (the current directory by default).

    Raises:
        ConfigError: a value, the file or a key is invalid; the message names key, source and what is allowed.
    """
    environ = os.environ if environ is None else environ
    flags = dict(flags or {})
    flag_sources = dict(flag_sources or {})
    base = Path(cwd or os.getcwd())
    specs = key_specs()
    for name in flags:
        if name not in specs:
            raise ConfigError(f"unknown setting; known settings: {_suggest(name, specs)}", key=name,
                              source=flag_sources.get(name, "command line"))

    values: dict[str, Any] = {name: spec.default for name, spec in specs.items()}
    sources: dict[str, str] = {name: "default" for name in specs}

    def apply(name: str, raw: Any, source: str) -> None:
        values[name] = parse_value(specs[name], raw, source)
        sources[name] = source

    # The workspace decides where the default config file is, so it is settled first.
    ws_spec = specs["workspace"]
    ws_raw, ws_source = None, None
    if "workspace" in flags:
        ws_raw, ws_source = flags["workspace"], flag_sources.get("workspace", "flag --workspace")
    elif environ.get(ws_spec.env):
        ws_raw, ws_source = environ[ws_spec.env], f"env {ws_spec.env}"
    ws_default = environ.get(default_variable("workspace")) or None

    for name, spec in specs.items():
        raw = environ.get(default_variable(name))
        if raw is None or raw.strip() == "":
            continue
        apply(name, raw, f"image default {default_variable(name)}")

    path = _find_config_file(config_file, environ, base, ws_raw if ws_raw is not None else ws_default, base)
    file_values = read_yaml(path) if path else {}
    for name, raw in file_values.items():
        if name in S.SECRET_VARIABLES:
            var = specs[S.SECRET_VARIABLES[name]].env
            raise ConfigError(f"secrets are not read from files; set it in the environment ({var} names the "
                              f"variable)", key=name, source=f"file {path}")
        if name not in specs:
            raise ConfigError(f"unknown key; known keys: {_suggest(name, specs)}", key=name, source=f"file {path}")
        apply(name, raw, f"file {path}")
    if "workspace" in file_values and path is not None:
        values["workspace"] = str((path.parent / values["workspace"]).resolve())

    for name, spec in specs.items():
        raw = environ.get(spec.env)
        if raw is None or (raw.strip() == "" and spec.kind in _EMPTY_IS_UNSET):
            continue
        apply(name, raw, f"env {spec.env}")

    for name, raw in flags.items():
        apply(name, raw, flag_sources.get(name, f"flag --{name.replace('_', '-')}"))

    if ws_raw is not None:
        values["workspace"] = str((base / ws_raw).resolve())
        sources["workspace"] = ws_source or sources["workspace"]
    elif sources["workspace"] == "default":
        values["workspace"] = str(base.resolve())
    elif sources["workspace"].startswith("image default"):
        values["workspace"] = str((base / values["workspace"]).resolve())

    _check_combinations(values, sources)
    warnings = _unknown_variable_warnings(environ, specs)
    return LoadedConfig(Settings(**values), sources, path, warnings)


def parse_value(spec: KeySpec, raw: Any, source: str) -> Any:
    """Turn a raw value (text from env/flags, or a YAML value) into the setting's type."""

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{problem} (got {quote(raw)})", key=spec.name, source=source)

    kind = spec.kind
    if isinstance(raw, str) and len(raw) > MAX_TEXT_CHARS:
        raise fail(f"too long: {len(raw)} characters, at most {MAX_TEXT_CHARS}")
    if raw is None:
        if kind == S.OPT_WORDS or spec.default is None:
            return None
        raise fail(f"must not be empty; expected {_describe(spec)}")
    if kind in (S.INT, S.FLOAT):
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise fail(f"expected {_describe(spec)}")
        if isinstance(raw, str) and len(raw.strip()) > MAX_NUMBER_CHARS:
            raise fail(f"expected {_describe(spec)}; a number of at most {MAX_NUMBER_CHARS} characters")
        if isinstance(raw, int) and abs(raw) > 10 ** MAX_NUMBER_CHARS:
            raise fail(f"expected {_describe(spec)}")
        try:
            num = int(str(raw).strip()) if kind == S.INT else float(str(raw).strip())
        except ValueError:
            raise fail(f"expected {_describe(spec)}") from None
        if kind == S.FLOAT and not math.isfinite(num):
            raise fail(f"expected {_describe(spec)}")
        if spec.minimum is not None and num < spec.minimum:
            raise fail(f"must be at least {spec.minimum:g}")
        if spec.maximum is not None and num > spec.maximum:
            raise fail(f"must be at most {spec.maximum:g}")
        return num
    if kind == S.BOOL:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise fail("expected a boolean: 1/0, true/false, yes/no, on/off")
    if kind == S.CHOICE:
        text = str(raw).strip()
        if text not in (spec.choices or ()):
            raise fail(f"expected one of: {', '.join(spec.choices or ())}")
        return text
    if kind == S.STR:
        if isinstance(raw, (dict, list)):
            raise fail("expected a string")
        return str(raw)
    if kind in (S.WORDS, S.OPT_WORDS):
        words = _words(raw, fail)
        if kind == S.OPT_WORDS and not words:
            return None
        return words
    if kind == S.LIST:
        if isinstance(raw, list):
            if not all(isinstance(i, (str, int, float)) and not isinstance(i, bool) for i in raw):
                raise fail("expected a list of strings")
        elif not isinstance(raw, str):
            raise fail(f"expected a list of strings, or one string of items separated by {spec.sep!r}")
        items = raw if isinstance(raw, list) else raw.split(spec.sep)
        items = [str(i).strip() for i in items if str(i).strip()]
        if spec.name == "fallback":
            bad = [i for i in items if i not in S.LLM_CLIENTS]
            if bad:
                raise fail(f"unknown client {bad[0]!r}; expected clients among: {', '.join(S.LLM_CLIENTS)}")
        return items
    if kind == S.MAPPING:
        return _actions(raw, fail)
    if kind == S.ADDR:
        return _address(raw, fail)
    if kind == S.RULES:
        return _rules(raw, spec, source)
    raise AssertionError(f"unhandled kind {kind}")


def _words(raw: Any, fail: Any) -> list[str]:
    if isinstance(raw, list):
        if not all(isinstance(w, (str, int, float)) for w in raw):
            raise fail("expected a command: a string of shell words or a list of strings")
        return [str(w) for w in raw]
    if not isinstance(raw, str):
        raise fail("expected a command: a string of shell words or a list of strings")
    try:
        return shlex.split(raw)
    except ValueError as exc:
        raise fail(f"not valid shell words ({exc})") from None


def _rules(raw: Any, spec: KeySpec, source: str) -> list[dict[str, Any]]:
    """The user's diagnosis rules, checked as the diagnosis will read them (a YAML list in a variable)."""
    if isinstance(raw, str):
        try:
            raw = parse_text(raw)
        except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
            raise ConfigError(f"expected a YAML list of rules: {quote(str(exc))}", key=spec.name,
                              source=source) from None
    try:
        user_rules(raw, S.ACTIONS)
    except ValueError as exc:
        raise ConfigError(str(exc), key=spec.name, source=source) from None
    return [dict(entry) for entry in raw or []]


def _actions(raw: Any, fail: Any) -> dict[str, str]:
    if isinstance(raw, str):
        pairs = {}
        for item in filter(None, (p.strip() for p in raw.split(","))):
            if "=" not in item:
                raise fail("expected category=action pairs separated by commas")
            k, v = item.split("=", 1)
            pairs[k.strip()] = v.strip()
        raw = pairs
    if not isinstance(raw, dict):
        raise fail("expected a mapping of category to action")
    out: dict[str, str] = {}
    for category, action in raw.items():
        if category not in S.CATEGORIES:
            raise fail(f"unknown category {category!r}; categories: {', '.join(S.CATEGORIES)}")
        if action not in S.ACTIONS:
            raise fail(f"unknown action {action!r} for {category}; actions: {', '.join(S.ACTIONS)}")
        out[str(category)] = str(action)
    return out


def _address(raw: Any, fail: Any) -> str:
    text = str(raw).strip()
    if text in ("", "off", "none"):
        return ""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise fail("expected host:port with a port from 0 to 65535, or empty to turn it off")
    host = host.strip("[]")
    if host and host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not all(part.isalnum() or "-" in part for part in host.split(".")):
                raise fail("expected host:port with a valid host name or IP address") from None
    return text


def _find_config_file(explicit: str | None, environ: Mapping[str, str], base: Path,
                      ws_raw: str | None, cwd: Path) -> Path | None:
    if explicit or environ.get(CONFIG_ENV):
        source = "flag --config" if explicit else f"env {CONFIG_ENV}"
        path = (cwd / (explicit or environ[CONFIG_ENV])).resolve()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist or is not a file", source=source)
        return path
    workspace = (base / ws_raw).resolve() if ws_raw else base.resolve()
    candidate = workspace / CONFIG_FILE_NAME
    return candidate if candidate.is_file() else None


def _check_combinations(values: dict[str, Any], sources: dict[str, str]) -> None:
    if values["progress_pattern"]:
        from phoenix_watchdog.progress.parse import compile_pattern
        try:
            compile_pattern(values["progress_pattern"])
        except ValueError as exc:
            raise ConfigError(str(exc), key="progress_pattern", source=sources["progress_pattern"]) from None
    workspace = Path(values["workspace"])
    if workspace.exists() and not workspace.is_dir():
        raise ConfigError(f"{quote(str(workspace))} is not a directory", key="workspace", source=sources["workspace"])
    if values["backoff_max_seconds"] < values["backoff_initial_seconds"]:
        raise ConfigError(
            f"must be at least backoff_initial_seconds ({values['backoff_initial_seconds']:g})",
            key="backoff_max_seconds", source=sources["backoff_max_seconds"])
    if values["max_prompt_chars"] < 2000:
        raise ConfigError("must be at least 2000", key="max_prompt_chars", source=sources["max_prompt_chars"])
    if values["container"] and values["container_label"]:
        raise ConfigError("set container or container_label, not both", key="container_label",
                          source=sources["container_label"])
    label = values["container_label"]
    if label and ("=" not in label or label.startswith("=")):
        raise ConfigError("expected key=value, e.g. phoenix.role=trainer", key="container_label",
                          source=sources["container_label"])


def _unknown_variable_warnings(environ: Mapping[str, str], specs: dict[str, KeySpec]) -> list[str]:
    # Other tools (arize-phoenix) also use PHOENIX_*, so only near-misses are worth a warning.
    known = {s.env for s in specs.values()} | {CONFIG_ENV} | {default_variable(n) for n in specs}
    out = []
    for var in environ:
        if var.startswith("PHOENIX_") and var not in known:
            close = difflib.get_close_matches(var, known, n=1, cutoff=0.85)
            if close:
                out.append(f"environment variable {var} is not a Phoenix setting; did you mean {close[0]}?")
    return out


def _suggest(name: str, specs: dict[str, KeySpec]) -> str:
    close = difflib.get_close_matches(name, specs, n=3)
    if close:
        return "did you mean " + " or ".join(close) + "?"
    return ", ".join(specs)


def _describe(spec: KeySpec) -> str:
    noun = "an integer" if spec.kind == S.INT else "a number"
    if spec.minimum is not None:
        noun += f" >= {spec.minimum:g}"
    if spec.maximum is not None:
        noun += f" and <= {spec.maximum:g}"
    return noun


def secret(settings: Settings, name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """`schema.secret`, reading ``os.environ`` unless told otherwise (for commands)."""
    return S.secret(settings, name, os.environ if environ is None else environ)
