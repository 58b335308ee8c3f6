"""A hostile config file run through the real `phoenix run`: exit 2, at once, in little memory.

The memory is the child's peak RSS (``getrusage`` in a small wrapper process, so no other child of
the test counts). The time bound is a hang guard only; `bench/` holds timing targets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit import PHOENIX, clean_env

HANG_GUARD = 60
_MEASURE = ("import json, resource, subprocess, sys, time\n"
            "t = time.monotonic(); r = subprocess.run(sys.argv[1:], capture_output=True)\n"
            "print(json.dumps({'rc': r.returncode, 'seconds': time.monotonic() - t, 'stderr': r.stderr.decode(),\n"
            "                  'maxrss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n")


def _laughs() -> str:
    lines = ['lol: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"l{i}: &{chr(97 + i)} [{','.join([f'*{chr(96 + i)}'] * 9)}]")
    return "\n".join(lines) + "\ntrain_cmd: *j\n"


HOSTILE = {
    "billion_laughs": _laughs(),
    "huge_number": f"max_retries: {'9' * 5000}\n",
    "deep_nesting": "allowlist: " + "[" * 20000 + "]" * 20000 + "\n",
    "deep_mapping": "allowlist: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
    "huge_value": f"test_cmd: {'x' * 900_000}\n",
    "absurd_interval": "gpu_poll_seconds: 1.0e308\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_config_exits_2_quickly_in_little_memory(tmp_path: Path, name: str) -> None:
    (tmp_path / "phoenix.yaml").write_text(HOSTILE[name])
    out = subprocess.run([sys.executable, "-c", _MEASURE, *PHOENIX, "run", "--", "true"], cwd=tmp_path,
                         env=clean_env(), capture_output=True, timeout=HANG_GUARD, check=True)
    result = json.loads(out.stdout)
    assert result["rc"] == 2, result["stderr"]
    assert "Traceback" not in result["stderr"] and len(result["stderr"]) < 600
    assert result["maxrss_kb"] < 100 * 1024, result
    assert not (tmp_path / ".phoenix_cli").exists()  # refused before anything was written


def test_a_file_as_workspace_exits_2(tmp_path: Path) -> None:
    out = subprocess.run([*PHOENIX, "run", "--set", "workspace=/etc/passwd", "--", "true"], cwd=tmp_path,
                         env=clean_env(), capture_output=True, timeout=HANG_GUARD)
    assert out.returncode == 2 and b"not a directory" in out.stderr
