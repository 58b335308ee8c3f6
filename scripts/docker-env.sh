#!/usr/bin/env bash
# A real Docker engine for Phoenix's tests and benchmarks, on a machine with no container registry.
#
#   scripts/docker-env.sh install   apt-get install what the Docker tests need (docker.io, compose v1,
#                                   mmdebstrap, prometheus), skipping what is already there
#   scripts/docker-env.sh start     start dockerd (live-restore on) unless a daemon already answers;
#                                   prints "started" or "reused"
#   scripts/docker-env.sh stop      stop the dockerd that `start` started (never someone else's)
#   scripts/docker-env.sh restart   stop and start that dockerd again (the outage tests use it)
#   scripts/docker-env.sh owned     exit 0 if the running dockerd is the one `start` started
#   scripts/docker-env.sh images    build the local stand-in images that are missing (see below)
#   scripts/docker-env.sh status    say whether a daemon answers and which stand-ins exist
#
# Stand-in images (built only when absent, so a second run costs nothing):
#   python:3.11-slim      Debian bookworm root file system (mmdebstrap) with python3, venv and git;
#                         it also carries this machine's CA bundle and PIP_CERT so that `pip install`
#                         inside `docker build` reaches PyPI. That trick lives here only, never in the
#                         project's Dockerfile.
#   $TRAINER_IMAGE        the stand-in for the NVIDIA PyTorch image of compose.yaml: the base above,
#                         a venv on PATH, and PyTorch for the CPU (from pip's configured sources).
#   $PROMETHEUS_IMAGE     the base above with Debian's prometheus binary and web assets.
#
# Environment: PHX_DOCKERD_DIR (pid file, log; default /tmp/phoenix-dockerd),
# PHX_DOCKER_IMAGES (which stand-ins `images` builds; default "python trainer prometheus"),
# PHX_PYTHON (the Python whose pip fetches the PyTorch wheel; default python3).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state_dir=${PHX_DOCKERD_DIR:-/tmp/phoenix-dockerd}
pidfile=$state_dir/dockerd.pid
logfile=$state_dir/dockerd.log
socket=/var/run/docker.sock

PYTHON_IMAGE=python:3.11-slim
TRAINER_IMAGE=$(sed -n 's/^ *image: *\${TRAINER_IMAGE:-\(.*\)}.*$/\1/p' "$here/compose.yaml" | head -n1)
PROMETHEUS_IMAGE=$(sed -n 's/^ *image: *\(prom\/prometheus:[^ ]*\).*$/\1/p' "$here/compose.yaml" | head -n1)
TORCH_SPEC=${PHX_TORCH_SPEC:-torch==2.13.0}

work_root=$(mktemp -d)
trap 'rm -rf "$work_root"' EXIT

