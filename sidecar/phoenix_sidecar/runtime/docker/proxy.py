"""A Docker socket proxy that lets Phoenix reach the training container, and nothing else.

    python -m phoenix_sidecar.runtime.docker.proxy --label phoenix.role=trainer \\
        --listen /run/phoenix-proxy/docker.sock [--upstream /var/run/docker.sock] [--owner UID:GID]

Mounting the Docker socket into a container is root on the host. This proxy is the only process
that holds the socket; the sidecar talks to its own socket instead and gets exactly the calls it
needs, each checked against the one container Phoenix supervises (the container carrying the label,
or with the name, as the daemon reports it at the time of the call):

    GET|HEAD /_ping, GET /version                       always
    GET  /containers/json                               only filtered on that label
    GET  /containers/{c}/json, /containers/{c}/logs     {c} is the target
    POST /containers/{c}/start|stop|restart|kill|wait   {c} is the target
    GET  /events                                        only filtered on target containers

Everything else is answered 403 and logged: create, exec, archive, export, delete, images, build,
volumes, networks, plugins, swarm, system, grpc, session, other containers, unfiltered events.
Requests are judged on method and path alone: a request with a body, a chunked body, an upgrade
(hijack), a percent-encoded or dotted path is refused, and each connection carries one request
(the proxy asks the daemon to close after it), so nothing can be smuggled behind an allowed
request. Responses (streams of logs, events, wait included) are passed through unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("phoenix.socket-proxy")

MAX_HEAD = 16 * 1024
HEAD_TIMEOUT = 30.0
_VERSION = re.compile(r"^/v\d+(?:\.\d+)?(?=/)")
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./-]+$")
_CONTAINER = re.compile(r"^/containers/(?P<ref>[A-Za-z0-9][A-Za-z0-9_.-]*)/(?P<action>[a-z]+)$")
_ACTIONS = {"GET": {"json", "logs"}, "POST": {"start", "stop", "restart", "kill", "wait"}}
# Not forwarded: hop-by-hop headers, and Content-Length (no request carries a body through here).
_DROPPED = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer",
            "transfer-encoding", "upgrade", "content-length"}


class Denied(Exception):
    """A request outside the allowlist; the message says why."""


@dataclass(frozen=True)
class Target:
    """What makes a container the target: its label (key or key=value) and/or its name."""

    label: str = ""
    name: str = ""

    def matches(self, info: dict[str, Any]) -> bool:
        if self.name and str(info.get("Name", "")).lstrip("/") != self.name:
            return False
        if self.label:
            key, sep, value = self.label.partition("=")
            labels = (info.get("Config") or {}).get("Labels") or {}
            if key not in labels or (sep and labels[key] != value):
                return False
        return True

    def describe(self) -> str:
        return " and ".join(x for x in (f"label {self.label}" if self.label else "",
                                        f"name {self.name}" if self.name else "") if x)


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # the request target as sent (path and query)
    version: str
    headers: list[tuple[str, str]]

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name]


def parse_head(head: bytes) -> Request:
    text = head.decode("latin-1")
    if any(c in text.replace("\r\n", "") for c in "\r\n\0"):
        raise Denied("stray line breaks in the request head")
    try:
        request_line, *lines = text.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        raise Denied("malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise Denied(f"unsupported protocol {version!r}")
    headers = []
    for line in lines:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key or key != key.strip():
            raise Denied("malformed header")
        headers.append((key, value.strip()))
    return Request(method, target, version, headers)


class Upstream:
    """The real Docker socket."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_unix_connection(self.path)

    async def inspect(self, ref: str) -> dict[str, Any] | None:
        """``GET /containers/{ref}/json`` (HTTP/1.0: one plain body); None when there is no such container."""
        reader, writer = await self.open()
        try:
            writer.write(f"GET /containers/{ref}/json HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 30)
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status == 404:
            return None
        if status != 200:
            raise OSError(f"the daemon answered {status} to an inspect")
        return json.loads(body)


class Policy:
    """Decides each request: allowed, or `Denied` with the reason."""

    def __init__(self, target: Target, upstream: Upstream) -> None:
        self.target = target
        self.upstream = upstream

    async def check(self, req: Request) -> None:
        if req.header("transfer-encoding") is not None:
            raise Denied("request bodies are not allowed (chunked)")
        if any(v.strip() not in ("", "0") for v in req.all("content-length")):
            raise Denied("request bodies are not allowed")
        if req.header("upgrade") is not None or "upgrade" in (req.header("connection") or "").lower():
            raise Denied("connection upgrades (attach, exec) are not allowed")
        path = req.path
        if not _SAFE_PATH.match(path) or "/." in path or "//" in path:
            raise Denied("path with encoded, dotted or empty segments")
        path = _VERSION.sub("", path, count=1)
        if path == "/_ping" and req.method in ("GET", "HEAD"):
            return
        if path == "/version" and req.method == "GET":
            return
        if path == "/containers/json" and req.method == "GET":
            return self._check_list(req)
        if path == "/events" and req.method == "GET":
            return await self._check_events(req)
        match = _CONTAINER.match(path)
        if match and match["action"] in _ACTIONS.get(req.method, ()):
            return await self._check_container(match["ref"])
        raise Denied("not on the allowlist")

    def _check_list(self, req: Request) -> None:
        filters = _filters(req)
        if not self.target.label or filters.get("label") != [self.target.label] or set(filters) - {"label"}:
            raise Denied(f"listing containers is allowed only filtered on label {self.target.label or '(none)'}")

    async def _check_events(self, req: Request) -> None:
        filters = _filters(req)
        refs = filters.get("container") or []
        if not refs or set(filters) - {"container", "type", "event"} or filters.get("type", ["container"]) != ["container"]:
            raise Denied("events are allowed only filtered on the target container")
        for ref in refs:
            await self._check_container(ref)

    async def _check_container(self, ref: str) -> None:
        info = await self.upstream.inspect(ref)
        if info is None:
            raise Denied(f"no container {ref!r}")
        if not self.target.matches(info):
            raise Denied(f"container {ref!r} is not the target ({self.target.describe()})")


def _filters(req: Request) -> dict[str, list[str]]:
    raw = req.query.get("filters", ["{}"])[-1]
    try:
        data = json.loads(raw)
    except ValueError:
        raise Denied("unreadable filters") from None
    if not isinstance(data, dict):
        raise Denied("unreadable filters")
    out: dict[str, list[str]] = {}
    for key, value in data.items():  # both {"k": ["v"]} and the older {"k": {"v": true}}
        out[key] = sorted(value) if isinstance(value, (list, dict)) else [str(value)]
    return out


class Proxy:
    def __init__(self, policy: Policy, upstream: Upstream) -> None:
        self.policy = policy
        self.upstream = upstream

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
                return
            try:
                req = parse_head(head[:-4])
                await self.policy.check(req)
            except Denied as exc:
                first = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")[:200]
                log.warning("denied %s: %s", first, exc)
                await _answer(writer, 403, f"phoenix socket proxy: {first} is not allowed: {exc}")
                return
            except OSError as exc:
                log.error("cannot reach the Docker daemon: %s", exc)
                await _answer(writer, 502, f"phoenix socket proxy: cannot reach the Docker daemon: {exc}")
                return
            log.debug("allowed %s %s", req.method, req.target)
            await self._forward(req, reader, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _forward(self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await self.upstream.open()
        except OSError as exc:
            await _answer(writer, 502, f"phoenix socket proxy: cannot reach the Docker daemon: {exc}")
            return
        headers = [(k, v) for k, v in req.headers if k.lower() not in _DROPPED]
        lines = [f"{req.method} {req.target} {req.version}", *(f"{k}: {v}" for k, v in headers), "Connection: close"]
        up_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        # Whatever else the client sends is never forwarded; its end (EOF) ends the exchange.
        pump = asyncio.ensure_future(_copy(up_reader, writer))
        client_gone = asyncio.ensure_future(_until_eof(reader))
        try:
            await asyncio.wait({pump, client_gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, client_gone):
                task.cancel()
            up_writer.close()


async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    while True:
        data = await src.read(65536)
        if not data:
            return
        dst.write(data)
        await dst.drain()


async def _until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


async def _answer(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    body = json.dumps({"message": message}).encode()
    reason = {403: "Forbidden", 502: "Bad Gateway"}[status]
    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                 f"Connection: close\r\n\r\n".encode() + body)
    await writer.drain()


async def serve(listen: str, upstream: str, target: Target, owner: tuple[int, int] | None) -> None:
    if os.path.exists(listen):
        os.unlink(listen)  # a socket left by an earlier run
    proxy = Proxy(Policy(target, Upstream(upstream)), Upstream(upstream))
    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(proxy.handle, listen, limit=MAX_HEAD)
    finally:
        os.umask(old)
    if owner is not None:
        os.chown(listen, *owner)
    log.warning("serving %s for the container with %s (upstream %s)", listen, target.describe(), upstream)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
    os.unlink(listen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phoenix_sidecar.runtime.docker.proxy",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, metavar="PATH", help="the unix socket to serve")
    parser.add_argument("--upstream", default="/var/run/docker.sock", metavar="PATH", help="the Docker socket")
    parser.add_argument("--label", default="", metavar="KEY[=VALUE]", help="the target carries this label")
    parser.add_argument("--container", default="", metavar="NAME", help="the target has this name")
    parser.add_argument("--owner", metavar="UID:GID", help="owner of the served socket (mode 0600)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every allowed request too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="phoenix-socket-proxy: %(levelname)s %(message)s")
    if not args.label and not args.container:
        parser.error("say which container is the target: --label KEY=VALUE and/or --container NAME")
    owner = None
    if args.owner:
        uid, _, gid = args.owner.partition(":")
        owner = (int(uid), int(gid or uid))
    asyncio.run(serve(args.listen, args.upstream, Target(args.label, args.container), owner))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
