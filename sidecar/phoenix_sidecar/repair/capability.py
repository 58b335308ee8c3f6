"""The capability guard: a patch may not give a file powers it did not have.

`capabilities` reads a Python source with `ast` and names what it can do beyond computing:
start processes (``subprocess``, ``os.system``, ``os.exec*``, ``os.spawn*``, ``os.popen``,
``os.fork``, ``pty``, ``multiprocessing``), end or signal them (``os._exit``, ``os.kill``), reach the
network (``socket``, ``urllib``, ``http.client``, ``requests``, ...), run code made at run time
(``eval``, ``exec``, ``compile``, ``__import__``, ``importlib``, ``ctypes``, ``marshal``,
``pickle`` loads), delete trees (``shutil.rmtree``), open absolute paths outside the workspace,
or notice that it runs under a test (``sys.modules``, ``PYTEST_CURRENT_TEST``: the way code cheats
a test command). `check_capabilities` refuses a change that adds any of them
(``RejectReason.CAPABILITY``), unless ``allow_capabilities`` is set. A file that does not parse
(the failure may be a syntax error) is read with a plain-text scan instead, on both sides.
Pure: no file is read here.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

from phoenix_sidecar.errors import AnswerRejected
from phoenix_sidecar.repair.outcomes import RejectReason

_MODULES = {
    "subprocess": "process", "pty": "process", "multiprocessing": "process", "pexpect": "process",
    "socket": "network", "ssl": "network", "urllib": "network", "http": "network", "requests": "network",
    "httpx": "network", "aiohttp": "network", "ftplib": "network", "smtplib": "network", "telnetlib": "network",
    "paramiko": "network", "websocket": "network", "websockets": "network", "xmlrpc": "network",
    "importlib": "dynamic code", "ctypes": "dynamic code", "cffi": "dynamic code", "marshal": "dynamic code",
    "runpy": "dynamic code", "code": "dynamic code", "codeop": "dynamic code",
}
_BUILTINS = {"eval": "dynamic code", "exec": "dynamic code", "compile": "dynamic code", "__import__": "dynamic code",
             "breakpoint": "dynamic code"}
_OS_PROCESS = re.compile(r"^(system|popen|fork|forkpty|exec\w*|spawn\w*|posix_spawn\w*|_exit|kill|killpg|abort)$")
_ATTRS = {("shutil", "rmtree"): "file system", ("pickle", "loads"): "dynamic code", ("pickle", "load"): "dynamic code",
          ("sys", "modules"): "test detection", ("sys", "_getframe"): "dynamic code"}
_TEST_MARKERS = ("PYTEST_CURRENT_TEST", "PYTEST_VERSION", "pytest", "unittest.mock")
_SAFE_ABS = ("/dev/null", "/dev/stdout", "/dev/stderr", "/proc/self/", "/sys/")
_TEXT = re.compile(r"\b(?:import\s+([\w.]+)|from\s+([\w.]+)\s+import|(os\.\w+|shutil\.rmtree|sys\.modules)|"
                   r"(eval|exec|compile|__import__)\s*\(|(PYTEST_CURRENT_TEST))")


def capabilities(source: str, workspace: Path | None = None) -> set[str]:
    """What ``source`` can do beyond computing, as ``"kind: name"`` strings."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return _scan_text(source)
    found: set[str] = set()
    os_names = {"os"}  # names under which os is reachable (import os as o)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                _module(alias.name, found)
                if alias.name == "os" and alias.asname:
                    os_names.add(alias.asname)
        elif isinstance(node, ast.ImportFrom) and node.module:
            _module(node.module, found)
            for alias in node.names:
                _attribute(node.module.split(".")[0], alias.name, found)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            base = "os" if node.value.id in os_names else node.value.id
            _attribute(base, node.attr, found)
        elif isinstance(node, ast.Name) and node.id in _BUILTINS:
            found.add(f"{_BUILTINS[node.id]}: {node.id}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if any(m == node.value or (m.isupper() and m in node.value) for m in _TEST_MARKERS):
                found.add(f"test detection: {node.value[:40]!r}")
        if isinstance(node, ast.Call):
            target = _written_path(node)
            if target is not None and _outside(target, workspace):
                found.add(f"file system: writes {target[:60]}")
    return found


def _written_path(call: ast.Call) -> str | None:
    """The constant path of an ``open(path, "w"...)`` (any writing mode), or None."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if name not in ("open", "write_text", "write_bytes") or not call.args:
        return None
    path = call.args[0] if name == "open" else (func.value.args[0] if isinstance(func, ast.Attribute)
                                                 and isinstance(func.value, ast.Call) and func.value.args else None)
    if not (isinstance(path, ast.Constant) and isinstance(path.value, str)):
        return None
    if name == "open":
        mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
        if not (isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax+")):
            return None
    return path.value


def _module(name: str, found: set[str]) -> None:
    top = name.split(".")[0]
    if top in _MODULES:
        found.add(f"{_MODULES[top]}: import {name}")


def _attribute(base: str, attr: str, found: set[str]) -> None:
    if base == "os" and _OS_PROCESS.match(attr):
        found.add(f"process: os.{attr}")
    elif (base, attr) in _ATTRS:
        found.add(f"{_ATTRS[base, attr]}: {base}.{attr}")


def _outside(text: str, workspace: Path | None) -> bool:
    """A path that climbs out (``../``) or an absolute one outside the workspace."""
    if os.path.normpath(text).startswith(".."):
        return True
    if not text.startswith("/") or any(text == s or text.startswith(s) for s in _SAFE_ABS):
        return False
    if workspace is not None:
        normal = Path(os.path.normpath(text))
        if normal == workspace or normal.is_relative_to(workspace):
            return False
    return True


def _scan_text(source: str) -> set[str]:
    found: set[str] = set()
    for m in _TEXT.finditer(source):
        module, frm, attr, builtin, marker = m.groups()
        if module or frm:
            _module(module or frm, found)
        elif attr:
            base, _, name = attr.partition(".")
            _attribute(base, name, found)
        elif builtin:
            found.add(f"{_BUILTINS[builtin]}: {builtin}")
        elif marker:
            found.add(f"test detection: {marker!r}")
    return found


def check_capabilities(old: str, new: str, rel: str, *, allowed: bool, workspace: Path | None = None) -> None:
    """Refuse ``new`` when it can do what ``old`` could not (unless ``allowed``).

    Raises:
        AnswerRejected: ``RejectReason.CAPABILITY``, naming what the patch would add.
    """
    if allowed or not rel.endswith((".py", ".pyw")):
        return
    parsed_both = _parses(old) and _parses(new)
    before = capabilities(old, workspace) if parsed_both else _scan_text(old)
    after = capabilities(new, workspace) if parsed_both else _scan_text(new)
    added = sorted(after - before)
    if added:
        raise AnswerRejected(RejectReason.CAPABILITY,
                             f"the patch adds what the file could not do before ({'; '.join(added[:5])}); fixes do "
                             f"not need that (allow_capabilities: true lets such patches through)", file_path=rel)


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True
