"""What `phoenix config` prints: the effective settings, where each came from, secrets masked.

Reads a `LoadedConfig` and the environment it is given; writes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from collections.abc import Mapping
from typing import Any

from phoenix_sidecar.config import schema as S
from phoenix_sidecar.config.loader import LoadedConfig
from phoenix_sidecar.config.schema import Settings, key_specs


def mask(value: str) -> str:
    """Show that a secret is set without showing it."""
    return "****" if value else ""


def effective(loaded: LoadedConfig, environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Rows of the effective configuration, secrets masked: name, value, source, env, help."""
    environ = os.environ if environ is None else environ
    specs = key_specs()
    rows = []
    for f in dataclasses.fields(Settings):
        spec = specs[f.name]
        value = getattr(loaded.settings, f.name)
        if spec.secret and value:
            value = mask(value)
        rows.append({"name": f.name, "value": value, "source": loaded.sources[f.name],
                     "env": spec.env, "help": spec.help, "sep": spec.sep if spec.kind == S.LIST else None})
    for name, var_setting in S.SECRET_VARIABLES.items():
        var = getattr(loaded.settings, var_setting)
        present = bool(environ.get(var))
        rows.append({"name": name, "value": mask("x") if present else None,
                     "source": f"env {var}" if present else f"not set (env {var})", "env": var,
                     "help": f"read from the variable named by {var_setting}", "sep": None})
    return rows


def render(loaded: LoadedConfig, environ: Mapping[str, str] | None = None, *, as_json: bool = False) -> str:
    """The text `phoenix config` prints."""
    rows = effective(loaded, environ)
    if as_json:
        return json.dumps({"config_file": str(loaded.config_file) if loaded.config_file else None,
                           "settings": rows}, indent=2)
    width = max(len(r["name"]) for r in rows)
    lines = [f"# config file: {loaded.config_file or 'none'}"]
    for r in rows:
        lines.append(f"{r['name']:<{width}} = {_show(r['value'], r.get('sep')):<40} # {r['source']}")
    return "\n".join(lines)


def _show(value: Any, sep: str | None = None) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, list):
        if not value:
            return "[]"
        return sep.join(value) if sep else shlex.join(value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "{}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
