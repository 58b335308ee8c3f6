"""The LLM clients Phoenix knows, by the name the settings use, and `build_clients` for the configured ones.

Adding a client: write its module (a class with ``name`` and ``complete(prompt) -> str`` that raises
`LlmError`, see `base`), add one entry to `CLIENTS`, and name it in ``config.schema.LLM_CLIENTS`` so
the settings accept it (a unit test keeps the two in step). Only this module imports the clients.
A `base.Task` says what they ask for: patches (`base.REPAIR`) unless the caller names another; the
program clients carry the request in the prompt itself, so only the HTTP clients take it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.repair.llm.base import REPAIR, LlmClient, Task
from phoenix_sidecar.repair.llm.http import GeminiApiClient
from phoenix_sidecar.repair.llm.openai_compat import OpenAiClient
from phoenix_sidecar.repair.llm.program import CommandClient, GeminiCliClient

# A factory gets the settings, the environment (keys, the CLI's environment), the workspace and the task.
Factory = Callable[..., LlmClient]

CLIENTS: Mapping[str, Factory] = {
    "gemini_cli": lambda settings, environ, workspace, task=REPAIR: GeminiCliClient(settings, environ),
    "gemini_api": lambda settings, environ, workspace, task=REPAIR: GeminiApiClient(settings, environ, task=task),
    "openai": lambda settings, environ, workspace, task=REPAIR: OpenAiClient(settings, environ, task=task),
    "command": lambda settings, environ, workspace, task=REPAIR: CommandClient(settings, environ, workspace),
}


def client_names(settings: Settings) -> list[str]:
    """The configured clients' names: the primary, then the fallbacks, each once (unknown names skipped)."""
    return [name for name in dict.fromkeys([settings.primary, *settings.fallback]) if name in CLIENTS]


def build_clients(settings: Settings, environ: Mapping[str, str], workspace: Path,
                  task: Task = REPAIR) -> list[LlmClient]:
    """The configured clients, in the order of `client_names`, asking for ``task``."""
    return [CLIENTS[name](settings, environ, workspace, task) for name in client_names(settings)]
