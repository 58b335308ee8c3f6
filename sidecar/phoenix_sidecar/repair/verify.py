"""Verification of a patch inside the isolated copy: it must compile, then pass the test command.

Stage ``py_compile`` compiles every changed Python file in a child interpreter (never in Phoenix's
own; compiling runs none of the code) and parses changed JSON, YAML and TOML files. Stage
``test_cmd`` (`run_tests`) runs the configured command with the copy as its working directory,
under the time limit (its whole process group is killed at the limit), in an environment without
Phoenix's LLM secrets, with PYTHONPATH entries that pointed into the workspace pointed into the
copy, and ``TMPDIR`` in the copy's scratch directory. Under the sandbox (`sandbox.wrap`) it can
write nothing else; without one, `writeguard` detects and undoes writes to the workspace and home.
A pytest command must also leave a JUnit report that shows tests ran and none failed: an exit
code of 0 alone (``os._exit(0)`` from an imported module) proves nothing.
"""

from __future__ import annotations

import json
import os
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from phoenix_sidecar.events import EventBus, StepProgress, VerificationFinished
from phoenix_sidecar.repair import proc, sandbox
from phoenix_sidecar.repair.isolation import Isolated
from phoenix_sidecar.repair.writeguard import WriteGuard
from phoenix_sidecar.config.schema import Settings

COMPILE_TIMEOUT = 120.0
MAX_LOG_BYTES = 256 * 1024
_LLM_SECRETS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "PHOENIX_WEBHOOK_URL")
MAX_REPORT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Verification:
    ok: bool
    stage: str  # the stage that failed, or the last that ran
    output: str
    seconds: float
    timed_out: bool = False
    wrote: tuple[str, ...] = ()  # what the test command changed outside its copy (no sandbox), undone
    unrestored: tuple[str, ...] = ()  # ... and what of that could not be undone


def verify(iso: Isolated, files: list[str], settings: Settings, environ: Mapping[str, str],
           bus: EventBus, box: sandbox.SandboxStatus | None = None) -> Verification:
    """Run the stages in the copy; the first failure ends verification."""
    env = test_environment(settings, environ, Path(settings.workspace), iso.workspace)
    env["PWD"] = str(iso.workspace)
    compiled = _compile(iso, files, env, bus)
    if not compiled.ok or not settings.test_cmd:
        return compiled
    tested = run_tests(iso, settings, environ, box or sandbox.SandboxStatus(False, "not probed"), bus=bus)
    return Verification(tested.ok, "test_cmd", tested.output, compiled.seconds + tested.seconds, tested.timed_out,
                        tested.wrote, tested.unrestored)


def run_tests(iso: Isolated, settings: Settings, environ: Mapping[str, str], box: sandbox.SandboxStatus, *,
              bus: EventBus | None = None, label: str = "patched") -> Verification:
    """Run the test command once in the copy, sandboxed (or watched), and judge its result."""
    assert settings.test_cmd
    env = test_environment(settings, environ, Path(settings.workspace), iso.workspace)
    env["PWD"] = str(iso.workspace)
    scratch = iso.scratch
    run_dir = scratch / label
    for sub in ("home", "tmp"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    env["TMPDIR"] = str(run_dir / "tmp")
    argv = list(settings.test_cmd)
    report = run_dir / "junit.xml" if is_pytest(argv) else None
    if report is not None:
        argv.append(f"--junitxml={report}")
    guard = None
    if box.works:
        env["HOME"] = str(run_dir / "home")
        argv = sandbox.wrap(argv, bwrap=box.why, writable=[iso.root, scratch], cwd=iso.workspace, readable=[],
                            environ=env)
    else:
        home = environ.get("HOME")
        guard = WriteGuard.capture(Path(settings.workspace), Path(home) if home else None, iso.root.parent / "vault")
    started = time.monotonic()
    step = f"verifying the {label} copy: {' '.join(settings.test_cmd)}"
    if bus is not None:
        bus.emit(StepProgress(step="verify", detail=step, limit_seconds=settings.test_timeout_seconds))
    try:
        result = proc.run(argv, cwd=iso.workspace, env=env, timeout=settings.test_timeout_seconds,
                          merge_stderr=True, keep="tail", max_output=MAX_LOG_BYTES, on_start=iso.track)
    except OSError as exc:
        seconds = time.monotonic() - started
        if bus is not None:
            bus.emit(VerificationFinished(seconds=seconds, ok=False, stage="test_cmd"))
        return Verification(False, "test_cmd", f"cannot run the test command {settings.test_cmd[0]!r}: "
                                               f"{exc.strerror or exc}", seconds)
    finally:
        if bus is not None:  # however the run ended: the console stops repeating the step
            bus.emit(StepProgress(step="verify", detail=step, limit_seconds=settings.test_timeout_seconds, done=True))
    wrote: list[str] = []
    unrestored: list[str] = []
    if guard is not None:
        wrote = guard.changes()
        if wrote:
            unrestored = guard.restore()
    ok = result.returncode == 0 and not wrote
    output = result.text()
    if result.timed_out:
        output += (f"\n[phoenix] the test command did not finish within {settings.test_timeout_seconds:g} s; "
                   f"its process group was killed")
    elif result.returncode != 0:
        output += f"\n[phoenix] the test command exited {result.returncode}"
    elif wrote:
        output += f"\n[phoenix] the test command wrote outside its copy: {', '.join(wrote[:10])}"
    elif report is not None:
        problem = pytest_report_problem(report)
        if problem:
            ok = False
            output += f"\n[phoenix] the test command exited 0, but {problem}"
    if bus is not None:
        bus.emit(VerificationFinished(seconds=result.seconds, ok=ok, stage="test_cmd"))
    return Verification(ok, "test_cmd", output, result.seconds, result.timed_out, tuple(wrote), tuple(unrestored))


def is_pytest(argv: Sequence[str]) -> bool:
    """Whether the command runs pytest (``pytest ...``, ``py.test``, ``python -m pytest ...``)."""
    if not argv:
        return False
    if Path(argv[0]).name in ("pytest", "py.test") or Path(argv[0]).name.startswith("pytest-"):
        return True
    return any(a == "-m" and b in ("pytest", "py.test") for a, b in zip(argv, argv[1:]))


def pytest_report_problem(report: Path) -> str | None:
    """What is wrong with pytest's JUnit report (missing, unreadable, no test ran, failures), or None."""
    try:
        if report.stat().st_size > MAX_REPORT_BYTES:
            return "its pytest report is too large to be one"
        root = ET.fromstring(report.read_bytes())
    except FileNotFoundError:
        return "pytest wrote no report: it did not finish (something ended the process early)"
    except (OSError, ET.ParseError) as exc:
        return f"its pytest report cannot be read ({exc})"
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    counts = {k: sum(int(s.get(k, "0") or 0) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    ran = counts["tests"] - counts["skipped"]
    if counts["failures"] or counts["errors"]:
        return f"its pytest report shows {counts['failures']} failure(s) and {counts['errors']} error(s)"
    if ran <= 0:
        return f"pytest collected {counts['tests']} test(s) and ran none of them (nothing was verified)"
    return None


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
