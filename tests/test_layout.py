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


# -- engineer B's rules: the config loader stays out of repair and observe; no import circles -----

_PACKAGES = {"phoenix_sidecar": REPO / "sidecar" / "phoenix_sidecar",
             "phoenix_watchdog": REPO / "watchdog" / "phoenix_watchdog"}


def _module_files() -> dict[str, Path]:
    """Every module of both packages by dotted name (a package by its ``__init__.py``)."""
    out = {}
    for name, root in _PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = [name, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """What ``module`` imports from both packages, anywhere in it (functions and TYPE_CHECKING too).

    ``from a.b import c`` imports ``a.b.c`` when that is a module, else ``a.b``. Importing ``a.b.c``
    also runs ``a/__init__`` and ``a/b/__init__``, so those count too, except the module's own
    parents: Python has started them before the module itself runs.
    """
    is_package = path.name == "__init__.py"
    direct: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            direct.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                direct.add(sub if sub in known else base)
    own_parents = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    out = set()
    for name in direct:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in known and (prefix not in own_parents or prefix == name):
                out.add(prefix)
    out.discard(module)
    return out


def import_graph() -> dict[str, set[str]]:
    files = _module_files()
    known = set(files)
    return {m: _imports(m, p, known) for m, p in files.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycles(import_graph()) == []


def test_the_cycle_check_sees_a_circle_through_a_package_init() -> None:
    # a.x imports b.y; b/__init__ imports b.z; b.z imports a.x: a circle only through b's __init__.
    graph = {"a": set(), "a.x": {"b", "b.y"}, "b": {"b.z"}, "b.y": set(), "b.z": {"a.x", "a"}}
    assert _cycles(graph) == [["a.x", "b", "b.z"]]
    graph = import_graph()
    assert "phoenix_sidecar.repair" in graph["phoenix_sidecar.supervise.loop"]  # parents count
    assert "phoenix_sidecar.repair" not in graph["phoenix_sidecar.repair.engine"]  # not one's own


def test_repair_and_observe_never_import_the_config_loader() -> None:
    graph = import_graph()
    offenders = {m: sorted(i for i in imports if i == "phoenix_sidecar.config.loader")
                 for m, imports in graph.items()
                 if m.startswith(("phoenix_sidecar.repair", "phoenix_sidecar.observe"))}
    assert {m: v for m, v in offenders.items() if v} == {}
    # the config face re-exports the loader: importing it is importing the loader
    offenders = {m: "phoenix_sidecar.config" for m, imports in graph.items()
                 if m.startswith(("phoenix_sidecar.repair", "phoenix_sidecar.observe"))
                 and any(i == "phoenix_sidecar.config" for i in _direct_names(m))}
    assert offenders == {}


def _direct_names(module: str) -> set[str]:
    """Modules named by ``import x`` or ``from x import ...`` in ``module`` (not their parents)."""
    return imported_modules(_module_files()[module])


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
