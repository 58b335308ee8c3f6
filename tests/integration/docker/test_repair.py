"""A code bug in a real PyTorch trainer container is repaired by the sidecar through an LLM stand-in
(the ``command`` client), the container is restarted, and the job completes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testkit import PHOENIX, REPO, clean_env

pytest.importorskip("phoenix_sidecar.repair", reason="the repair engine (phoenix_sidecar.repair) is not on this "
                                                     "branch yet")

TRAINER_IMAGE = "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"  # compose.yaml's; a CPU stand-in here
GOOD = "        loss = criterion(outputs, labels)\n"
BUG = "        loss = criterion(output, labels)\n"

STAND_IN = """
    # An LLM stand-in for the `command` client: reads the prompt, keeps it for the test, answers the fix.
    import json, sys
    prompt = sys.stdin.read()
    open({prompt_file!r}, "w").write(prompt)
    if "NameError" not in prompt or "criterion(output, labels)" not in prompt:
        sys.exit("the prompt lacks the traceback or the source")
    print(json.dumps({{"patches": [{{"file_path": "train.py", "mode": "search_replace",
                                   "search": {bug!r}, "replace": {good!r}}}]}}))
"""


@pytest.fixture(scope="module")
def torch_image(engine) -> str:  # type: ignore[no-untyped-def]
    engine.images("trainer")
    return TRAINER_IMAGE


@pytest.mark.torch
def test_code_bug_is_repaired_and_the_job_completes(engine, containers, torch_image: str, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    source = (REPO / "examples" / "trainer" / "train.py").read_text()
    assert source.count(GOOD) == 1
    (ws / "train.py").write_text(source.replace(GOOD, BUG))
    for args in (["init", "-q"], ["add", "train.py"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(ws), *args], check=True)
    prompt_file = tmp_path / "prompt.txt"
    stand_in = tmp_path / "standin.py"
    stand_in.write_text(textwrap.dedent(STAND_IN.format(prompt_file=str(prompt_file), bug=BUG, good=GOOD)))
    # The trainer sees the workspace at the same path as Phoenix, as in the compose stack.
    c = containers(["python", "-u", "train.py", "--epochs", "2", "--steps-per-epoch", "20", "--log-every", "10"],
                   image=torch_image, binds={str(ws): str(ws)}, working_dir=str(ws))
    result = subprocess.run([*PHOENIX, "watch", "-w", str(ws), "--container", c["name"],
                             "--set", "primary=command", "--set", f"llm_cmd={sys.executable} {stand_in}",
                             "--set", "backoff_initial_seconds=0.2", "--set", "docker_timeout_seconds=20"],
                            env=clean_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "NameError: name 'output' is not defined" in prompt_file.read_text()
    assert (ws / "train.py").read_text() == source  # the fix is in the workspace
    assert "training finished" in result.stdout
    state = json.loads((ws / ".phoenix_cli" / "state.json").read_text())
    [incident] = state["incidents"]
    assert incident["category"] == "code_bug" and incident["action"] == "repair"
    assert incident["repair"]["outcome"] == "promoted" and incident["repair"]["files"] == ["train.py"]
    assert state["job"]["state"] == "succeeded" and state["job"]["run"] == 2
