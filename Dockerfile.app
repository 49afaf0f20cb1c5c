# The web form and JSON API under gunicorn; follows the champion alias in the MLflow registry.
# The base image is a build argument: the official python:3.11-slim by default, or any Debian-based
# image with python3 and python3-venv (the stack test builds one with debootstrap when no registry
# is reachable). The first stages are identical in the three Dockerfiles, so they share layers.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS requirements
# Where packages come from: pip's default index unless the builder names a mirror (Pipfile reads it).
ARG HEARTRISK_INDEX_URL=https://pypi.org/simple
ARG PIPENV_VERSION=2026.10.3
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /build
RUN python3 -m venv /opt/pipenv && /opt/pipenv/bin/pip install "pipenv==${PIPENV_VERSION}"
COPY Pipfile Pipfile.lock ./
# Runtime packages only, pinned with hashes, installed as locked (--no-deps, like pipenv sync); the
# project itself is installed from source below.
RUN /opt/pipenv/bin/pipenv requirements --hash | grep -v '^-e ' > requirements.txt

FROM ${BASE_IMAGE} AS runtime
ARG HEARTRISK_INDEX_URL=https://pypi.org/simple
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=requirements /build/requirements.txt /tmp/requirements.txt
# The lock was resolved on Python >= 3.11.3; Debian bookworm's 3.11.2 also needs redis's async-timeout.
RUN python3 -m venv /opt/venv \
    && pip install --no-deps --require-hashes -r /tmp/requirements.txt \
    && pip install --no-deps "async-timeout==5.0.1; python_full_version < '3.11.3'" \
    && rm /tmp/requirements.txt \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/heartrisk heartrisk \
    && mkdir -p /state/mlflow /state/prefect /state/predictions /state/mail /state/evidently /state/reports \
    && mkdir -p /state/keys/signing /state/keys/verify && chmod 0700 /state/keys/signing /state/keys/verify \
    && chown -R heartrisk:heartrisk /state
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps --index-url "${HEARTRISK_INDEX_URL}" -e .
ENV HEARTRISK_STATE_DIR=/state \
    HEARTRISK_PROJECT_DIR=/app \
    GIT_PYTHON_REFRESH=quiet
# Telemetry off, also for a command run by hand in the container (heartrisk's own commands do it in
# src/heartrisk/environment.py; a unit test keeps the two lists equal).
ENV DO_NOT_TRACK=true ITERATIVE_DO_NOT_TRACK=true MLFLOW_DISABLE_TELEMETRY=true PREFECT_SERVER_ANALYTICS_ENABLED=false ORT_DISABLE_TELEMETRY=1 PREFECT_SERVER_UI_V2_ENABLED=false
# No model is unpickled, also by a command run by hand (src/heartrisk/environment.py, NO_PICKLE; tested).
ENV MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false

COPY data ./data
USER 10001:10001
ENV HEARTRISK_APP_HOST=0.0.0.0 HEARTRISK_APP_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=6 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["heartrisk", "serve"]
