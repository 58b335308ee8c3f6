# The Phoenix sidecar: `phoenix watch` beside a training container (compose.yaml, docs/docker.md).
#
#   docker build -t phoenix-sidecar .
#
# It runs as the unprivileged user "phoenix" (uid 10001). It needs no Docker socket of its own when
# it talks to the socket proxy (compose.yaml). Mounted directly, the socket is owned by root and the
# host's docker group: add that group (`group_add: ["<gid of /var/run/docker.sock>"]`), and know that
# access to the socket is root on the host.
FROM python:3.11-slim

# git: repairs are verified in a git worktree of the workspace.
RUN if ! command -v git >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*; \
    fi \
    # The workspace is a volume owned by whoever owns the job's code: let git work in it.
    && git config --system --add safe.directory '*'

# Phoenix in its own virtual environment (works on the official image and on Debian's python3 alike).
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
COPY pyproject.toml /src/
COPY sidecar /src/sidecar
COPY watchdog /src/watchdog
RUN pip install --no-cache-dir /src && rm -rf /src

RUN groupadd --system --gid 10001 phoenix \
    && useradd --system --uid 10001 --gid phoenix --home-dir /home/phoenix --create-home phoenix
USER phoenix
WORKDIR /workspace

# Defaults of the image, not settings: PHOENIX_DEFAULT_<KEY> ranks below the config file (and
# PHOENIX_<KEY>), so `workspace` and `metrics_addr` in phoenix.yaml still decide. The metrics
# server listens on all interfaces inside the container so Prometheus can scrape it; publish the
# port on 127.0.0.1 only, if at all.
ENV PHOENIX_DEFAULT_WORKSPACE=/workspace PHOENIX_DEFAULT_METRICS_ADDR=0.0.0.0:9479
EXPOSE 9479

# Healthy while a Phoenix holds the workspace and the job is not given up on.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["phoenix", "status", "--check"]
CMD ["phoenix", "watch"]
