"""The socket proxy against the real engine: Phoenix's calls pass (streams included), everything
else is refused, and requests that try to smuggle past the allowlist are refused too."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

import dockerkit
from phoenix_sidecar.runtime.docker.guard import DockerGate
from phoenix_sidecar.runtime.docker.runtime import DockerRuntime
from phoenix_sidecar.config.schema import Settings
from phoenix_watchdog.heartbeat import Heartbeat
from testkit import clean_env

PY = [sys.executable, "-m", "phoenix_sidecar.runtime.docker.proxy"]


@pytest.fixture
def proxy(engine) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The proxy on a private socket, for the container labelled phoenix.role=trainer-<run>."""
    folder = Path(tempfile.mkdtemp(prefix="phx-proxy-"))
    sock = folder / "docker.sock"
    label = f"phoenix.role=trainer-{engine.run_id}"
    log = open(folder / "proxy.log", "wb")
    proc = subprocess.Popen([*PY, "--listen", str(sock), "--label", label], env=clean_env(), stderr=log)
    try:
        dockerkit.wait_for(sock.exists, 20, "the proxy's socket")
        yield {"url": f"unix://{sock}", "sock": str(sock), "label": label, "log": folder / "proxy.log"}
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def client(proxy: dict[str, Any]) -> docker.APIClient:
    return docker.APIClient(base_url=proxy["url"], version="auto", timeout=20)


