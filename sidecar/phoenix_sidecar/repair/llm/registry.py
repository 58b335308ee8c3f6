"""The LLM clients Phoenix knows, by the name the settings use, and `build_clients` for the configured ones.

Adding a client: write its module (a class with ``name`` and ``complete(prompt) -> str`` that raises
`LlmError`, see `base`), add one entry to `CLIENTS`, and name it in ``config.schema.LLM_CLIENTS`` so
the settings accept it (a unit test keeps the two in step). Only this module imports the clients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.repair.llm.base import LlmClient
from phoenix_sidecar.repair.llm.http import GeminiApiClient
from phoenix_sidecar.repair.llm.openai_compat import OpenAiClient
from phoenix_sidecar.repair.llm.program import CommandClient, GeminiCliClient

# A factory gets the settings, the environment (keys, the CLI's environment) and the workspace.
Factory = Callable[[Settings, Mapping[str, str], Path], LlmClient]

CLIENTS: Mapping[str, Factory] = {
    "gemini_cli": lambda settings, environ, workspace: GeminiCliClient(settings, environ),
    "gemini_api": lambda settings, environ, workspace: GeminiApiClient(settings, environ),
    "openai": lambda settings, environ, workspace: OpenAiClient(settings, environ),
    "command": lambda settings, environ, workspace: CommandClient(settings, environ, workspace),
}


def build_clients(settings: Settings, environ: Mapping[str, str], workspace: Path) -> list[LlmClient]:
    """The configured clients: the primary, then the fallbacks, each once (unknown names are skipped)."""
    names = dict.fromkeys([settings.primary, *settings.fallback])
    return [CLIENTS[name](settings, environ, workspace) for name in names if name in CLIENTS]
