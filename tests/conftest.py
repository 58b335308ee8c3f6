"""Fixtures for every test: no stray Phoenix or LLM settings leak in from the developer's shell."""

from __future__ import annotations

import os

import pytest

from testkit import LEAKY_PREFIXES


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(LEAKY_PREFIXES):
            monkeypatch.delenv(key)
