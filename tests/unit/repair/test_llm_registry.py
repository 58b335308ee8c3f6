"""The LLM client registry: the settings' client names and the registry agree, and each name builds its client."""

from __future__ import annotations

from pathlib import Path

from phoenix_sidecar.config.schema import LLM_CLIENTS, Settings
from phoenix_sidecar.repair.llm import CLIENTS, build_clients


def test_every_client_the_settings_accept_is_registered() -> None:
    assert tuple(CLIENTS) == LLM_CLIENTS


def test_build_clients_gives_the_primary_then_each_fallback_once(tmp_path: Path) -> None:
    settings = Settings(workspace=str(tmp_path), primary="command", fallback=["openai", "command", "gemini_api"])
    clients = build_clients(settings, {}, tmp_path)
    assert [c.name for c in clients] == ["command", "openai", "gemini_api"]


def test_each_registered_name_builds_the_client_of_that_name(tmp_path: Path) -> None:
    settings = Settings(workspace=str(tmp_path))
    assert {name: factory(settings, {}, tmp_path).name for name, factory in CLIENTS.items()} == {
        name: name for name in LLM_CLIENTS}
