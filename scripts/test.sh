#!/usr/bin/env bash
# Runs Phoenix's whole test suite on a fresh Debian (bookworm) machine, as root, with no input.
#
# It installs what the tests need (Debian packages: Docker engine, Compose v1, Prometheus and
# promtool, mmdebstrap, Slurm and munge; Python packages into .venv: Phoenix itself, pytest, CPU
# PyTorch), then runs pytest. The Docker tests start their own dockerd when none is running and
# remove every container they create; the Slurm tests start their own two-node cluster
# (tests/kits/slurmcluster.py) under a temporary directory and stop it. Extra arguments go to pytest: scripts/test.sh -k lock -x
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)
command -v git >/dev/null || need_apt+=(git)
command -v bwrap >/dev/null || need_apt+=(bubblewrap)
command -v slurmctld >/dev/null || need_apt+=(slurm-wlm)
command -v slurmrestd >/dev/null || [ -x /usr/sbin/slurmrestd ] || need_apt+=(slurmrestd)
command -v munged >/dev/null || [ -x /usr/sbin/munged ] || need_apt+=(munge)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "test.sh: installing ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # Debian starts the packaged Prometheus as a service; the tests run their own on 127.0.0.1.
    { systemctl stop prometheus || service prometheus stop || pkill -x prometheus; } >/dev/null 2>&1 || true
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# CPU PyTorch for the tests that run real training scripts (a local wheel on the CI machines).
.venv/bin/python -c 'import torch' 2>/dev/null || .venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0

export PHOENIX_TEST_STRICT=1   # a skipped integration test fails the run: CI must run them all
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
