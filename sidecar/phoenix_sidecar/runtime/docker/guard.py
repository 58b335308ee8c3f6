"""The one door through which Phoenix talks to Docker, bound to the one container it supervises.

`DockerGate` holds the Engine API connection. It can only ping the daemon and find the target (by
name or label, read-only); acting on containers needs a `TargetGuard`, which the gate hands out
bound to one container id. Every guard method takes an optional container reference only to
check it: anything but the bound container (its id, a 12+ character prefix of it, or its name) is
refused with `RefusedAction` and logged, and the API is always called with the bound id, never
with a name that could by now point elsewhere. Nothing else in Phoenix holds the API client.

Foreign exceptions stop here: the docker SDK's and requests' errors become `DockerUnreachable`
(daemon down, socket missing, call timed out), `ContainerGone` (404), `RefusedAction` (a socket
proxy answered 403) or `RuntimeUnavailable`.

The streams (events, logs) use the SDK's low-level request helpers, because the public
``logs()`` strips the stream ids that keep stdout and stderr apart and neither stream takes a
read timeout there.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import requests
from docker.types.daemon import CancellableStream
from docker.utils import convert_filters, kwargs_from_env

from phoenix_sidecar.errors import (ConfigError, ContainerGone, DockerUnreachable, RefusedAction,
                                    RuntimeUnavailable)

log = logging.getLogger(__name__)

MIN_PREFIX = 12  # the short id `docker ps` shows


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn the docker SDK's and requests' exceptions into Phoenix's, naming the action."""
    try:
        yield
    except docker.errors.NotFound as exc:
        raise ContainerGone(f"{action}: {_explain(exc)}") from exc
    except docker.errors.APIError as exc:
        if exc.status_code == 403:
            raise RefusedAction(f"{action}: Docker (or the socket proxy in front of it) refused it: "
                                f"{_explain(exc)}") from exc
        raise RuntimeUnavailable(f"{action}: Docker answered {exc.status_code}: {_explain(exc)}") from exc
    except requests.exceptions.Timeout as exc:
        raise DockerUnreachable(f"{action}: the Docker daemon did not answer in time", timed_out=True) from exc
    except (requests.exceptions.RequestException, docker.errors.DockerException, OSError) as exc:
        raise DockerUnreachable(f"{action}: cannot reach the Docker daemon ({exc})") from exc


def _explain(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc)


class DockerGate:
    """The Engine API connection: ping, find the target, hand out its guard.

    Args:
        timeout: seconds for one API call (``docker_timeout_seconds``).
        base_url: the daemon's address; None reads ``DOCKER_HOST`` (and TLS variables) like the
            docker CLI, else the local socket.
    """

    def __init__(self, *, timeout: float, base_url: str | None = None) -> None:
        self.timeout = timeout
        self._base_url = base_url
        self._api: docker.APIClient | None = None

    @property
    def address(self) -> str:
        return self._base_url or kwargs_from_env().get("base_url") or "unix:///var/run/docker.sock"

    def api(self) -> docker.APIClient:
        """The connected client (connecting, and agreeing on the API version, on first use)."""
        if self._api is None:
            kwargs = kwargs_from_env()
            if self._base_url:
                kwargs["base_url"] = self._base_url
            with translated(f"connect to {self.address}"):
                self._api = docker.APIClient(version="auto", timeout=self.timeout, **kwargs)
        return self._api

    def ping(self, timeout: float | None = None) -> bool:
        """Whether the daemon answers ``/_ping`` now."""
        try:
            api = self.api()
            with translated("ping"):
                return api._get(api._url("/_ping"), timeout=timeout or self.timeout).ok
        except DockerUnreachable:
            return False

    def version(self) -> dict[str, Any]:
        api = self.api()
        with translated("version"):
            return api.version(api_version=False)

    def find(self, *, name: str = "", label: str = "") -> TargetGuard:
        """The guard of the container named ``name``, or of the one container labelled ``label``.

        Raises:
            ConfigError: neither given, the name lacks the label, or the label is not unique.
            ContainerGone: no such container.
        """
        api = self.api()
        if name:
            with translated(f"find container {name!r}"):
                info = api.inspect_container(name)
            if label and not _has_label(info, label):
                raise ConfigError(f"container {name!r} does not carry the label {label!r}",
                                  key="container_label")
            return TargetGuard(self, info["Id"], _name(info))
        if not label:
            raise ConfigError("set container (a name or id) or container_label (e.g. phoenix.role=trainer) "
                              "to say which container Phoenix supervises", key="container")
        with translated(f"list containers labelled {label!r}"):
            found = api.containers(all=True, filters={"label": label})
        if not found:
            raise ContainerGone(f"no container carries the label {label!r}")
        if len(found) > 1:
            names = ", ".join(sorted(n.lstrip("/") for c in found for n in c.get("Names", [])[:1]))
            raise ConfigError(f"{len(found)} containers carry the label {label!r} ({names}); Phoenix "
                              "supervises exactly one: make the label unique or set container",
                              key="container_label")
        with translated("inspect the labelled container"):
            info = api.inspect_container(found[0]["Id"])
        return TargetGuard(self, info["Id"], _name(info))

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None


