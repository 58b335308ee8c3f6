"""The design card's rules, checked: imports run sidecar -> watchdog only; no top-level sidecar/watchdog."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from testkit import REPO


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_watchdog_never_imports_the_sidecar() -> None:
    offenders = {str(p.relative_to(REPO)): sorted(m for m in imported_modules(p) if m.startswith("phoenix_sidecar"))
                 for p in (REPO / "watchdog").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_source_roots_are_not_packages_and_docker_sdk_has_one_seam() -> None:
    assert not (REPO / "sidecar" / "__init__.py").exists()
    assert not (REPO / "watchdog" / "__init__.py").exists()
    users = [p.relative_to(REPO) for p in (REPO / "sidecar").rglob("*.py")
             if any(m == "docker" or m.startswith("docker.") for m in imported_modules(p))]
    assert [str(p) for p in users] == ["sidecar/phoenix_sidecar/runtime/docker/guard.py"]


def test_installed_distribution_ships_no_top_level_sidecar_or_watchdog(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                             "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    import zipfile

    (wheel,) = tmp_path.glob("*.whl")
    tops = {name.split("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"phoenix_sidecar", "phoenix_watchdog"}


def test_commands_use_runtime_faces_only() -> None:
    """Commands neither build runtimes nor import their internals: only `phoenix_sidecar.runtime`
    or a runtime folder's face, `phoenix_sidecar.runtime.<name>` (never `runtime.docker.guard`)."""
    runtime = REPO / "sidecar" / "phoenix_sidecar" / "runtime"
    faces = {"phoenix_sidecar.runtime"} | {f"phoenix_sidecar.runtime.{p.parent.name}"
                                           for p in runtime.glob("*/__init__.py")}
    offenders = {str(p.relative_to(REPO)): sorted(m for m in imported_modules(p)
                                                 if m.startswith("phoenix_sidecar.runtime") and m not in faces)
                 for p in (REPO / "sidecar" / "phoenix_sidecar" / "commands").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}
    assert {"phoenix_sidecar.runtime.local", "phoenix_sidecar.runtime.docker"} <= faces
