"""`phoenix diagnose`: what a crash log reduces to, as the supervisor would see it.

Prints, for each log, the error signature, the failure category, whether a code patch could
plausibly fix it, the root exception and the innermost frame in user code. ``--json`` prints one
`Diagnosis.to_json()` object per log (one per line, with ``"input"``) for scripts. ``--explain``
adds which rule decided, and every other piece of evidence with its strength and rule, strongest
first; ``--rules FILE`` adds the ``rules:`` of a phoenix.yaml (or a YAML list of rules).
``--triage`` asks the configured LLM clients (the workspace's configuration, ``--config`` and
``--set`` as for ``phoenix run``) to name a failure the rules call ``unknown``, as the supervisor
does with ``llm_triage: true``; the output says the category came from the LLM, and why.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import yaml

from phoenix_sidecar.config.schema import ACTIONS
from phoenix_sidecar.errors import UsageError
from phoenix_watchdog.diagnosis import Diagnosis, ExitStatus, Rule, diagnose, explain, user_rules
from phoenix_watchdog.diagnosis.logtext import MAX_CHARS

if TYPE_CHECKING:
    from phoenix_sidecar.supervise.triage import SessionTriage, TriageVerdict

# diagnose() looks at the last MAX_CHARS characters; reading a few times that many bytes keeps
# multi-byte text whole without ever reading a multi-gigabyte log in full.
READ_BYTES = 4 * MAX_CHARS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "diagnose", help="reduce crash logs to a signature, a category and the failing user frame",
        description="Diagnose crash logs the way the supervisor does: error signature, failure category, "
                    "whether a code patch could fix it, root exception, innermost frame in user code.")
    p.add_argument("logs", nargs="+", metavar="FILE", help="log file (its tail is read); - reads standard input")
    p.add_argument("--json", action="store_true", help="print one JSON object per log, one per line")
    p.add_argument("--exit-code", type=int, metavar="N", help="the job's exit code (137: SIGKILL, 139: SIGSEGV)")
    p.add_argument("--signal", type=int, metavar="N", help="the number of the signal that killed the job")
    p.add_argument("--oom-killed", action="store_true", help="the kernel OOM killer ended the job (Docker's OOMKilled)")
    p.add_argument("--workspace", "-w", metavar="DIR",
                   help="the job's directory as the job saw it: frames under it are user code "
                        "(default: the current directory, as for phoenix run)")
    p.add_argument("--explain", action="store_true",
                   help="show which rule decided, and all the evidence with its strength and rule, strongest first")
    p.add_argument("--rules", metavar="FILE",
                   help="add the diagnosis rules of this phoenix.yaml (its rules: list) or YAML list of rules")
    t = p.add_argument_group("LLM triage")
    t.add_argument("--triage", action="store_true",
                   help="ask the configured LLM to name a failure the rules call unknown (as llm_triage: true does)")
    t.add_argument("--config", "-c", metavar="FILE", help="config file for --triage (default: <workspace>/phoenix.yaml)")
    t.add_argument("--set", "-s", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="set a setting for --triage, e.g. --set primary=openai (repeatable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    exit = exit_status(args.exit_code, args.signal, args.oom_killed)
    if args.logs.count("-") > 1:
        raise UsageError("standard input (-) can be read only once")
    rules = read_rules(args.rules) if args.rules else ()
    inputs = [(name, read_log(name)) for name in args.logs]  # every file readable before any output
    workspace = args.workspace or os.getcwd()
    ask = _triage(args) if args.triage else None
    for i, (name, text) in enumerate(inputs):
        d = diagnose(text, exit, None, workspace, rules)
        verdict = None
        if ask is not None:  # the same failure in two logs is asked about once
            d, verdict = ask.apply(d, text, None)
        if args.json:
            row = {"input": name, **d.to_json()}
            if verdict is not None:
                row["category_source"], row["triage"] = verdict.category_source, verdict.record()
            if args.explain:
                row["explain"] = explain(text, exit, workspace, rules)
            print(json.dumps(row, ensure_ascii=False))
        else:
            if i:
                print()
            print(render(name, d))
            if verdict is not None:
                print(triage_line(verdict))
            if args.explain:
                print(f"  {'decided by':<11} {d.decided_by}")
                print("  all evidence, strongest first:")
                print("\n".join(f"    {line}" for line in explain(text, exit, workspace, rules)))
    return 0


def _triage(args: argparse.Namespace) -> SessionTriage:
    """The supervisor's triage (`SessionTriage` around the session's `LlmTriager`), from the configuration."""
    from phoenix_sidecar.commands.common import load_config
    from phoenix_sidecar.config.loader import secret
    from phoenix_sidecar.events import EventBus
    from phoenix_sidecar.redact import Redactor
    from phoenix_sidecar.supervise.session import build_triager
    from phoenix_sidecar.supervise.triage import SessionTriage

    settings = load_config(args).settings
    keys = [secret(settings, "gemini_api_key"), secret(settings, "openai_api_key")]
    redactor = Redactor.from_environ(os.environ, keys)
    return SessionTriage(build_triager(settings, EventBus(), Path(settings.workspace), redactor))


def triage_line(verdict: TriageVerdict) -> str:
    """What the LLM triage concluded, in the render's layout."""
    if verdict.named:
        return f"  {'triage':<11} category named by the LLM ({verdict.client}): {verdict.reason}"
    return f"  {'triage':<11} {verdict.result.value}, the category stays unknown: {verdict.reason}"


