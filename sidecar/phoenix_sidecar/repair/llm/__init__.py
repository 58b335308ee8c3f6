"""LLM clients: ask a model for a repair and get answer text back, never acting on its own.

Modules:
    base      the `LlmClient` protocol, `config_error`, `Task` (instruction and answer schema; `REPAIR`)
    chain     `LlmChain`: the clients in order until one gives an answer that parses
    http      clients over HTTP: the Gemini API (``gemini_api``), OpenAI-compatible servers (``openai``)
    program   clients that are programs: the Gemini CLI (``gemini_cli``), any command (``command``)
    registry  `CLIENTS` by settings name, `build_clients`, `client_names`

Imports run registry -> http, program -> base, and chain -> base; nothing here imports the
registry or the chain back, so there is no import circle. A new client is one module and one
entry in `registry.CLIENTS`. This wing may import ``errors``, ``events``, ``config.schema`` and
``repair.proc`` (program clients run under a time limit); never ``config.loader``.

Public names: `LlmClient`, `Task`, `REPAIR`, `LlmChain`, `ChainResult`, `build_clients`,
`client_names`, `CLIENTS`.
"""

from phoenix_sidecar.repair.llm.base import REPAIR, LlmClient, Task
from phoenix_sidecar.repair.llm.chain import ChainResult, LlmChain
from phoenix_sidecar.repair.llm.registry import CLIENTS, build_clients, client_names

__all__ = ["CLIENTS", "REPAIR", "ChainResult", "LlmChain", "LlmClient", "Task", "build_clients", "client_names"]
