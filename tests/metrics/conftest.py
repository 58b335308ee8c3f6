"""Fixtures for the metrics tests: the fake NVML module, and a check that no thread outlives its test."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

_FAKE_PATH = Path(__file__).with_name("fakenvml.py")


def load_fakenvml() -> ModuleType:
    """tests/metrics/fakenvml.py under a unique module name (tests/metrics is not a package)."""
    name = "phoenix_tests_fakenvml"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _FAKE_PATH)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def fakenvml() -> ModuleType:
    return load_fakenvml()


def _phoenix_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("phoenix-")}


@pytest.fixture(autouse=True)
def _no_thread_left_behind() -> Iterator[None]:
    before = _phoenix_threads()
    yield
    deadline = time.monotonic() + 3.0
    while (left := _phoenix_threads() - before) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not left, f"threads left running after the test: {sorted(t.name for t in left)}"
