"""The real Slurm cluster of the Slurm tests: started once per session, emptied after each test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kits.slurmcluster import NODES, SlurmCluster, missing_binaries


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)}): scripts/test.sh installs slurm-wlm and munge")
    root = Path(tmp_path_factory.mktemp("slurm"))
    c = SlurmCluster(root).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def slurm(cluster: SlurmCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlurmCluster]:
    """The cluster, with ``SLURM_CONF`` exported; every job cancelled and every node back afterwards."""
    monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
    yield cluster
    cluster.run("scancel", "--user=root", check=False)
    cluster.revive_nodes()
    cluster.run("scontrol", "update", "nodename=n[1-2]", "state=resume", check=False)
    SlurmCluster._wait(lambda: cluster.idle_nodes() >= set(NODES), 60, "nodes idle after the test")


@pytest.fixture(scope="session")
def rest_url(cluster: SlurmCluster) -> str:
    """``unix:/...``: slurmrestd (as nobody, rest_auth/local) in front of the test cluster."""
    if shutil.which("slurmrestd") is None and not Path("/usr/sbin/slurmrestd").exists():
        pytest.skip("slurmrestd is not installed: scripts/test.sh installs it")
    return cluster.start_rest()
