# syntax=docker/dockerfile:1
# Image of the misa_sync service: active customers into MISA AMIS.
# Build from the repository root (the context needs the workspace's lock and shared/):
#   docker build -f deploy/docker/misa_sync.Dockerfile -t ims/misa-sync:0.1.0 .
# Every IMS Dockerfile is this one with its own names; tests/deploy keeps them in step.
# The base is pinned to an exact tag; add its digest (@sha256:...) where the registry can
# be reached (see deploy/README.md, "Images").

# ---- builder: resolve the service's dependencies from uv.lock into a venv -------------
FROM python:3.12.12-slim-trixie AS builder
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/ims/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m pip install "uv==0.13.9"
WORKDIR /src
# The workspace's manifests first: the dependency layer is rebuilt only when they change.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/customer/pyproject.toml services/customer/
COPY services/approval/pyproject.toml services/approval/
COPY services/misa_sync/pyproject.toml services/misa_sync/
COPY services/reference/pyproject.toml services/reference/
COPY services/misa_simulator/pyproject.toml services/misa_simulator/
COPY tools/ims/pyproject.toml tools/ims/
RUN uv sync --frozen --no-dev --no-install-workspace --package ims-misa-sync
# Then the code, installed into the venv itself (not editable): the venv is the app.
COPY shared/ shared/
COPY services/misa_sync/ services/misa_sync/
RUN uv sync --frozen --no-dev --no-editable --package ims-misa-sync

# ---- runtime: the venv on a slim Python, as an unprivileged user --------------------
FROM python:3.12.12-slim-trixie
LABEL org.opencontainers.image.title="ims-misa-sync" \
      org.opencontainers.image.description="IMS customer master data: the misa_sync service: active customers into MISA AMIS" \
      org.opencontainers.image.licenses="Proprietary"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/ims/venv/bin:$PATH" \
    MISA_SYNC_ENV=prod \
    MISA_SYNC_HTTP_HOST=0.0.0.0 \
    MISA_SYNC_HTTP_PORT=8003 \
    MISA_SYNC_LOG_JSON=true \
    MISA_SYNC_KAFKA_ENABLE_IDEMPOTENCE=true \
    MISA_SYNC_KAFKA_FETCH_MAX_WAIT_MS=500
RUN groupadd --system --gid 10001 ims \
    && useradd --system --uid 10001 --gid ims --home-dir /var/lib/ims --no-create-home \
       --shell /usr/sbin/nologin ims \
    && mkdir -p /var/lib/ims \
    && chown -R ims:ims /var/lib/ims
COPY --from=builder /opt/ims/venv /opt/ims/venv
WORKDIR /var/lib/ims
USER 10001:10001
EXPOSE 8003
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('MISA_SYNC_HTTP_PORT', '8003') + '/healthz', timeout=4)"]
# `migrate` applies the migrations (run it once per release, before `serve`).
ENTRYPOINT ["python", "-m", "misa_sync"]
CMD ["serve"]
