"""`phoenix doctor --llm` asks the configured model for real (an OpenAI-compatible server on
127.0.0.1 stands in), and `--json` gives the results to a program."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from testkit import run_phoenix

OTHER_CHECKS = ["--skip", "docker", "--skip", "container", "--skip", "volumes", "--skip", "lock", "--skip", "git",
                "--skip", "sandbox", "--skip", "gpu"]


class Server:
    """Answers /v1/chat/completions like an OpenAI-compatible server, or with ``status`` and an error."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                if outer.status == 200:
                    reply = {"choices": [{"message": {"content": '{"patches": [], "explanation": "ok"}'}}]}
                else:
                    reply = {"error": {"message": "Incorrect API key provided: ..."}}
                data = json.dumps(reply).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def doctor(tmp_path: Path, server: Server, *args: str) -> tuple[int, dict]:
    env = {"PHOENIX_PRIMARY": "openai", "PHOENIX_FALLBACK": "", "PHOENIX_OPENAI_URL": server.url,
           "PHOENIX_OPENAI_MODEL": "qwen2.5-coder", "OPENAI_API_KEY": "sk-placeholder"}
    result = run_phoenix(["doctor", "-w", str(tmp_path), "--json", *OTHER_CHECKS, *args], cwd=tmp_path, env=env)
    return result.returncode, json.loads(result.stdout)


def llm_check(report: dict) -> dict:
    [check] = [c for c in report["checks"] if c["check"] == "llm"]
    return check


def test_doctor_llm_asks_the_model_a_tiny_question(tmp_path: Path, server: Server) -> None:
    code, report = doctor(tmp_path, server, "--llm")
    assert code == 0 and report["ok"] and report["failed"] == []
    check = llm_check(report)
    assert check["status"] == "ok" and check["detail"].startswith("openai answered in ")
    [request] = server.requests
    assert request["path"] == "/v1/chat/completions" and request["model"] == "qwen2.5-coder"
    assert request["auth"] == "Bearer sk-placeholder" and "connectivity check" in request["messages"][-1]["content"]


def test_doctor_llm_fails_on_a_key_the_server_refuses(tmp_path: Path, server: Server) -> None:
    server.status = 401
    code, report = doctor(tmp_path, server, "--llm")
    assert code == 1 and report["failed"] == ["llm"]
    check = llm_check(report)
    assert check["status"] == "fail" and "401" in check["detail"] and "Incorrect API key" in check["detail"]
    assert "placeholder" in check["fix"]


def test_without_llm_the_doctor_only_looks_at_the_settings(tmp_path: Path, server: Server) -> None:
    code, report = doctor(tmp_path, server)
    assert code == 0 and llm_check(report)["status"] == "ok" and server.requests == []
    assert {c["check"] for c in report["checks"]} == {"docker", "container", "slurm", "volumes", "lock", "llm", "git",
                                                       "sandbox", "gpu"}
    assert all(c["status"] in ("ok", "warn", "fail", "skip") for c in report["checks"])
