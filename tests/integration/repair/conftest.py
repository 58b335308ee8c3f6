"""Fixtures of the repair tests (helpers live in ``kits.repairkit``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kits.repairkit import Harness, build_harness, make_repo


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A git workspace with a committed train.py and model.py."""
    return make_repo(tmp_path / "ws")


@pytest.fixture
def harness() -> Callable[..., Harness]:
    return build_harness
