"""Helpers of the repair tests: real git workspaces, engines with recorded events, state fingerprints.

Import as ``from kits.repairkit import ...`` (``tests/`` is on the pytest path).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

from phoenix_sidecar.events import Event, EventBus
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.repair import RepairEngine
from phoenix_sidecar.config.schema import Settings

GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "Test",
           "GIT_COMMITTER_EMAIL": "test@example.com", "GIT_CONFIG_NOSYSTEM": "1"}

TRAIN = '''import sys


def batch_size(cfg):
    return cfg["batch"]


def main(args):
    # show a greeting
    print("Hello!")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''


def git(cwd: Path, *args: str, check: bool = True) -> str:
    env = {**os.environ, **GIT_ENV}
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr.decode()}")
    return result.stdout.decode()


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for rel, text in (files or {"train.py": TRAIN, "model.py": "LAYERS = 2\n"}).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


@dataclasses.dataclass
class Harness:
    """An engine on a workspace, and the events it emitted."""

    workspace: Path
    engine: RepairEngine
    events: list[Event]
    settings: Settings

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def build_harness(workspace: Path, *, environ: dict[str, str] | None = None, config_file: Path | None = None,
                  **overrides: Any) -> Harness:
    """An engine on ``workspace`` with ``Settings`` overrides; its events are collected."""
    settings = Settings(workspace=str(workspace), **overrides)
    events: list[Event] = []
    bus = EventBus()
    bus.subscribe(events.append)
    env = dict(os.environ) if environ is None else environ
    engine = RepairEngine(settings, StatePaths(workspace).ensure(), bus, environ=env, config_file=config_file)
    return Harness(workspace, engine, events, settings)


def fingerprint(workspace: Path) -> dict[str, Any]:
    """Everything a user could notice of a workspace and its repository, byte for byte.

    Files (content, mode, link targets) outside .phoenix_cli/, HEAD, the index file, refs, the
    worktree list and `git status`. The index is read before any git command runs.
    """
    files: dict[str, Any] = {}
    for root, dirs, names in os.walk(workspace):
        rel_root = Path(root).relative_to(workspace)
        dirs[:] = [d for d in dirs if not (rel_root == Path(".") and d in (".phoenix_cli",)) and d != ".git"]
        for name in names:
            p = Path(root) / name
            rel = str(p.relative_to(workspace))
            st = os.lstat(p)
            if os.path.islink(p):
                files[rel] = ("link", os.readlink(p))
            else:
                files[rel] = (st.st_mode, hashlib.sha256(p.read_bytes()).hexdigest())
    state: dict[str, Any] = {"files": files}
    git_dir = workspace / ".git"
    if git_dir.is_dir():
        state["index"] = hashlib.sha256((git_dir / "index").read_bytes()).hexdigest()
        state["HEAD"] = (git_dir / "HEAD").read_text()
        state["refs"] = git(workspace, "for-each-ref", "--format=%(refname) %(objectname)")
        state["worktrees"] = git(workspace, "worktree", "list", "--porcelain")
        state["status"] = git(workspace, "--no-optional-locks", "status", "--porcelain=v2", "--branch",
                              "--untracked-files=all")
        state["hooks"] = sorted(p.name for p in (git_dir / "hooks").iterdir())
        state["config"] = (git_dir / "config").read_text()
    return state


class ScriptedServer:
    """A real HTTP server on 127.0.0.1 answering from a script of responses, recording each request.

    Each script entry is ``(status, body, headers)`` or a callable ``handler(request) -> entry``;
    the last entry repeats. ``request`` is a dict with method, path, headers and the parsed JSON body.
    """

    def __init__(self, script: list[Any]) -> None:
        import http.server
        import json as _json
        import threading

        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = _json.loads(raw or b"null")
                except ValueError:
                    body = None
                request = {"method": "POST", "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                           "body": body, "raw": raw}
                outer.requests.append(request)
                entry = outer.script[min(len(outer.requests) - 1, len(outer.script) - 1)]
                if callable(entry):
                    entry = entry(request)
                status, payload, headers = (entry + ({},))[:3] if len(entry) == 2 else entry
                data = payload if isinstance(payload, bytes) else _json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def gemini_reply(text: str) -> tuple[int, dict[str, Any]]:
    """A generateContent success response carrying ``text``."""
    return 200, {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
                 "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5}}


def openai_reply(text: str) -> tuple[int, dict[str, Any]]:
    return 200, {"id": "chatcmpl-1", "object": "chat.completion", "model": "local",
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}


def quota_error(retry: str | None = None, message: str = "You exceeded your current quota.",
                quota_id: str = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier") -> tuple[int, dict[str, Any]]:
    """A Gemini 429 RESOURCE_EXHAUSTED body, as the API sends it."""
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
         "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                         "quotaId": quota_id}]},
        {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more",
                                                                    "url": "https://ai.google.dev/gemini-api/docs"}]},
    ]
    if retry:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry})
    return 429, {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED", "details": details}}


FAKE_GEMINI = r'''#!/usr/bin/env python3
"""A stand-in for the Gemini CLI: records how it was run, then answers (or misbehaves) as told by env."""
import json, os, subprocess, sys, time
mode = os.environ.get("FAKE_GEMINI_MODE", "answer")
help_kind = os.environ.get("FAKE_GEMINI_HELP", "plan")
if "--help" in sys.argv:
    opts = ["  -m, --model                Model  [string]",
            "  -p, --prompt               Prompt. Appended to input on stdin (if any).  [string]",
            "  -y, --yolo                 Automatically accept all actions  [boolean] [default: false]"]
    if help_kind in ("plan", "noplan"):
        choices = '"default", "auto_edit", "yolo"' + (', "plan"' if help_kind == "plan" else "")
        opts.append(f"      --approval-mode        Set the approval mode: default (prompt for approval), auto_edit,\n"
                    f"                             yolo{', plan (read-only mode)' if help_kind == 'plan' else ''}"
                    f"  [string] [choices: {choices}]")
        opts.append("  -o, --output-format        The format of the CLI output.  [string] [choices: \"text\", \"json\"]")
        opts.append("      --skip-trust           Trust the current workspace for this session.  [boolean]")
    opts.append("  -s, --sandbox              Run in sandbox?  [boolean]")
    print("Usage: gemini [options] [command]\n\nOptions:\n" + "\n".join(opts))
    sys.exit(0)
prompt = sys.stdin.read()
record = {"argv": sys.argv[1:], "cwd": os.getcwd(), "cwd_entries": sorted(os.listdir(".")),
          "env": {k: v for k, v in os.environ.items()}, "stdin": prompt, "pid": os.getpid()}
log = os.environ.get("FAKE_GEMINI_LOG")
if log:
    with open(log, "a") as fh:
        fh.write(json.dumps(record) + "\n")
if mode == "plan_disabled" and "plan" in sys.argv:
    sys.stderr.write('Error: Approval mode "plan" is only available when experimental.plan is enabled.\n')
    sys.exit(1)
if mode == "sleep":
    child = subprocess.Popen(["sleep", "300"])
    with open(os.environ["FAKE_GEMINI_PIDS"], "w") as fh:
        fh.write(f"{os.getpid()} {child.pid}")
    time.sleep(300)
if mode.startswith("exit"):
    sys.stderr.write("Error authenticating: please set an auth method\n")
    sys.exit(int(mode[4:]))
answer = os.environ.get("FAKE_GEMINI_ANSWER", '{"patches": []}')
if "json" in sys.argv:
    print("Loaded cached credentials.")
    print(json.dumps({"session_id": "s1", "response": answer, "stats": {}}))
else:
    print(answer)
'''


def install_fake_gemini(bin_dir: Path) -> Path:
    """Install FAKE_GEMINI as an executable named ``gemini`` in ``bin_dir``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "gemini"
    exe.write_text(FAKE_GEMINI.replace("#!/usr/bin/env python3", f"#!{__import__('sys').executable}", 1))
    exe.chmod(0o755)
    return exe