class TargetGuard:
    """Docker calls on the supervised container, and on no other.

    The optional ``container`` argument of each method exists to be checked: it must name the
    bound container, or the call is refused (and logged) before anything reaches Docker.
    """

    def __init__(self, gate: DockerGate, target_id: str, name: str) -> None:
        self._gate = gate
        self.target_id = target_id
        self.name = name

    def __repr__(self) -> str:
        return f"TargetGuard({self.name} {self.target_id[:12]})"

    def admit(self, container: str | None, action: str) -> str:
        """The bound id if ``container`` refers to the bound container (or is None); else refuse."""
        if container is None:
            return self.target_id
        ref = container.strip().lstrip("/")
        if ref == self.name or ref == self.target_id or (len(ref) >= MIN_PREFIX and self.target_id.startswith(ref)):
            return self.target_id
        log.error("refused to %s container %r: Phoenix acts only on %s (%s)",
                  action, container, self.name, self.target_id[:12])
        raise RefusedAction(f"refused to {action} container {container!r}: Phoenix acts only on the "
                            f"supervised container {self.name} ({self.target_id[:12]})")

    # -- one-shot calls ------------------------------------------------------------------------
    def inspect(self, container: str | None = None) -> dict[str, Any]:
        cid = self.admit(container, "inspect")
        with translated(f"inspect {self.name}"):
            return self._gate.api().inspect_container(cid)

    def start(self, container: str | None = None) -> None:
        cid = self.admit(container, "start")
        with translated(f"start {self.name}"):
            self._gate.api().start(cid)

    def stop(self, grace: float, container: str | None = None) -> None:
        """SIGTERM (or the image's STOPSIGNAL), then SIGKILL after ``grace`` seconds."""
        cid = self.admit(container, "stop")
        with translated(f"stop {self.name}"):
            self._gate.api().stop(cid, timeout=max(0, round(grace)))

    def restart(self, grace: float, container: str | None = None) -> None:
        cid = self.admit(container, "restart")
        with translated(f"restart {self.name}"):
            self._gate.api().restart(cid, timeout=max(0, round(grace)))

    def kill(self, signal: str | int, container: str | None = None) -> None:
        cid = self.admit(container, "signal")
        with translated(f"send {signal} to {self.name}"):
            self._gate.api().kill(cid, signal=signal)

    # -- streams -------------------------------------------------------------------------------
    def events(self, *, read_timeout: float | None, container: str | None = None) -> CancellableStream:
        """The container's events from now on, as dicts. The stream ends on EOF, on ``close()``
        from another thread, or after ``read_timeout`` seconds without an event (raising
        `DockerUnreachable`). Once this returns, the daemon has subscribed: no later event is lost."""
        cid = self.admit(container, "watch the events of")
        api = self._gate.api()
        params = {"filters": convert_filters({"container": [cid], "type": ["container"]})}
        with translated(f"watch the events of {self.name}"):
            response = api._get(api._url("/events"), params=params, stream=True,
                                timeout=(self._gate.timeout, read_timeout))
            api._raise_for_status(response)
        return CancellableStream(_json_lines(response), response)

    def logs(self, *, since: str, follow: bool = True, until: str | None = None,
             container: str | None = None) -> CancellableStream:
        """The container's raw log stream (multiplexed unless it has a TTY), with timestamps, from
        ``since`` (seconds.nanoseconds) on; following ends when the container stops, and without
        ``follow`` the stream ends with what the daemon holds now (up to ``until``, if given)."""
        cid = self.admit(container, "read the logs of")
        api = self._gate.api()
        params = {"stdout": 1, "stderr": 1, "follow": int(follow), "timestamps": 1, "since": since}
        if until is not None:
            params["until"] = until
        with translated(f"read the logs of {self.name}"):
            response = api._get(api._url("/containers/{0}/logs", cid), params=params, stream=True,
                                timeout=(self._gate.timeout, None))
            api._raise_for_status(response)
        return CancellableStream(_raw_chunks(response), response)


def _raw_chunks(response: requests.Response) -> Iterator[bytes]:
    with translated("read a Docker stream"):
        yield from response.iter_content(chunk_size=None)


def _json_lines(response: requests.Response) -> Iterator[dict[str, Any]]:
    buf = b""
    for chunk in _raw_chunks(response):
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)


def _name(info: dict[str, Any]) -> str:
    return str(info.get("Name") or info["Id"][:12]).lstrip("/")


def _has_label(info: dict[str, Any], label: str) -> bool:
    key, sep, value = label.partition("=")
    labels = (info.get("Config") or {}).get("Labels") or {}
    return key in labels and (not sep or labels[key] == value)
