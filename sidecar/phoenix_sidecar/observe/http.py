"""The HTTP endpoint: ``/metrics`` (Prometheus text or OpenMetrics, by Accept) and ``/healthz``.

A threading HTTP server in a daemon thread, serving one `CollectorRegistry`. Scrapes only read
cached values (see `metrics`), so they answer in milliseconds whatever the GPUs are doing.
``/healthz`` answers what the health callback says: 200 only while the supervisor is alive.
`Scrapes` counts the ``/metrics`` answers, so the end of a job can wait until one has been read.
`stop` closes the listening socket and every open connection and joins the threads, so nothing
is left running.
"""

from __future__ import annotations

import gzip
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from phoenix_sidecar.errors import ConfigError

log = logging.getLogger(__name__)
Health = Callable[[], tuple[bool, str]]
_GZIP_MIN_BYTES = 1024  # smaller bodies gain nothing from compression


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``; empty host = every interface) -> (host, port).

    Raises:
        ConfigError: not host:port with a port from 0 to 65535.
    """
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"expected host:port, got {text!r}", key="metrics_addr")
    host = host.strip("[]")
    return (host or "0.0.0.0"), int(port)


class _Server(HTTPServer):
    """An HTTPServer with one daemon thread per connection, all tracked so `close_all` can end them."""

    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        host = address[0]
        try:
            if ipaddress.ip_address(host).version == 6:
                self.address_family = socket.AF_INET6
        except ValueError:
            pass  # a host name: IPv4
        self._conns: dict[threading.Thread, socket.socket] = {}
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self._serve_one, args=(request, client_address),
                                  name="phoenix-metrics-conn", daemon=True)
        with self._conns_lock:
            self._conns[thread] = request
        thread.start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._conns_lock:
                self._conns.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("metrics connection from %s failed", client_address, exc_info=True)

    def close_all(self, timeout: float) -> None:
        with self._conns_lock:
            conns = list(self._conns.items())
        for _, sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread, _ in conns:
            thread.join(timeout)


class Scrapes:
    """The ``/metrics`` requests served so far, numbered as they begin: an answer to a request
    that began after `mark` was collected after it, so it carries whatever was set before."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._begun = 0
        self._served = 0  # the number of the latest request answered

    def begin(self) -> int:
        with self._cond:
            self._begun += 1
            return self._begun

    def served(self, number: int) -> None:
        with self._cond:
            self._served = max(self._served, number)
            self._cond.notify_all()

    @property
    def seen(self) -> bool:
        """Whether anything has asked for ``/metrics`` yet."""
        with self._cond:
            return self._begun > 0

    def mark(self) -> int:
        with self._cond:
            return self._begun

    def wait_served_after(self, mark: int, timeout: float, stop: threading.Event | None = None) -> bool:
        """Wait until a request begun after ``mark`` was answered (True), ``timeout`` passed or ``stop`` was set."""
        with self._cond:
            return self._cond.wait_for(lambda: self._served > mark or (stop is not None and stop.is_set()),
                                       timeout) and self._served > mark

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class MetricsServer:
    """Serves a registry over HTTP until `stop`.

    Args:
        registry: what ``/metrics`` exposes.
        address: ``host:port``; port 0 binds a free port (see `address`).
        health: answers ``/healthz``: (healthy, reason).
    """

    def __init__(self, registry: CollectorRegistry, address: str, health: Health) -> None:
        self._registry = registry
        self._bind = parse_address(address)
        self._health = health
        self.scrapes = Scrapes()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int] | None:
        """The bound (host, port), or None when not serving."""
        if self._server is None:
            return None
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> tuple[str, int]:
        """Bind and serve in a daemon thread. Raises ConfigError when the address cannot be bound."""
        if self._server is not None:
            return self.address  # type: ignore[return-value]
        try:
            self._server = _Server(self._bind, _make_handler(self._registry, self._health, self.scrapes))
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {self._bind[0]}:{self._bind[1]}: {exc.strerror or exc}; "
                              "choose another port (port 0: any free one) or an empty address to turn metrics off",
                              key="metrics_addr") from None
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="phoenix-metrics", daemon=True)
        self._thread.start()
        log.info("serving /metrics and /healthz on %s:%d", *self.address)  # type: ignore[str-format]
        return self.address  # type: ignore[return-value]

    def stop(self, timeout: float = 2.0) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_all(timeout)
        if thread is not None:
            thread.join(timeout)
        self._server = self._thread = None


def _make_handler(registry: CollectorRegistry, health: Health, scrapes: Scrapes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Prometheus scrapes
        server_version = "phoenix"
        sys_version = ""
        timeout = 30  # an idle keep-alive connection ends its thread after this
        # Headers and body leave in one write, without Nagle: otherwise the client's delayed ACK
        # adds 40 ms to every scrape.
        disable_nagle_algorithm = True
        wbufsize = -1

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            self._respond(head=False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._respond(head=True)

        def _respond(self, head: bool) -> None:
            path = self.path.split("?", 1)[0]
            text = "text/plain; charset=utf-8"
            if path == "/metrics":
                self._metrics(head)
            elif path == "/healthz":
                ok, reason = health()
                self._send(200 if ok else 503, (reason + "\n").encode(), text, head=head)
            elif path == "/":
                self._send(200, b"Phoenix: /metrics /healthz\n", text, head=head)
            else:
                self._send(404, b"not found; try /metrics or /healthz\n", text, head=head)

        def _metrics(self, head: bool) -> None:
            number = scrapes.begin()
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            try:
                body = encoder(registry)
            except Exception:
                log.exception("collecting metrics failed")
                self._send(500, b"collecting metrics failed; see Phoenix's log\n", "text/plain; charset=utf-8", head=head)
                return
            encoding = None
            if len(body) >= _GZIP_MIN_BYTES and "gzip" in self.headers.get("Accept-Encoding", ""):
                body, encoding = gzip.compress(body, compresslevel=1), "gzip"
            self._send(200, body, content_type, encoding, head=head)
            self.wfile.flush()  # on its way before the end of a job may close the server
            scrapes.served(number)

        def _send(self, status: int, body: bytes, content_type: str, encoding: str | None = None, *,
                  head: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if encoding:
                self.send_header("Content-Encoding", encoding)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
            log.debug("%s " + format, self.address_string(), *args)

    return Handler
