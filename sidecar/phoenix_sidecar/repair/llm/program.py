"""LLM clients that are programs: the Gemini CLI, and any command that reads a prompt on stdin.

The Gemini CLI is an agent that can edit files and run commands, so it runs where it cannot act:
non-interactive, never in an auto-approving mode, in the read-only ``plan`` approval mode where the
installed version has one (else ``default``, which headless mode uses to refuse every tool that
needs approval), and in an empty scratch directory instead of the workspace. Phoenix only reads
its output. Flags are chosen once per client from the CLI's own ``--help``.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from phoenix_sidecar.errors import LlmError
from phoenix_sidecar.repair import proc
from phoenix_sidecar.repair.llm.base import config_error
from phoenix_sidecar.config.schema import Settings

HELP_TIMEOUT = 30.0
MAX_ANSWER_BYTES = 8 * 1024 * 1024
INSTRUCTION = "Answer the request above with the JSON object it asks for, and nothing else. Do not use tools."
EXIT_MEANINGS = {
    1: "general or API error", 41: "authentication failed", 42: "input error", 44: "sandbox error",
    52: "configuration error", 53: "turn limit reached", 54: "tool execution error", 55: "untrusted folder",
    130: "cancelled",
}
_PLAN_UNAVAILABLE = re.compile(r'Approval mode "plan" is only available', re.I)


class GeminiCliClient:
    """The ``gemini`` command in headless mode, with the prompt on stdin."""

    name = "gemini_cli"

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self.environ = dict(environ)
        self._help: str | None = None
        self._plan_ok = True

    def complete(self, prompt: str) -> str:
        flags = self._flags()
        result = self._run(flags, prompt)
        if result.returncode not in (0, None) and "plan" in flags and _PLAN_UNAVAILABLE.search(result.text("stderr")):
            self._plan_ok = False  # this installation has plan mode switched off: default is still read-only here
            result = self._run(self._flags(), prompt)
        if result.timed_out:
            raise LlmError("timeout", f"gemini did not answer within {self.settings.llm_timeout_seconds:g} s "
                                      f"(its process group was killed)", client=self.name)
        if result.returncode != 0:
            meaning = EXIT_MEANINGS.get(result.returncode or 0, "error")
            detail = _last_line(result.text("stderr"))
            raise LlmError("process", f"gemini exited {result.returncode} ({meaning}): {detail}", client=self.name)
        return self._answer(result.text(), json_mode="json" in flags)

    def _flags(self) -> list[str]:
        help_text = self._help_text()
        flags: list[str] = []
        if "--approval-mode" in help_text:
            plan = self._plan_ok and re.search(r"\bplan\b", _option_text(help_text, "--approval-mode"))
            flags += ["--approval-mode", "plan" if plan else "default"]
        if "--output-format" in help_text:
            flags += ["--output-format", "json"]
        if "--skip-trust" in help_text:
            flags.append("--skip-trust")  # it trusts only the empty scratch directory it runs in
        if re.search(r"(^|\s)-p,|--prompt\b", help_text):
            flags += ["-p", INSTRUCTION]
        return flags

    def _help_text(self) -> str:
        if self._help is None:
            try:
                with tempfile.TemporaryDirectory(prefix="phoenix-gemini-") as scratch:
                    result = proc.run([self.settings.gemini_cli_bin, "--help"], cwd=scratch, env=self._env(),
                                      timeout=HELP_TIMEOUT, max_output=1024 * 1024)
            except OSError as exc:
                raise config_error(self.name, f"cannot run the Gemini CLI {self.settings.gemini_cli_bin!r}: "
                                              f"{exc.strerror or exc}; install @google/gemini-cli or set "
                                              f"GEMINI_CLI_BIN") from None
            if result.timed_out:
                raise LlmError("timeout", "gemini --help did not finish", client=self.name)
            self._help = result.text() + "\n" + result.text("stderr")
        return self._help

    def _run(self, flags: list[str], prompt: str) -> proc.ProcResult:
        scratch = tempfile.mkdtemp(prefix="phoenix-gemini-")
        try:
            return proc.run([self.settings.gemini_cli_bin, *flags], cwd=scratch, env=self._env(),
                            timeout=self.settings.llm_timeout_seconds, stdin=prompt.encode("utf-8"),
                            max_output=MAX_ANSWER_BYTES)
        except OSError as exc:
            raise config_error(self.name, f"cannot run {self.settings.gemini_cli_bin!r}: "
                                          f"{exc.strerror or exc}") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _env(self) -> dict[str, str]:
        env = dict(self.environ)
        env.pop(self.settings.openai_api_key_env, None)  # another service's key has no business here
        env.update({"NO_COLOR": "1", "TERM": "dumb"})
        return env

    def _answer(self, stdout: str, *, json_mode: bool) -> str:
        if not json_mode:
            return stdout
        data = _first_json_object(stdout)
        if not isinstance(data, dict):
            return stdout  # an older CLI that ignored --output-format: its text is the answer
        if isinstance(data.get("response"), str):
            return data["response"]
        if data.get("error"):
            error = data["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise LlmError("process", f"gemini reported an error: {str(message)[:300]}", client=self.name)
        return stdout


def _option_text(help_text: str, option: str) -> str:
    """The help of one option: its line and the continuation lines after it."""
    start = help_text.find(option)
    if start < 0:
        return ""
    rest = help_text[start:]
    m = re.search(r"\n\s*-{1,2}[A-Za-z]", rest[len(option):])
    return rest[: len(option) + m.start()] if m else rest


def _first_json_object(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    for m in re.finditer(r"(?m)^\s*\{", text):
        try:
            return decoder.raw_decode(text, m.start() + len(m.group()) - 1)[0]
        except ValueError:
            continue
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message on stderr"


class CommandClient:
    """Any program (``llm_cmd``) that reads the prompt on stdin and prints the answer."""

    name = "command"

    def __init__(self, settings: Settings, environ: Mapping[str, str], workspace: Path) -> None:
        self.settings = settings
        self.environ = dict(environ)
        self.workspace = workspace

    def complete(self, prompt: str) -> str:
        argv = self.settings.llm_cmd
        if not argv:
            raise config_error(self.name, "no command: set llm_cmd (a program that reads the prompt on stdin)")
        try:
            result = proc.run(argv, cwd=self.workspace, env=self.environ, timeout=self.settings.llm_timeout_seconds,
                              stdin=prompt.encode("utf-8"), max_output=MAX_ANSWER_BYTES)
        except OSError as exc:
            raise config_error(self.name, f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
        if result.timed_out:
            raise LlmError("timeout", f"{argv[0]} did not answer within {self.settings.llm_timeout_seconds:g} s "
                                      f"(its process group was killed)", client=self.name)
        if result.returncode != 0:
            raise LlmError("process", f"{argv[0]} exited {result.returncode}: {_last_line(result.text('stderr'))}",
                           client=self.name)
        if result.stdout_truncated:
            raise LlmError("parse", f"{argv[0]} printed more than {MAX_ANSWER_BYTES} bytes", client=self.name)
        return result.text()
