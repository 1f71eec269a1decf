# dragoman: the gateway as a container image.
#
#   docker build -t dragoman .
#   docker run -p 8080:8080 dragoman                       # the offline echo model
#   docker run -p 8080:8080 -v $PWD/dragoman.yaml:/etc/dragoman/dragoman.yaml:ro \
#       dragoman --config /etc/dragoman/dragoman.yaml --host 0.0.0.0 --workers 4
#
# BASE_IMAGE: any Debian-family image (python:3.11-slim-bookworm by default; a bare
# Debian rootfs works too: Python is installed from apt when the base has none, which is
# how scripts/test-image builds it without a registry). Both stages use the same base, so
# the virtualenv built in the first finds its interpreter at the same path in the second.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG EXTRAS=redis,otel
RUN if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then \
      apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
         python3 python3-venv ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# pip trusts the system's CA store (where an organization's proxy CA lives), not only
# its own bundle.
RUN if [ -f /etc/ssl/certs/ca-certificates.crt ]; then \
      export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; fi \
    && python3 -m venv /opt/dragoman \
    && /opt/dragoman/bin/pip install --no-cache-dir --disable-pip-version-check -q \
       ".[${EXTRAS}]" \
    && /opt/dragoman/bin/pip uninstall -y -q pip \
    && find /opt/dragoman -name '__pycache__' -prune -exec rm -rf {} +

FROM ${BASE_IMAGE}
RUN if ! command -v python3 >/dev/null; then \
      apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
         python3 ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/dragoman \
       --no-create-home dragoman \
    && mkdir -p /var/lib/dragoman /etc/dragoman \
    && chown dragoman:dragoman /var/lib/dragoman
COPY --from=build /opt/dragoman /opt/dragoman
ENV PATH=/opt/dragoman/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XDG_DATA_HOME=/var/lib/dragoman
USER 10001:10001
WORKDIR /var/lib/dragoman
# The default session database (SQLite) lives here; use PostgreSQL for several replicas.
VOLUME ["/var/lib/dragoman"]
EXPOSE 8080
# DRAGOMAN_HEALTH_URL: where the check looks when the server listens elsewhere (--port).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('DRAGOMAN_HEALTH_URL', 'http://127.0.0.1:8080/healthz'), timeout=2)"]
ENTRYPOINT ["dragoman", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8080"]
