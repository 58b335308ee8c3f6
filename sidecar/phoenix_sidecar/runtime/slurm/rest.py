"""`SlurmRest`: Slurm read through ``slurmrestd``, acting through the commands where the API cannot.

The job's state is read every ``slurm_poll_seconds`` for as long as the job runs: through the
REST daemon that is one HTTP request to a long-lived process instead of a fork of ``scontrol`` (and
its own connection to the controller) each time. It reads the job (``GET /job/{id}``), finds a
job by name (``GET /jobs``), reads node states (``GET /nodes``, one request for all) and pings
the controller. API v0.0.38 (Slurm 22.05) has no requeue, hold or release and signals whole jobs,
not steps only, so every action (requeue, hold, release, ``ExcNodeList``, ``StartTime``, step
signals, drain) and the host-list expansion (no controller involved) stay with `SlurmClient`'s
commands.

The URL is ``unix:/path/to/socket`` (``rest_auth/local``: the daemon acts as its own user, who
must be allowed to read the job) or ``http://host:port`` (``rest_auth/jwt``: the token goes in
``X-SLURM-USER-TOKEN`` with the user in ``X-SLURM-USER-NAME``). The token is never logged, never
put in an error and not shown by ``repr``. The daemon's API versions are probed on first use from
``/openapi``; one Phoenix does not know is refused with the versions it serves.

A daemon that never answered is a configuration error and is named as such. One that answered and
then fails (restarted, overloaded, a Slurm error in its answer) is read around: the same read goes
through the commands, with one warning, until the daemon answers again, so a REST outage does not
stall supervision.
"""

from __future__ import annotations

import getpass
import http.client
import json
import logging
import re
import socket
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from phoenix_sidecar.errors import RuntimeUnavailable
from phoenix_sidecar.runtime.slurm import restjson
from phoenix_sidecar.runtime.slurm.client import JobInfo, SlurmClient

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class _Answer(RuntimeUnavailable):
    """Slurm's definite answer through the daemon (no such job): not an outage to read around."""


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (what ``slurmrestd unix:PATH`` listens on)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def parse_url(url: str) -> tuple[str, str, int]:
    """``unix:/p`` -> ("unix", "/p", 0); ``http://h:6820`` -> ("http", "h", 6820). Anything else is refused."""
    if url.startswith("unix:"):
        path = url[5:].removeprefix("//")
        if not path.startswith("/"):
            raise ValueError(f"slurm_rest_url {url!r}: a unix socket needs an absolute path (unix:/run/slurmrestd.sock)")
        return "unix", path, 0
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"slurm_rest_url {url!r}: expected unix:/path/to/socket or http://host:port")
    return "http", parts.hostname, parts.port or 80


