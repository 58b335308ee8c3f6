"""The slurmrestd path: recorded answers of a real daemon parse to what scontrol said at the same moment.

Every fixture under tests/data/slurmrest/<version>/ was recorded by scripts/record_slurmrest.py from
a real slurmrestd and holds the REST answer and ``scontrol -o show`` read right after. The client is
tested against a real HTTP server on 127.0.0.1 (and a real unix socket) serving those answers.
"""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.errors import ConfigError, RuntimeUnavailable
from phoenix_sidecar.runtime.slurm import restjson
from phoenix_sidecar.runtime.slurm.api import connect, rest_token
from phoenix_sidecar.runtime.slurm.client import SlurmClient, job_from_fields, parse_fields
from phoenix_sidecar.runtime.slurm.rest import SlurmRest, parse_url

DATA = Path(__file__).resolve().parents[2] / "data" / "slurmrest" / "v0.0.38"
JOBS = sorted(p.stem for p in DATA.glob("job_*.json") if p.stem != "job_unknown")
NODES = sorted(p.stem for p in DATA.glob("node_*.json"))
OPENAPI = {"paths": {"/slurm/v0.0.38/ping": {}, "/slurm/v0.0.38/jobs": {}, "/slurm/v0.0.37/ping": {}}}


def fixture(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # scontrol prints local time and the fixtures were recorded in UTC.
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_fixtures_cover_the_states_phoenix_reads() -> None:
    states = {fixture(n)["rest"]["jobs"][0]["job_state"] for n in JOBS}
    assert {"RUNNING", "FAILED", "PENDING", "CANCELLED"} <= states
    assert len(JOBS) >= 7 and len(NODES) >= 4


@pytest.mark.parametrize("name", JOBS)
def test_a_recorded_job_reads_as_scontrol_read_it(name: str) -> None:
    f = fixture(name)
    rest = restjson.job_from_rest(f["rest"]["jobs"][0])
    cmd = job_from_fields(parse_fields(f["scontrol"]))
    # The reason words differ (REST: JobHeldUser, scontrol: job_requeued_in_held_state); what
    # Phoenix makes of them does not.
    assert {**asdict(rest), "reason": ""} == {**asdict(cmd), "reason": ""}
    assert (rest.held, rest.running, rest.finished, rest.settling) == (cmd.held, cmd.running, cmd.finished,
                                                                     cmd.settling)


def test_exit_codes_signals_and_preemption_from_the_wait_status() -> None:
    failed = restjson.job_from_rest(fixture("job_failed")["rest"]["jobs"][0])
    assert (failed.exit_code, failed.exit_signal) == (3, None)
    killed = restjson.job_from_rest(fixture("job_signalled")["rest"]["jobs"][0])
    assert (killed.exit_code, killed.exit_signal) == (0, 9)
    preempted = restjson.job_from_rest(fixture("job_preempted")["rest"]["jobs"][0])
    assert preempted.preempt_time is not None and preempted.exit_code == 143


def test_a_running_job_has_no_end_time_although_rest_projects_one() -> None:
    job = fixture("job_running")["rest"]["jobs"][0]
    assert job["end_time"] > job["start_time"]
    assert restjson.job_from_rest(job).end_time is None


@pytest.mark.parametrize("name", NODES)
def test_a_recorded_node_state_reads_as_scontrol_words_it(name: str) -> None:
    f = fixture(name)
    assert restjson.node_state(f["rest"]["nodes"][0]) == parse_fields(f["scontrol"])["State"]


@pytest.mark.parametrize(("pattern", "expected"), [
    ("%x-%j.out", "/w/train-7.out"), ("out/%5j_%u.log", "/w/out/00007_alice.log"), ("%N-%%.log", "/w/n1-%.log"),
    ("", "/w/slurm-7.out")])
def test_output_patterns_expand_as_sbatch_does(pattern: str, expected: str) -> None:
    job = {"job_id": 7, "name": "train", "user_name": "alice", "batch_host": "n1", "current_working_directory": "/w",
           "array_job_id": 0, "array_task_id": None}
    assert restjson.expand_output(job, pattern, default=True) == expected


def test_served_versions_are_read_from_openapi() -> None:
    assert restjson.served_versions(OPENAPI) == ["v0.0.37", "v0.0.38"]


def test_errors_name_what_slurm_said() -> None:
    assert restjson.errors(fixture("job_unknown")["rest"]) == ["Unable to find JobId=999999 (Invalid job id specified)"]


# -- the client against a real HTTP server ---------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes]] = {}
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).seen.append(dict(self.headers))
        status, body = self.routes.get(self.path, (404, b'{"errors": [{"error": "no such path"}]}'))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _routes(openapi: dict = OPENAPI) -> dict[str, tuple[int, bytes]]:
    routes = {"/openapi": (200, json.dumps(openapi).encode())}
    for p in DATA.glob("*.json"):
        f = json.loads(p.read_text())
        routes[f["path"]] = (200, json.dumps(f["rest"]).encode())
    return routes


