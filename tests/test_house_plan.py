"""The house plan, checked: every module says what it is for, no module outgrows one responsibility,
and every wing's face says what the wing is for and what it may import.

The import rules themselves (direction, seams, cycles) are in ``test_layout.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from testkit import REPO

PACKAGES = [REPO / "sidecar" / "phoenix_sidecar", REPO / "watchdog" / "phoenix_watchdog"]
MODULES = sorted(p for pkg in PACKAGES for p in pkg.rglob("*.py"))
# "Modules of roughly 50 to 400 lines": a module past this has more than one responsibility.
MAX_LINES = 400
WINGS = [
    "phoenix_sidecar/config", "phoenix_sidecar/supervise", "phoenix_sidecar/runtime",
    "phoenix_sidecar/runtime/local", "phoenix_sidecar/runtime/docker", "phoenix_sidecar/runtime/slurm",
    "phoenix_sidecar/observe",
    "phoenix_sidecar/repair", "phoenix_sidecar/repair/llm", "phoenix_sidecar/repair/patch",
    "phoenix_sidecar/commands", "phoenix_watchdog/diagnosis", "phoenix_watchdog/probes",
    "phoenix_watchdog/sources", "phoenix_watchdog/progress",
]


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_every_module_opens_with_a_docstring_saying_its_role(path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text(), str(path)))
    if path.name == "__main__.py":
        return
    assert doc and len(doc.split()) >= 4, f"{_rel(path)} has no docstring saying what it is for"


def test_no_module_is_over_the_size_of_one_responsibility() -> None:
    sizes = {_rel(p): len(p.read_text().splitlines()) for p in MODULES}
    assert {k: v for k, v in sizes.items() if v > MAX_LINES} == {}


def test_the_folders_are_the_wings_and_only_the_wings() -> None:
    """A new package folder is a new wing: add it here, with a face, on purpose."""
    folders = sorted(f"{pkg.name}/{d.relative_to(pkg)}" for pkg in PACKAGES for d in pkg.rglob("*")
                     if d.is_dir() and (d / "__init__.py").exists())
    assert folders == sorted(WINGS)


@pytest.mark.parametrize("wing", WINGS)
def test_each_wing_face_says_what_it_is_for_and_what_it_may_import(wing: str) -> None:
    root = "sidecar" if wing.startswith("phoenix_sidecar") else "watchdog"
    init = REPO / root / wing / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(), str(init))) or ""
    assert len(doc.split()) >= 20, f"{wing}/__init__.py does not say what the wing is for"
    assert "import" in doc.lower(), f"{wing}/__init__.py does not say what the wing may import"
