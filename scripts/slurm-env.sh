#!/usr/bin/env bash
# A real two-node Slurm cluster on this machine, for trying `phoenix watch --slurm-job` by hand
# (the tests start their own). It installs nothing: apt-get install slurm-wlm slurmrestd munge first.
#
#   scripts/slurm-env.sh start [DIR]   # munged, slurmctld, slurmd n1 and n2 under DIR; prints the SLURM_CONF export
#   scripts/slurm-env.sh start-rest [DIR]   # the same and slurmrestd (as nobody, on a unix socket); prints its URL
#   scripts/slurm-env.sh stop [DIR]    # stops every daemon it started, by its pid file
#
# DIR defaults to /tmp/phoenix-slurm. The ports are free ones picked at start.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:-}
dir=${2:-/tmp/phoenix-slurm}
case "$action" in
    start|start-rest) mkdir -p "$dir" ;;
    stop) ;;
    *) echo "usage: $0 start|start-rest|stop [DIR]" >&2; exit 2 ;;
esac
python=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
exec "$python" tests/kits/slurmcluster.py "$action" "$dir"