def read_rules(path: str) -> tuple[Rule, ...]:
    """The user's rules from a phoenix.yaml (its ``rules:``) or a YAML file that is a list of rules."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {exc}") from None
    raw = data.get("rules", []) if isinstance(data, dict) else data
    try:
        return user_rules(raw, ACTIONS)
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None


def exit_status(code: int | None, signal: int | None, oom_killed: bool) -> ExitStatus | None:
    if code is not None and not 0 <= code <= 255:
        raise UsageError(f"--exit-code must be 0-255, got {code}")
    if signal is not None and not 1 <= signal <= 64:
        raise UsageError(f"--signal must be a signal number 1-64, got {signal}")
    if code is None and signal is None and not oom_killed:
        return None
    return ExitStatus(code=code, signal=signal, oom_killed=oom_killed)


def read_log(name: str) -> str:
    """The tail of a log file (or of standard input), decoded leniently."""
    if name == "-":
        return _tail(sys.stdin.buffer).decode("utf-8", "replace")
    try:
        with open(name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > READ_BYTES:
                f.seek(size - READ_BYTES)
            data = _tail(f)
    except IsADirectoryError:
        raise UsageError(f"cannot read {name}: it is a directory") from None
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    return data.decode("utf-8", "replace")


def _tail(stream: BinaryIO) -> bytes:
    kept = b""
    while chunk := stream.read(1 << 20):
        kept = (kept + chunk)[-READ_BYTES:]
    return kept


def render(name: str, d: Diagnosis) -> str:
    """The readable block for one log."""
    frame = f"{d.frame.file}:{d.frame.line} in {d.frame.function}" if d.frame else "- (none in user code)"
    rows = [
        ("signature", d.signature),
        ("category", d.category),
        ("patchable", "yes, a code patch could plausibly fix it" if d.patchable else "no"),
        ("exception", d.exception or "- (no Python exception)"),
        ("message", d.message or "-"),
        ("user frame", frame),
        ("summary", d.summary),
    ]
    out = [f"{'stdin' if name == '-' else name}:"]
    out += [f"  {label:<11} {value}" for label, value in rows]
    for i, line in enumerate(d.evidence):
        out.append(f"  {'evidence' if i == 0 else '':<11} {line}")
    if d.files:
        out.append(f"  {'files':<11} {', '.join(d.files)}")
    return "\n".join(out)
