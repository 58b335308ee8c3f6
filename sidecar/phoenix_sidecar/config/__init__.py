"""Configuration: every setting Phoenix has, where its value came from, and how `phoenix config` shows it.

Modules:
    schema    `Settings` (frozen, typed), each setting's declaration, the ``actions`` table
              (`Action`, `DEFAULT_ACTIONS`, `action_table`), `secret`. Plain data: any wing may import it.
    loader    `load`: defaults < image defaults (``PHOENIX_DEFAULT_*``) < file < environment < command
              line, each value with its source;
              ``ConfigError`` names the key, the source and what is allowed. Reads files and the environment.
    yamlfile  the config file read defensively: no YAML aliases, bounded size and nesting, short quotes
    render    `effective` and `render`: the text and JSON of `phoenix config`, secrets masked.

Only commands and the composition root (``supervise.session``) load configuration; the repair and
observe wings receive `Settings` (and whatever else they need) injected and never import the
loader (a layout test checks). This wing imports ``phoenix_sidecar.errors`` and, for the failure
categories and the user's rules, ``phoenix_watchdog.diagnosis``; nothing else of Phoenix.

Public names: `load`, `LoadedConfig`, `Settings`, `Action`, `render`, `effective`, `secret`, `mask`.
"""

from phoenix_sidecar.config.loader import LoadedConfig, load, secret
from phoenix_sidecar.config.render import effective, mask, render
from phoenix_sidecar.config.schema import Action, Settings

__all__ = ["Action", "LoadedConfig", "Settings", "effective", "load", "mask", "render", "secret"]