class SlurmRest:
    """The Slurm reads of `SlurmClient` through slurmrestd at ``url``; the actions through ``commands``.

    Args:
        url: ``unix:/path`` or ``http://host:port``.
        token: a JWT (``scontrol token``) for ``rest_auth/jwt``; None for ``rest_auth/local``.
        user: the user the token belongs to (the ``X-SLURM-USER-NAME`` header); default: this user.
        commands: the Slurm commands, for the actions and what the API cannot answer.
        timeout: seconds per request.
    """

    def __init__(self, url: str, *, token: str | None = None, user: str | None = None,
                 commands: SlurmClient | None = None, timeout: float = 30.0) -> None:
        self.url = url
        self._kind, self._where, self._port = parse_url(url)
        self._token = token
        self._user = user or getpass.getuser()
        self._commands = commands or SlurmClient(timeout=timeout)
        self._timeout = timeout
        self._version: str | None = None
        self._answered = False  # the daemon answered once: a later failure is an outage, not a mistake
        self._around: str | None = None  # why reads go through the commands now

    def __repr__(self) -> str:
        return f"SlurmRest({self.url!r}, token={'<redacted>' if self._token else None})"

    # -- transport -----------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        if self._kind == "unix":
            return _UnixConnection(self._where, self._timeout)
        return http.client.HTTPConnection(self._where, self._port, timeout=self._timeout)

    def _request(self, path: str) -> tuple[int, dict[str, Any]]:
        headers = {"Accept": "application/json"}
        if self._token:
            headers.update({"X-SLURM-USER-NAME": self._user, "X-SLURM-USER-TOKEN": self._token})
        conn = self._connection()
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise RuntimeUnavailable(f"slurmrestd at {self.url} does not answer ({exc}): is it running? "
                                     "(unset slurm_rest_url to use the Slurm commands)") from exc
        finally:
            conn.close()
        if resp.status in (401, 403):
            how = "the token in slurm_rest_token_file or SLURM_JWT" if self._token else "rest_auth/local (no token)"
            raise RuntimeUnavailable(f"slurmrestd at {self.url} refused Phoenix's credentials ({resp.status} "
                                     f"{body[:100].decode('utf-8', 'replace').strip()}); it used {how}: a fresh "
                                     f"`scontrol token` for user {self._user}, or the daemon's own socket")
        try:
            answer = json.loads(body or b"{}")
        except ValueError as exc:
            raise RuntimeUnavailable(f"slurmrestd at {self.url} answered {path} with no JSON "
                                     f"({resp.status}: {body[:200]!r})") from exc
        if not isinstance(answer, dict):
            raise RuntimeUnavailable(f"slurmrestd at {self.url} answered {path} with {type(answer).__name__}")
        return resp.status, answer

    def version(self) -> str:
        """The API version Phoenix reads this daemon with (probed once)."""
        if self._version is None:
            status, answer = self._request("/openapi")
            served = restjson.served_versions(answer)
            known = [v for v in restjson.API_VERSIONS if v in served]
            if not known:
                raise RuntimeUnavailable(
                    f"slurmrestd at {self.url} serves API {', '.join(served) or f'nothing ({status})'}; Phoenix "
                    f"reads {', '.join(restjson.API_VERSIONS)}: start slurmrestd with -s openapi/"
                    f"{restjson.API_VERSIONS[-1]}, or unset slurm_rest_url to use the Slurm commands")
            self._version = known[-1]
        return self._version

    def _get(self, path: str) -> dict[str, Any]:
        status, answer = self._request(f"/slurm/{self.version()}{path}")
        problems = restjson.errors(answer)
        if problems:
            raise RuntimeUnavailable(f"slurmrestd at {self.url}: GET {path}: {'; '.join(problems)}")
        if status >= 400:
            raise RuntimeUnavailable(f"slurmrestd at {self.url}: GET {path}: HTTP {status}")
        return answer

    def _read(self, rest: Callable[[], _T], commands: Callable[[], _T]) -> _T:
        """``rest()``; once the daemon has answered, ``commands()`` while it fails."""
        try:
            result = rest()
        except _Answer:
            self._answered = True
            raise
        except RuntimeUnavailable as exc:
            if not self._answered:
                raise
            if self._around is None:
                self._around = str(exc)
                log.warning("%s; reading Slurm through its commands until slurmrestd answers again", exc)
            return commands()
        self._answered = True
        if self._around is not None:
            log.warning("slurmrestd at %s answers again; reading Slurm through it", self.url)
            self._around = None
        return result

    # -- reading -------------------------------------------------------------------------------
    def ping(self) -> str:
        """``primary UP`` per controller, or `RuntimeUnavailable`."""
        pings = self._get("/ping").get("pings") or []
        return ", ".join(f"{p.get('hostname')} {p.get('mode')} {p.get('ping')}" for p in pings) or "no controller"

    def find(self, ident: str) -> str:
        """The job id of ``ident``: a job id, an array task ``123_4``, or a job name (the newest)."""
        if re.fullmatch(r"\d+(_\d+)?", ident):
            return ident
        return self._read(lambda: self._find(ident), lambda: self._commands.find(ident))

    def _find(self, ident: str) -> str:
        ids = [int(j["job_id"]) for j in self._get("/jobs").get("jobs", []) if j.get("name") == ident]
        if not ids:
            raise _Answer(f"no Slurm job named {ident!r} (slurmrestd at {self.url} knows none)")
        return str(max(ids))

    def job(self, job_id: str) -> JobInfo:
        return self._read(lambda: self._job(job_id), lambda: self._commands.job(job_id))

    def _job(self, job_id: str) -> JobInfo:
        try:
            jobs = self._get(f"/job/{urllib.parse.quote(job_id)}").get("jobs") or []
        except RuntimeUnavailable as exc:
            if "Invalid job id" in str(exc):
                raise _Answer(f"Slurm knows no job {job_id} (slurmrestd at {self.url})") from exc
            raise
        if not jobs:
            raise _Answer(f"Slurm knows no job {job_id} (slurmrestd at {self.url})")
        return restjson.job_from_rest(jobs[0])

    def node_states(self, nodes: Sequence[str]) -> dict[str, str]:
        """Each node's state word (``IDLE``, ``DOWN+NOT_RESPONDING``, ``IDLE+DRAIN``...)."""
        if not nodes:
            return {}
        wanted = set(nodes)
        return self._read(lambda: {str(n["name"]): restjson.node_state(n) for n in self._get("/nodes").get("nodes", [])
                                   if n.get("name") in wanted}, lambda: self._commands.node_states(nodes))

    def hostnames(self, hostlist: str) -> list[str]:
        return self._commands.hostnames(hostlist)  # local: no controller involved

    # -- acting: the commands (v0.0.38 has no requeue, hold or release) --------------------------
    def requeue_hold(self, job_id: str) -> None:
        self._commands.requeue_hold(job_id)

    def hold(self, job_id: str) -> None:
        self._commands.hold(job_id)

    def exclude(self, job_id: str, nodes: Sequence[str]) -> None:
        self._commands.exclude(job_id, nodes)

    def release(self, job_id: str) -> None:
        self._commands.release(job_id)

    def start_now(self, job_id: str) -> None:
        self._commands.start_now(job_id)

    def signal_steps(self, job_id: str, signal: str) -> None:
        self._commands.signal_steps(job_id, signal)

    def drain(self, node: str, reason: str) -> None:
        self._commands.drain(node, reason)
