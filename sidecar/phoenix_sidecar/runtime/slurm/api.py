"""`SlurmApi`: what the Slurm runtime asks of Slurm, and `connect`, which picks how it asks.

Two implementations answer it with the same `JobInfo` and node-state words: `SlurmClient` (the
Slurm commands) and `SlurmRest` (``slurmrestd``, with the commands for what its API cannot do).
``slurm_rest_url`` set: REST; unset: the commands. The REST token (``rest_auth/jwt``) comes from
the file ``slurm_rest_token_file`` names, else the ``SLURM_JWT`` variable (what ``scontrol
token`` prints, with or without its ``SLURM_JWT=`` prefix); it is never a setting's value, so it
is never shown by ``phoenix show-config`` or logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.errors import ConfigError
from phoenix_sidecar.runtime.slurm.client import JobInfo, SlurmClient
from phoenix_sidecar.runtime.slurm.rest import SlurmRest, parse_url


class SlurmApi(Protocol):
    """Reading a job and its nodes, and acting on them; every failure is `RuntimeUnavailable`."""

    def ping(self) -> str: ...
    def find(self, ident: str) -> str: ...
    def job(self, job_id: str) -> JobInfo: ...
    def hostnames(self, hostlist: str) -> list[str]: ...
    def node_states(self, nodes: Sequence[str]) -> dict[str, str]: ...
    def requeue_hold(self, job_id: str) -> None: ...
    def hold(self, job_id: str) -> None: ...
    def exclude(self, job_id: str, nodes: Sequence[str]) -> None: ...
    def release(self, job_id: str) -> None: ...
    def start_now(self, job_id: str) -> None: ...
    def signal_steps(self, job_id: str, signal: str) -> None: ...
    def drain(self, node: str, reason: str) -> None: ...


def rest_token(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """The JWT for slurmrestd: ``slurm_rest_token_file``'s content, else ``SLURM_JWT``, else None."""
    raw = environ.get("SLURM_JWT", "")
    if settings.slurm_rest_token_file:
        try:
            raw = Path(settings.slurm_rest_token_file).read_text()
        except OSError as exc:
            raise ConfigError(f"slurm_rest_token_file {settings.slurm_rest_token_file}: {exc.strerror or exc}") from exc
    token = raw.strip().removeprefix("SLURM_JWT=").strip()
    return token or None


def connect(settings: Settings, environ: Mapping[str, str]) -> SlurmApi:
    """slurmrestd when ``slurm_rest_url`` is set, else the Slurm commands."""
    commands = SlurmClient()
    if not settings.slurm_rest_url:
        return commands
    try:
        parse_url(settings.slurm_rest_url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return SlurmRest(settings.slurm_rest_url, token=rest_token(settings, environ), commands=commands)