def raw(proxy: dict[str, Any], request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are; return the status code and the body the proxy answered."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(20)
        s.connect(proxy["sock"])
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def events(api: docker.APIClient, filters: dict[str, list[str]] | None) -> None:
    """Open an event stream (the SDK's own events() hides the status of a refused stream)."""
    params = {"filters": json.dumps(filters)} if filters else {}
    api._raise_for_status(api._get(api._url("/events"), params=params, stream=True))


@pytest.fixture
def pair(engine, containers, proxy):  # type: ignore[no-untyped-def]
    """A running target (labelled) and a running bystander (not labelled)."""
    role = proxy["label"].split("=", 1)[1]
    target = containers(["python3", "-u", "-c", "import time\nfor i in range(600):\n print('tick', i); time.sleep(0.2)"],
                        labels={"phoenix.role": role})
    other = containers(["sleep", "600"])
    api = engine.api()
    api.start(target["Id"])
    api.start(other["Id"])
    return target, other


def test_phoenix_calls_on_the_target_pass_streams_included(engine, pair, proxy) -> None:
    target, _ = pair
    api = client(proxy)
    assert api.ping() and api.version()["ApiVersion"]
    assert api.inspect_container(target["name"])["Id"] == target["Id"]
    assert [c["Id"] for c in api.containers(all=True, filters={"label": proxy["label"]})] == [target["Id"]]
    logs = api.logs(target["Id"], stream=True, follow=True)
    assert b"tick" in next(iter(logs))  # a live stream, not a buffered answer
    logs.close()
    events = api.events(filters={"container": [target["Id"]], "type": ["container"]}, decode=True)
    api.kill(target["Id"], signal="SIGUSR2")  # a signal, like the stack-dump request
    event = next(iter(events))
    assert event["Action"] == "kill" and event["Actor"]["Attributes"]["signal"] == "12"
    events.close()
    api.restart(target["Id"], timeout=1)
    api.stop(target["Id"], timeout=1)
    assert api.wait(target["Id"], timeout=20)["StatusCode"] in (137, 143)
    api.start(target["Id"])
    assert engine.api().inspect_container(target["Id"])["State"]["Running"]


@pytest.mark.parametrize("call", [
    lambda api, t, o: api.inspect_container(o["Id"]),
    lambda api, t, o: api.restart(o["Id"], timeout=0),
    lambda api, t, o: api.kill(o["name"]),
    lambda api, t, o: api.logs(o["Id"]),
    lambda api, t, o: api.create_container("python:3.11-slim", ["true"], host_config=api.create_host_config(
        binds={"/": {"bind": "/host", "mode": "rw"}}, privileged=True)),
    lambda api, t, o: api.exec_create(t["Id"], ["cat", "/etc/shadow"]),
    lambda api, t, o: api.get_archive(t["Id"], "/etc"),
    lambda api, t, o: api.export(t["Id"]),
    lambda api, t, o: api.remove_container(t["Id"], force=True),
    lambda api, t, o: api.images(),
    lambda api, t, o: api.info(),
    lambda api, t, o: api.volumes(),
    lambda api, t, o: api.networks(),
    lambda api, t, o: api.containers(all=True),
    lambda api, t, o: api.containers(all=True, filters={"label": "phoenix.role"}),
    lambda api, t, o: events(api, None),
    lambda api, t, o: events(api, {"container": [o["Id"]]}),
    lambda api, t, o: events(api, {"container": [t["Id"]], "type": ["image"]}),
    lambda api, t, o: api.attach(t["Id"]),
    lambda api, t, o: api.pause(t["Id"]),
    lambda api, t, o: api.update_container(t["Id"], mem_limit="1g"),
    lambda api, t, o: api.rename(t["Id"], "stolen"),
], ids=["inspect-other", "restart-other", "kill-other-by-name", "logs-other", "create-privileged", "exec",
        "archive", "export", "delete", "images", "info", "volumes", "networks", "list-all", "list-other-label",
        "events-all", "events-other", "events-images", "attach", "pause", "update", "rename"])
def test_everything_else_is_refused(engine, pair, proxy, call) -> None:  # type: ignore[no-untyped-def]
    target, other = pair
    api = client(proxy)
    with pytest.raises(docker.errors.APIError) as info:
        result = call(api, target, other)
        if hasattr(result, "__next__"):
            next(result)
    assert info.value.status_code == 403, info.value
    real = engine.api()
    assert real.inspect_container(other["Id"])["State"]["Running"]
    assert real.inspect_container(target["Id"])["Name"].lstrip("/") == target["name"]
    assert "WARNING denied" in proxy["log"].read_text()


def test_requests_that_try_to_slip_past_are_refused(engine, pair, proxy) -> None:
    target, other = pair
    t, o = target["Id"], other["Id"]
    refused = [
        f"GET /containers/{t}/../{o}/json HTTP/1.1\r\nHost: d\r\n\r\n",
        f"GET /containers/%2e%2e/{o}/json HTTP/1.1\r\nHost: d\r\n\r\n",
        f"GET //containers/{o}/json HTTP/1.1\r\nHost: d\r\n\r\n",
        f"POST /containers/{t}/start HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\n\r\n{{}}",
        f"POST /containers/{t}/start HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nContent-Length: 9\r\n\r\n",
        f"POST /containers/{t}/start HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        f"POST /containers/{t}/attach?stream=1 HTTP/1.1\r\nHost: d\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n",
        f"GET /containers/{t}/json HTTP/1.1\r\nHost: d\r\nX: a\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /grpc HTTP/1.1\r\nHost: d\r\n\r\n",
        "POST /session HTTP/1.1\r\nHost: d\r\n\r\n",
        f"DELETE /containers/{t} HTTP/1.1\r\nHost: d\r\n\r\n",
    ]
    for request in refused:
        status, body = raw(proxy, request.encode())
        assert status == 403, (request, body)
    # A second request pipelined behind an allowed one is never forwarded.
    before = engine.api().inspect_container(o)["State"]["StartedAt"]
    status, body = raw(proxy, (f"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n"
                               f"POST /containers/{o}/restart?t=0 HTTP/1.1\r\nHost: d\r\n\r\n").encode())
    assert status == 200 and body.endswith(b"OK")
    time.sleep(1)
    assert engine.api().inspect_container(o)["State"]["StartedAt"] == before


def test_docker_cli_through_the_proxy_can_do_nothing_dangerous(pair, proxy) -> None:
    env = {"DOCKER_HOST": proxy["url"], "PATH": "/usr/bin:/bin:/usr/local/bin"}
    for args in (["ps"], ["run", "--rm", "python:3.11-slim", "true"], ["images"], ["rm", "-f", pair[1]["name"]]):
        result = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode != 0 and "not allowed" in result.stderr, (args, result.stderr)


def test_phoenix_supervises_through_the_proxy(engine, containers, proxy) -> None:
    role = proxy["label"].split("=", 1)[1]
    c = containers(["python3", "-c", "import sys; print('crashing', flush=True); sys.exit(7)"],
                   labels={"phoenix.role": role})
    gate = DockerGate(timeout=20, base_url=proxy["url"])
    output: list[bytes] = []
    runtime = DockerRuntime(Settings(container_label=proxy["label"], docker_timeout_seconds=20.0), Heartbeat(None),
                            gate=gate, listeners=[lambda s, d: output.append(d)])
    try:
        for _ in range(2):
            runtime.start()
            end = None
            deadline = time.monotonic() + 30
            while end is None and time.monotonic() < deadline:
                end = runtime.wait(1.0)
            assert end is not None and end.exit.code == 7 and "crashing" in end.tail
        assert runtime.starts == 2 and runtime.container_id == c["Id"]
    finally:
        runtime.close()


def test_a_refusal_reaches_phoenix_as_refused_action(engine, containers, proxy) -> None:
    other = containers(["sleep", "30"])  # not labelled: the proxy will not let Phoenix near it
    runtime = DockerRuntime(Settings(container=other["name"], docker_timeout_seconds=20.0), Heartbeat(None),
                            gate=DockerGate(timeout=20, base_url=proxy["url"]))
    from phoenix_sidecar.errors import RefusedAction

    with pytest.raises(RefusedAction, match="not the target"):
        runtime.start()
    runtime.close()