@pytest.fixture
def daemon() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("H", (_Handler,), {"routes": _routes(), "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _ids(name: str) -> tuple[str, str]:
    f = fixture(name)
    return f["path"].rsplit("/", 1)[1], f["rest"]["jobs"][0]["name"]


def test_the_client_reads_jobs_nodes_and_finds_a_job_by_name(daemon: tuple[str, type[_Handler]]) -> None:
    url, _ = daemon
    api = SlurmRest(url)
    job_id, _ = _ids("job_signalled")  # one recorded state per path: job_failed's path is job_running's too
    assert api.job(job_id).exit_signal == 9
    assert api.node_states(["n1", "n9"]) == {"n1": parse_fields(fixture("nodes")["scontrol"])["State"]}
    listed = fixture("jobs")["rest"]["jobs"]
    assert api.find(listed[0]["name"]) == str(max(j["job_id"] for j in listed if j["name"] == listed[0]["name"]))
    assert api.find("123_4") == "123_4"
    assert "UP" in api.ping()
    with pytest.raises(RuntimeUnavailable, match="no Slurm job named 'nope'.*slurmrestd at http://127"):
        api.find("nope")
    with pytest.raises(RuntimeUnavailable, match="Slurm knows no job 999999"):
        api.job("999999")


def test_once_the_daemon_answered_a_failing_read_goes_through_the_commands(
        daemon: tuple[str, type[_Handler]], caplog: pytest.LogCaptureFixture) -> None:
    url, handler = daemon
    f = fixture("job_signalled")
    job_id = f["path"].rsplit("/", 1)[1]
    asked: list[list[str]] = []

    def runner(args, timeout):  # type: ignore[no-untyped-def]
        asked.append(list(args))
        return subprocess.CompletedProcess(list(args), 0, f["scontrol"] + "\n", "")

    api = SlurmRest(url, commands=SlurmClient(runner=runner))
    assert api.job(job_id).exit_signal == 9 and not asked
    # What a real daemon answered once under load: a Slurm error that is no "no such job".
    unspecified = {"errors": [{"description": f"Unable to find JobId={job_id}", "error_number": -1,
                               "error": "Unspecified error"}], "jobs": []}
    handler.routes = {**handler.routes, f["path"]: (200, json.dumps(unspecified).encode())}
    assert api.job(job_id).exit_signal == 9
    assert asked == [["scontrol", "-o", "show", "job", job_id]]
    assert "reading Slurm through its commands" in caplog.text
    handler.routes = _routes()
    assert api.job(job_id).exit_signal == 9 and len(asked) == 1 and "answers again" in caplog.text
    with pytest.raises(RuntimeUnavailable, match="Slurm knows no job 999999"):  # an answer, not an outage
        api.job("999999")
    assert len(asked) == 1


def test_the_token_is_sent_and_never_shown(daemon: tuple[str, type[_Handler]]) -> None:
    url, handler = daemon
    api = SlurmRest(url, token="s3cr3t-jwt", user="alice")
    api.ping()
    assert handler.seen[-1]["X-SLURM-USER-TOKEN"] == "s3cr3t-jwt" and handler.seen[-1]["X-SLURM-USER-NAME"] == "alice"
    assert "s3cr3t" not in repr(api)
    handler.routes = {k: (401, b"Authentication failure") for k in handler.routes}
    with pytest.raises(RuntimeUnavailable) as refused:
        SlurmRest(url, token="s3cr3t-jwt", user="alice").ping()
    assert url in str(refused.value) and "refused" in str(refused.value) and "s3cr3t" not in str(refused.value)


def test_a_daemon_without_a_known_api_version_is_refused_with_what_it_serves(
        daemon: tuple[str, type[_Handler]]) -> None:
    url, handler = daemon
    handler.routes = {"/openapi": (200, json.dumps({"paths": {"/slurm/v0.0.41/ping": {}}}).encode())}
    with pytest.raises(RuntimeUnavailable, match=r"serves API v0\.0\.41; Phoenix reads v0\.0\.38"):
        SlurmRest(url).ping()


def test_a_daemon_that_is_down_is_named(tmp_path: Path) -> None:
    with pytest.raises(RuntimeUnavailable, match=f"slurmrestd at unix:{tmp_path}/none.sock does not answer"):
        SlurmRest(f"unix:{tmp_path}/none.sock").ping()


def test_the_client_speaks_http_over_a_unix_socket(tmp_path: Path) -> None:
    handler = type("H", (_Handler,), {"routes": _routes(), "seen": []})

    class UnixServer(socketserver.ThreadingUnixStreamServer):
        def get_request(self):  # type: ignore[no-untyped-def]
            conn, _ = super().get_request()
            return conn, ("local", 0)  # http.server wants a (host, port) client address

    path = tmp_path / "rest.sock"
    server = UnixServer(str(path), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        job_id, _ = _ids("job_array_task")
        assert job_id.endswith("_1") and SlurmRest(f"unix:{path}").job(job_id).running
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("bad", ["unix:relative.sock", "https://h:1", "ftp://h", "http://h:1/slurm"])
def test_a_malformed_url_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ValueError, match="slurm_rest_url"):
        parse_url(bad)
    with pytest.raises(ConfigError, match="slurm_rest_url"):
        connect(Settings(slurm_rest_url=bad), {})


def test_connect_picks_rest_when_configured_and_reads_the_token(tmp_path: Path) -> None:
    assert isinstance(connect(Settings(), {}), SlurmClient)
    token_file = tmp_path / "jwt"
    token_file.write_text("SLURM_JWT=abc.def.ghi\n")
    settings = Settings(slurm_rest_url="unix:/run/slurmrestd.sock", slurm_rest_token_file=str(token_file))
    assert isinstance(connect(settings, {}), SlurmRest)
    assert rest_token(settings, {"SLURM_JWT": "other"}) == "abc.def.ghi"
    assert rest_token(Settings(), {"SLURM_JWT": "xyz"}) == "xyz"
    assert rest_token(Settings(), {}) is None
    with pytest.raises(ConfigError, match="slurm_rest_token_file"):
        rest_token(Settings(slurm_rest_token_file=str(tmp_path / "missing")), os.environ)
