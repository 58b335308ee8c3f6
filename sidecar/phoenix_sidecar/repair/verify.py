"""Verification of a patch inside the isolated copy: it must compile, then pass the test command.

Stage ``py_compile`` compiles every changed Python file in a child interpreter (never in Phoenix's
own) and parses changed JSON, YAML and TOML files. Stage ``test_cmd`` runs the configured command
with the copy as its working directory, under the time limit (its whole process group is killed
at the limit), in an environment without Phoenix's LLM secrets and with PYTHONPATH entries that
pointed into the workspace pointed into the copy instead.
"""

from __future__ import annotations

import json
import os
import sys
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from phoenix_sidecar.events import EventBus, VerificationFinished
from phoenix_sidecar.repair import proc
from phoenix_sidecar.repair.isolation import Isolated
from phoenix_sidecar.config.schema import Settings

COMPILE_TIMEOUT = 120.0
MAX_LOG_BYTES = 256 * 1024
_LLM_SECRETS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "PHOENIX_WEBHOOK_URL")


@dataclass(frozen=True)
class Verification:
    ok: bool
    stage: str  # the stage that failed, or the last that ran
    output: str
    seconds: float
    timed_out: bool = False


def verify(iso: Isolated, files: list[str], settings: Settings, environ: Mapping[str, str],
           bus: EventBus) -> Verification:
    """Run the stages in the copy; the first failure ends verification."""
    env = test_environment(settings, environ, Path(settings.workspace), iso.workspace)
    env["PWD"] = str(iso.workspace)
    compiled = _compile(iso, files, env, bus)
    if not compiled.ok or not settings.test_cmd:
        return compiled
    started = time.monotonic()
    try:
        result = proc.run(settings.test_cmd, cwd=iso.workspace, env=env, timeout=settings.test_timeout_seconds,
                          merge_stderr=True, keep="tail", max_output=MAX_LOG_BYTES, on_start=iso.track)
    except OSError as exc:
        seconds = time.monotonic() - started
        bus.emit(VerificationFinished(seconds=seconds, ok=False, stage="test_cmd"))
        return Verification(False, "test_cmd", f"cannot run the test command {settings.test_cmd[0]!r}: "
                                               f"{exc.strerror or exc}", seconds)
    ok = result.returncode == 0
    bus.emit(VerificationFinished(seconds=result.seconds, ok=ok, stage="test_cmd"))
    output = result.text()
    if result.timed_out:
        output += (f"\n[phoenix] the test command did not finish within {settings.test_timeout_seconds:g} s; "
                   f"its process group was killed")
    elif not ok:
        output += f"\n[phoenix] the test command exited {result.returncode}"
    return Verification(ok, "test_cmd", output, compiled.seconds + result.seconds, result.timed_out)


def _compile(iso: Isolated, files: list[str], env: Mapping[str, str], bus: EventBus) -> Verification:
    started = time.monotonic()
    problems: list[str] = []
    python = [f for f in files if f.endswith((".py", ".pyw"))]
    if python:
        try:
            # "./" keeps a file named like an option from being read as one.
            result = proc.run([sys.executable, "-m", "py_compile", *(f"./{f}" for f in python)],
                              cwd=iso.workspace, env=env, timeout=COMPILE_TIMEOUT, merge_stderr=True, keep="tail",
                              max_output=MAX_LOG_BYTES, on_start=iso.track)
        except OSError as exc:
            result = None
            problems.append(f"cannot run {sys.executable}: {exc.strerror or exc}")
        if result is not None and result.returncode != 0:
            problems.append(result.text().strip() or f"py_compile exited {result.returncode}")
    for rel in files:
        problem = _parse_config(iso.workspace / rel, rel)
        if problem:
            problems.append(problem)
    seconds = time.monotonic() - started
    ok = not problems
    bus.emit(VerificationFinished(seconds=seconds, ok=ok, stage="py_compile"))
    return Verification(ok, "py_compile", "\n".join(problems), seconds)


def _parse_config(path: Path, rel: str) -> str | None:
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif suffix in (".yaml", ".yml"):
            list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        elif suffix == ".toml":
            tomllib.loads(path.read_text(encoding="utf-8"))
    except (ValueError, yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        return f"{rel}: not valid {suffix[1:].upper()}: {' '.join(str(exc).split())[:300]}"
    except OSError as exc:
        return f"{rel}: cannot read: {exc.strerror}"
    return None


def test_environment(settings: Settings, environ: Mapping[str, str], workspace: Path,
                     copy: Path) -> dict[str, str]:
    """The environment of verification: no LLM secrets; workspace paths on PYTHONPATH moved to the copy."""
    drop = {settings.gemini_api_key_env, settings.openai_api_key_env, *_LLM_SECRETS}
    env = {k: v for k, v in environ.items() if k not in drop}
    if env.get("PYTHONPATH"):
        real = Path(os.path.realpath(workspace))
        moved = []
        for entry in env["PYTHONPATH"].split(os.pathsep):
            p = Path(os.path.realpath(entry)) if entry else None
            if p is not None and (p == real or p.is_relative_to(real)):
                moved.append(str(copy / p.relative_to(real)))
            else:
                moved.append(entry)
        env["PYTHONPATH"] = os.pathsep.join(moved)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
