"""`phoenix doctor`'s Slurm checks: what each answer of Slurm becomes, and when flock holds on a file system."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.runtime.slurm.checks import checks, lock_verdict, mount_of
from phoenix_sidecar.runtime.slurm.client import SlurmClient

JOB_LINE = ("JobId=42 JobName=train UserId=root(0) JobState=RUNNING Reason=None Restarts=0 ExitCode=0:0 "
            "StartTime=2026-12-04T22:38:37 NodeList=n[1-2] NumTasks=2 StdOut=/ws/slurm-42.out")


def slurm(answers: dict[tuple[str, ...], tuple[int, str]]) -> SlurmClient:
    """A SlurmClient whose commands answer from ``answers`` (keyed by the command's first words)."""
    def runner(args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        for key, (rc, out) in answers.items():
            if tuple(args[:len(key)]) == key:
                return subprocess.CompletedProcess(list(args), rc, out if rc == 0 else "", out if rc else "")
        return subprocess.CompletedProcess(list(args), 1, "", f"unexpected {args}")
    return SlurmClient(runner=runner)


UP = {("scontrol", "ping"): (0, "Slurmctld(primary) at ctl is UP\n"),
      ("scontrol", "-o", "show", "job", "42"): (0, JOB_LINE + "\n"),
      ("scontrol", "show", "config"): (0, "SlurmUser               = slurm(64030)\nClusterName = c\n")}
MOUNTS = "/dev/sda1 / ext4 rw 0 0\nfs:/export /shared nfs4 rw,relatime,vers=4.2 0 0\n"


def by_name(found: list) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.detail) for c in found}


def test_a_reachable_cluster_passes_and_names_the_job(tmp_path: Path) -> None:
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=c\n")
    client = slurm(UP)
    found = by_name(checks(Settings(slurm_job="42", workspace="/shared/ws"), {"SLURM_CONF": str(conf)}, client,
                           commands=client, which=lambda c: f"/usr/bin/{c}", mounts=MOUNTS))
    assert found["slurm commands"][0] == "ok" and found["slurm conf"] == ("ok", str(conf))
    assert found["slurm controller"] == ("ok", "Slurmctld(primary) at ctl is UP")
    assert found["slurm job"] == ("ok", "job 42 (train) RUNNING on n[1-2]")
    assert found["slurm lock"][0] == "ok" and "nfs4" in found["slurm lock"][1]
    assert "slurm rest" not in found  # the commands: no REST check


def test_a_controller_that_does_not_answer_fails_and_stops_the_checks(tmp_path: Path) -> None:
    client = slurm({("scontrol", "ping"): (1, "Slurmctld(primary) at ctl is DOWN")})
    found = by_name(checks(Settings(slurm_job="42"), {"SLURM_CONF": str(tmp_path / "none.conf")}, client,
                           commands=client, which=lambda c: None if c == "scancel" else c, mounts=MOUNTS))
    assert found["slurm commands"] == ("fail", "not found on PATH: scancel")
    assert found["slurm conf"][0] == "fail" and "none.conf" in found["slurm conf"][1]
    assert found["slurm controller"][0] == "fail" and "DOWN" in found["slurm controller"][1]
    assert "slurm job" not in found


def test_drain_rights_are_a_warning_for_an_ordinary_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "alice")
    client = slurm(UP)
    found = by_name(checks(Settings(), {}, client, commands=client, which=str, mounts=MOUNTS))
    assert found["slurm drain"][0] == "warn" and "AdminLevel=Operator" in found["slurm drain"][1]
    monkeypatch.setattr("getpass.getuser", lambda: "slurm")
    assert by_name(checks(Settings(), {}, client, commands=client, which=str, mounts=MOUNTS))["slurm drain"][0] == "ok"
    assert "slurm drain" not in by_name(checks(Settings(slurm_drain=False), {}, client, commands=client, which=str,
                                               mounts=MOUNTS))


@pytest.mark.parametrize(("fstype", "options", "status"), [
    ("nfs4", "rw,vers=4.2", "ok"), ("nfs", "rw,vers=3", "ok"), ("nfs", "rw,nolock", "fail"),
    ("nfs4", "rw,local_lock=all", "fail"), ("lustre", "rw,flock", "ok"), ("lustre", "rw,localflock", "fail"),
    ("lustre", "rw", "warn"), ("gpfs", "rw", "ok"), ("ext4", "rw", "warn"), ("fuse.sshfs", "rw", "warn")])
def test_flock_across_hosts_by_file_system(fstype: str, options: str, status: str) -> None:
    assert lock_verdict(fstype, options).status == status


def test_the_mount_of_a_path_is_the_longest_matching_mount_point() -> None:
    assert mount_of("/shared/ws/train", MOUNTS) == ("nfs4", "rw,relatime,vers=4.2")
    assert mount_of("/sharedother", MOUNTS) == ("ext4", "rw")
