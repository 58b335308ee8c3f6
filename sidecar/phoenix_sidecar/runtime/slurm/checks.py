"""What `phoenix doctor` checks before `phoenix watch --slurm-job`: Slurm reachable, and the lock trustworthy.

Each check is a `Check` (name, ``ok``/``warn``/``fail``, what was found, how to fix it): the Slurm
commands Phoenix runs, ``SLURM_CONF``, the controller (``scontrol ping``), slurmrestd when
``slurm_rest_url`` is set (it answers, with an API version Phoenix reads, and accepts the
credentials), the job, whether Phoenix may drain a node when ``slurm_drain`` is on, and whether
``flock`` on the workspace's file system keeps two watchers on two login nodes apart. The Slurm
access is the `SlurmApi` passed in; the mount table is text passed in (``/proc/mounts``).
"""

from __future__ import annotations

import getpass
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.errors import PhoenixError
from phoenix_sidecar.runtime.slurm.api import SlurmApi
from phoenix_sidecar.runtime.slurm.client import SlurmClient

COMMANDS = ("scontrol", "squeue", "scancel")  # every command Phoenix runs (client.py)
_LOCAL_FS = {"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "tmpfs", "overlay", "f2fs"}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, warn, fail
    detail: str
    fix: str = ""


def lock_verdict(fstype: str, options: str) -> Check:
    """Whether ``flock`` on a file system of this type and these mount options holds across hosts."""
    opts = set(options.split(","))
    name = "slurm lock"
    if fstype == "lustre":
        if "localflock" in opts:
            return Check(name, "fail", "Lustre mounted with localflock: flock is local to each host, so two watchers "
                         "on two login nodes would both take the lock", "remount with -o flock, or run one watcher per job")
        if "flock" in opts:
            return Check(name, "ok", "Lustre mounted with flock: the lock holds across hosts")
        return Check(name, "warn", "Lustre without -o flock: flock fails, so the lock is an O_EXCL pid file (taken over "
                     "only from a dead holder on the same host)", "mount with -o flock for a real lock")
    if fstype in ("nfs", "nfs4"):
        if "nolock" in opts or "local_lock=all" in opts or "local_lock=flock" in opts:
            return Check(name, "fail", f"{fstype} mounted with {'nolock' if 'nolock' in opts else 'local_lock'}: flock is "
                         "local to this host", "mount without nolock/local_lock, or run one watcher per job")
        return Check(name, "ok", f"{fstype}: flock goes to the server's lock manager and holds across hosts")
    if fstype == "gpfs":
        return Check(name, "ok", "GPFS: flock holds across hosts")
    if fstype in _LOCAL_FS:
        return Check(name, "warn", f"the workspace is on a local file system ({fstype}): the lock keeps watchers on "
                     "this host apart only; the job's nodes need the workspace on a shared file system",
                     "put the workspace on the cluster's shared file system")
    return Check(name, "warn", f"{fstype}: Phoenix does not know whether flock holds across hosts there; where it "
                 "fails the lock is an O_EXCL pid file", "run one watcher per job")


def mount_of(path: str, mounts: str) -> tuple[str, str]:
    """The (type, options) of the mount holding ``path``, from ``/proc/mounts`` text."""
    real = os.path.realpath(path)
    best = ("", "unknown", "")
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        point = parts[1].replace("\\040", " ")
        if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best[0]):
            best = (point, parts[2], parts[3])
    return best[1], best[2]


def _read_mounts() -> str:
    try:
        return Path("/proc/mounts").read_text()
    except OSError:
        return ""


def checks(settings: Settings, environ: Mapping[str, str], api: SlurmApi, *,
           commands: SlurmClient | None = None, which: Callable[[str], str | None] = shutil.which,
           mounts: str | None = None) -> list[Check]:
    """Every Slurm check for these settings, in order (a later check is left out when Slurm does not answer)."""
    out: list[Check] = []
    missing = [c for c in COMMANDS if which(c) is None]
    out.append(Check("slurm commands", "fail", f"not found on PATH: {', '.join(missing)}",
                     "install the Slurm client commands (Debian: slurm-client) or add them to PATH")
               if missing else Check("slurm commands", "ok", ", ".join(COMMANDS)))
    conf = environ.get("SLURM_CONF", "")
    if conf and not Path(conf).is_file():
        out.append(Check("slurm conf", "fail", f"SLURM_CONF={conf} does not exist", "point SLURM_CONF at slurm.conf"))
    elif conf or Path("/etc/slurm/slurm.conf").is_file():
        out.append(Check("slurm conf", "ok", conf or "/etc/slurm/slurm.conf"))
    else:
        out.append(Check("slurm conf", "warn", "SLURM_CONF is unset and /etc/slurm/slurm.conf missing: the commands "
                         "look the controller up in DNS (configless)", "export SLURM_CONF if that lookup fails"))
    client = commands or SlurmClient(timeout=15.0)
    try:
        out.append(Check("slurm controller", "ok", client.ping()))
    except PhoenixError as exc:
        out.append(Check("slurm controller", "fail", str(exc), "start slurmctld, or fix SLURM_CONF"))
        return out
    if settings.slurm_rest_url:
        try:
            out.append(Check("slurm rest", "ok", f"{settings.slurm_rest_url}: {api.ping()}"))
        except PhoenixError as exc:
            out.append(Check("slurm rest", "fail", str(exc), "start slurmrestd, fix the token, or unset slurm_rest_url"))
            return out
    if settings.slurm_job:
        try:
            info = api.job(api.find(settings.slurm_job))
            out.append(Check("slurm job", "ok", f"job {info.job_id} ({info.name}) {info.state}"
                             + (f" on {info.nodes}" if info.nodes else "")))
        except PhoenixError as exc:
            out.append(Check("slurm job", "fail", str(exc), "submit the job, or check --slurm-job"))
    if settings.slurm_drain:
        out.append(_drain_rights(client))
    out.append(lock_verdict(*mount_of(settings.workspace, _read_mounts() if mounts is None else mounts)))
    return out


def _drain_rights(client: SlurmClient) -> Check:
    user = getpass.getuser()
    try:
        slurm_user = client.config().get("SlurmUser", "").split("(")[0]
    except PhoenixError:
        slurm_user = ""
    if user in ("root", slurm_user):
        return Check("slurm drain", "ok", f"{user} may drain nodes ({'root' if user == 'root' else 'SlurmUser'})")
    return Check("slurm drain", "warn", f"{user} may drain a node only with AdminLevel=Operator or higher (not "
                 "checked): without it Phoenix logs that and still excludes the node from the job",
                 f"sacctmgr modify user {user} set adminlevel=operator, or slurm_drain: false")
