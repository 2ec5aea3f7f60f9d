# syntax=docker/dockerfile:1
# The pipeworks image: the worker by default; temporal-dev.yml also runs the demo
# upstream from it (`python -m devstack.sports`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Fixed ids so volume ownership and `runAsNonRoot` checks are predictable.
RUN groupadd --system --gid 10001 pipeworks \
    && useradd --system --uid 10001 --gid pipeworks --create-home \
       --home-dir /home/pipeworks --shell /usr/sbin/nologin pipeworks

WORKDIR /tmp/pipeworks-src

# Dependencies first, in their own layer: the embedded-server wheels are large and
# should not be downloaded again for every code change.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself, installed as a regular (non-editable) package; the source
# tree is not kept in the image.
COPY . .
RUN pip install . \
    && cd / && rm -rf /tmp/pipeworks-src

# An empty working directory owned by the user: Settings reads `.env` and
# `.pipeworks/` relative to it, and there must be neither in the image.
WORKDIR /app
RUN chown pipeworks:pipeworks /app

USER 10001:10001

# Metrics (Prometheus, /metrics) and health (/healthz, /readyz) listen on every
# interface inside the container, so that Prometheus and probes reach them over the
# container network; publishing them to a host is the deployment's choice.
ENV PIPEWORKS_METRICS_ADDRESS=0.0.0.0:9464 \
    PIPEWORKS_HEALTH_ADDRESS=0.0.0.0:9465
EXPOSE 9464 9465

# Ready means Temporal and Postgres answer and the worker is not draining. The port
# follows PIPEWORKS_HEALTH_ADDRESS; a container running something else from this image
# (the demo upstream) overrides the healthcheck.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('PIPEWORKS_HEALTH_ADDRESS', ':9465').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=3)"]

# Exec form: the worker is PID 1 and gets SIGTERM directly, then drains
# (PIPEWORKS_GRACEFUL_SHUTDOWN_SECONDS) before exiting.
CMD ["pipeworks", "worker"]
