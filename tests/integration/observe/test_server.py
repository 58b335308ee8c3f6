"""The HTTP endpoint, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import gzip
import http.client
import socket
import threading

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from phoenix_sidecar.errors import ConfigError
from phoenix_sidecar.observe.http import MetricsServer, parse_address
from kits.waiting import HANG_GUARD, wait_for


@pytest.fixture
def registry() -> CollectorRegistry:
    r = CollectorRegistry()
    Counter("phoenix_things", "Things", ["kind"], registry=r).labels("a").inc(3)
    return r


@pytest.fixture
def server(registry):
    health = {"ok": True, "reason": "ok: fine"}
    srv = MetricsServer(registry, "127.0.0.1:0", lambda: (health["ok"], health["reason"]))
    srv.start()
    srv.health = health  # type: ignore[attr-defined]
    yield srv
    srv.stop()


def get(server: MetricsServer, path: str, headers: dict[str, str] | None = None, method: str = "GET"):
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=HANG_GUARD)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_port_0_binds_a_free_port_and_reports_it(server):
    host, port = server.address
    assert host == "127.0.0.1" and port > 0


def test_metrics_in_the_prometheus_text_format_by_default(server):
    status, headers, body = get(server, "/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert families["phoenix_things"].samples[0].value == 3
    assert not body.decode().rstrip().endswith("# EOF")


def test_metrics_in_openmetrics_when_asked(server):
    accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    status, headers, body = get(server, "/metrics", {"Accept": accept})
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert body.decode().endswith("# EOF\n")
    assert 'phoenix_things_total{kind="a"} 3.0' in body.decode()


def test_gzip_when_accepted_and_worth_it(registry):
    c = Counter("phoenix_many", "Many", ["n"], registry=registry)
    for i in range(100):
        c.labels(str(i)).inc()
    srv = MetricsServer(registry, "127.0.0.1:0", lambda: (True, "ok"))
    srv.start()
    try:
        status, headers, body = get(srv, "/metrics", {"Accept-Encoding": "gzip"})
        assert headers.get("Content-Encoding") == "gzip"
        assert b'phoenix_many_total{n="99"} 1.0' in gzip.decompress(body)
        _, plain_headers, plain = get(srv, "/metrics")
        assert "Content-Encoding" not in plain_headers and b"phoenix_many_total" in plain
    finally:
        srv.stop()


def test_healthz_follows_the_health_callback(server):
    assert get(server, "/healthz")[::2] == (200, b"ok: fine\n")
    server.health.update(ok=False, reason="the supervisor loop has been silent for 99 s (limit 30 s)")
    status, _, body = get(server, "/healthz")
    assert status == 503 and b"silent for 99 s" in body


def test_head_unknown_paths_and_keep_alive(server):
    status, headers, body = get(server, "/metrics", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    assert get(server, "/nope")[0] == 404
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=HANG_GUARD)
    try:
        for _ in range(3):  # one connection, several scrapes, as Prometheus does
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            assert resp.status == 200 and b"phoenix_things_total" in resp.read()
    finally:
        conn.close()


def test_a_busy_port_is_a_config_error_naming_the_address(server):
    host, port = server.address
    with pytest.raises(ConfigError) as info:
        MetricsServer(CollectorRegistry(), f"127.0.0.1:{port}", lambda: (True, "")).start()
    assert info.value.key == "metrics_addr" and f"127.0.0.1:{port}" in str(info.value)


def test_stop_closes_open_connections_and_ends_every_thread(registry):
    srv = MetricsServer(registry, "127.0.0.1:0", lambda: (True, "ok"))
    host, port = srv.start()
    idle = socket.create_connection((host, port))  # an idle keep-alive client
    wait_for(lambda: any(t.name == "phoenix-metrics-conn" for t in threading.enumerate()), "its connection thread")
    # The idle client never sends a request nor closes: only stop closing its connection ends
    # that thread. The join's 20 s is a hang guard, kept under the handler's own 30 s idle timeout
    # so that a stop that forgot the connection cannot pass by waiting it out.
    srv.stop(timeout=20)
    assert srv.address is None
    assert not [t for t in threading.enumerate() if t.name.startswith("phoenix-metrics")]
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=1).close()


def test_collection_failure_answers_500(registry):
    class Broken:
        def collect(self):
            raise RuntimeError("boom")

        def describe(self):
            return []

    registry.register(Broken())
    srv = MetricsServer(registry, "127.0.0.1:0", lambda: (True, "ok"))
    srv.start()
    try:
        assert get(srv, "/metrics")[0] == 500
        assert get(srv, "/healthz")[0] == 200
    finally:
        srv.stop()


@pytest.mark.parametrize("text, expected", [("127.0.0.1:9479", ("127.0.0.1", 9479)), (":9479", ("0.0.0.0", 9479)),
                                            ("[::1]:0", ("::1", 0)), ("localhost:80", ("localhost", 80))])
def test_parse_address(text, expected):
    assert parse_address(text) == expected


def test_parse_address_rejects_garbage():
    with pytest.raises(ConfigError):
        parse_address("9479")


def test_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    srv = MetricsServer(CollectorRegistry(), "[::1]:0", lambda: (True, "ok"))
    try:
        srv.start()
    except ConfigError:
        pytest.skip("IPv6 loopback not configured")
    try:
        assert srv.address[0] == "::1"
        assert get(srv, "/healthz")[0] == 200
    finally:
        srv.stop()