say() { printf 'docker-env: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

daemon_up() { timeout 10 docker info >/dev/null 2>&1; }

need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (dockerd, apt-get and mmdebstrap do)"; }

cmd_install() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    command -v prometheus >/dev/null || missing+=(prometheus)
    if [ ${#missing[@]} -eq 0 ]; then say "all installed"; return; fi
    need_root install
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

our_pid() {
    [ -f "$pidfile" ] || return 1
    local pid; pid=$(cat "$pidfile")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = dockerd ] \
        && echo "$pid"
}

cmd_start() {
    if daemon_up; then echo reused; return; fi
    need_root start
    command -v dockerd >/dev/null || die "dockerd is not installed: run '$0 install'"
    mkdir -p "$state_dir"
    # A socket left by a daemon that died would make the new one refuse to start.
    [ -S "$socket" ] && ! daemon_up && rm -f "$socket"
    setsid dockerd --live-restore --host "unix://$socket" >>"$logfile" 2>&1 < /dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 1 120); do
        if daemon_up; then echo started; return; fi
        kill -0 "$(cat "$pidfile")" 2>/dev/null || break
        sleep 0.25
    done
    tail -n 20 "$logfile" >&2 || true
    die "dockerd did not come up (log: $logfile)"
}

cmd_stop() {
    local pid
    pid=$(our_pid) || { say "no dockerd started by this script is running"; return 0; }
    kill -TERM "$pid"
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then say "dockerd $pid ignored SIGTERM; killing it"; kill -KILL "$pid"; fi
    rm -f "$pidfile"
}

cmd_restart() {
    our_pid >/dev/null || die "refusing to restart a dockerd this script did not start"
    cmd_stop
    cmd_start >/dev/null
    echo restarted
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# `docker build` quietly; its output is shown only when it fails.
build() {
    local tag=$1 context=$2
    if ! DOCKER_BUILDKIT=0 docker build -t "$tag" "$context" >"$context.log" 2>&1; then
        tail -n 40 "$context.log" >&2
        die "building $tag failed"
    fi
}

build_python() {
    have_image "$PYTHON_IMAGE" && return
    need_root "building $PYTHON_IMAGE"
    command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed: run '$0 install'"
    local work; work=$(mktemp -d -p "$work_root")
    say "building the $PYTHON_IMAGE stand-in (mmdebstrap, about 30 s)"
    mmdebstrap --quiet --variant=apt --include=python3,python3-venv,git,ca-certificates bookworm "$work/base.tar"
    docker import -c 'CMD ["python3"]' "$work/base.tar" phoenix-ci/bookworm:base >/dev/null
    cp /etc/ssl/certs/ca-certificates.crt "$work/ca-certificates.crt"
    # `python` as on the official image, and pip able to reach PyPI through this machine's CA bundle.
    cat >"$work/Dockerfile" <<'EOF'
FROM phoenix-ci/bookworm:base
COPY ca-certificates.crt /etc/ssl/certs/phoenix-ci-ca.crt
ENV PIP_CERT=/etc/ssl/certs/phoenix-ci-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 LANG=C.UTF-8
RUN ln -s /usr/bin/python3 /usr/local/bin/python
CMD ["python3"]
EOF
    build "$PYTHON_IMAGE" "$work"
}

build_trainer() {
    have_image "$TRAINER_IMAGE" && return
    build_python
    local work; work=$(mktemp -d -p "$work_root")
    say "building the $TRAINER_IMAGE stand-in (PyTorch for the CPU)"
    mkdir "$work/wheels"
    "${PHX_PYTHON:-python3}" -m pip download -q --only-binary=:all: --dest "$work/wheels" "$TORCH_SPEC"
    cat >"$work/Dockerfile" <<EOF
FROM $PYTHON_IMAGE
COPY wheels /tmp/wheels
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --no-index --find-links /tmp/wheels "$TORCH_SPEC" \\
    && rm -rf /tmp/wheels /root/.cache
ENV PATH=/opt/venv/bin:\$PATH
EOF
    build "$TRAINER_IMAGE" "$work"
}

build_prometheus() {
    have_image "$PROMETHEUS_IMAGE" && return
    build_python
    command -v prometheus >/dev/null || die "prometheus is not installed: run '$0 install'"
    local work; work=$(mktemp -d -p "$work_root")
    say "building the $PROMETHEUS_IMAGE stand-in (Debian's prometheus)"
    cp "$(command -v prometheus)" "$work/prometheus"
    cp -r /usr/share/prometheus "$work/share"
    # Same entry point, arguments, user and paths as the official image.
    cat >"$work/Dockerfile" <<EOF
FROM $PYTHON_IMAGE
COPY prometheus /bin/prometheus
COPY share /usr/share/prometheus
RUN mkdir -p /etc/prometheus /prometheus && chown nobody:nogroup /prometheus
USER nobody
EXPOSE 9090
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
EOF
    build "$PROMETHEUS_IMAGE" "$work"
}

cmd_images() {
    daemon_up || die "no Docker daemon answers: run '$0 start' first"
    local which=${PHX_DOCKER_IMAGES:-python trainer prometheus}
    for image in $which; do
        case $image in
            python) build_python ;;
            trainer) build_trainer ;;
            prometheus) build_prometheus ;;
            *) die "unknown stand-in '$image' (python, trainer, prometheus)" ;;
        esac
    done
}

cmd_status() {
    if daemon_up; then say "daemon: up ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"; else say "daemon: down"; fi
    if pid=$(our_pid); then say "started by this script: pid $pid"; fi
    if daemon_up; then
        for image in "$PYTHON_IMAGE" "$TRAINER_IMAGE" "$PROMETHEUS_IMAGE"; do
            if have_image "$image"; then say "image $image: present"; else say "image $image: missing"; fi
        done
    fi
}

case ${1:-} in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_restart ;;
    owned) our_pid >/dev/null ;;
    images) cmd_images ;;
    status) cmd_status ;;
    *) die "usage: $0 install|start|stop|restart|owned|images|status" ;;
esac
